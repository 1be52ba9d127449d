"""The accounts service's answers for other services (DESIGN.md §4 step 2, rule 8):
GET /internal/sessions/{sid}/items/{item} — bliproxy's one-round-trip check before every BLI
query (session live, account active, grant of the item effective today and not suspended) —
and POST /internal/accounts/{id}/grants/suspend, the audit service's corrective action.
Both on the accounts port with client tokens; every response is checked against the contract."""

import json
import subprocess
import uuid

import pytest

from conftest import problem
from test_permissions import approve_all, chain, submit, today  # noqa: F401  (chain is a fixture)


def secret(stack, name):
    with open(f"{stack['BLIGATE_SECRETS_DIR']}/{name}.client-secret", encoding="ascii") as f:
        return f.read().strip()


def sql(stack, query):
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c", query], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.fixture
def internal(client, stack):
    """internal(client_id, scope) → a client on the accounts port that sends a client token with
    that scope, fetched afresh for every request: tests move the accounts clock past the 5-minute
    token lifetime, as a real client's renewal would."""
    issuer = client(stack["BLIGATE_GATEWAY_URL"])

    def make(client_id, scope):
        c = client(stack["BLIGATE_ACCOUNTS_URL"])
        plain = c.request

        def request(method, path, bearer=True, **kw):
            if bearer:
                c.token = issuer.client_token(client_id, secret(stack, client_id), scope=scope)
            return plain(method, path, bearer=bearer, **kw)
        c.request = request
        return c
    return make


@pytest.fixture
def proxy(internal):
    return internal("bliproxy", "sessions:read")


@pytest.fixture
def auditor(internal):
    return internal("audit", "grants:suspend")


def signed_in(client, p):
    c = client()
    c.login(p["cert"], p["key"])
    return c


def check(proxy, sid, item="C0101"):
    return proxy.call("GET", f"/internal/sessions/{sid}/items/{item}")


def test_live_session_with_an_active_grant(client, person, chain, proxy):
    p = person()
    me = signed_in(client, p)
    app = approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    sid = me.login_response["session_id"]
    a = check(proxy, sid)
    assert a["session_id"] == sid and a["account_id"] == p["id"] and a["unit_id"] == p["unit_id"]
    assert a["live"] is True and a["reason"] is None and a["account_status"] == "active"
    assert a["roles"] == ["querier"] and a["item"] == "C0101"
    assert a["grant"] == {"status": "active", "effective_date": today(), "application_id": app["id"]}
    # another item of the catalogue, never granted
    assert check(proxy, sid, "B0101")["grant"] == {"status": "none", "effective_date": None, "application_id": None}


def test_logged_out_and_superseded_sessions_are_not_live(client, person, proxy):
    p = person()
    first = signed_in(client, p)
    sid1 = first.login_response["session_id"]
    second = signed_in(client, p)  # a new login ends the first session
    a = check(proxy, sid1)
    assert a["live"] is False and a["reason"] == "ended"
    sid2 = second.login_response["session_id"]
    assert check(proxy, sid2)["live"] is True
    second.logout()
    a = check(proxy, sid2)
    assert a["live"] is False and a["reason"] == "ended"


def test_idle_session_is_not_live(client, person, proxy, clock):
    p = person()
    me = signed_in(client, p)
    sid = me.login_response["session_id"]
    clock(601)  # no activity for more than the 10-minute idle timeout
    a = check(proxy, sid)
    assert a["live"] is False and a["reason"] == "idle"
    # asking does not revive it
    assert check(proxy, sid)["reason"] == "idle"


def test_checks_keep_the_session_alive_until_its_absolute_lifetime(client, person, proxy, clock):
    me = signed_in(client, person())
    sid = me.login_response["session_id"]
    offset = 0
    # the proxy's checks are the user's activity: asked every 500 s the session never idles out
    for _ in range(3):
        offset += 500
        clock(offset)
        assert check(proxy, sid)["live"] is True
    clock(8 * 3600 + 1)
    a = check(proxy, sid)
    assert a["live"] is False and a["reason"] == "expired"


def test_check_counts_as_activity_like_the_session_check(client, person, proxy, clock):
    p = person()
    me = signed_in(client, p)
    sid = me.login_response["session_id"]
    clock(400)
    assert check(proxy, sid)["live"] is True  # last_seen moves to +400 s
    clock(900)  # 500 s after the check, 900 s after login: live only because the check counted
    assert check(proxy, sid)["live"] is True
    assert proxy.call("GET", f"/internal/sessions/{sid}")["live"] is True


def test_deactivated_account(client, person, chain, admin, proxy):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    sid = me.login_response["session_id"]
    admin.call("POST", f"/v1/accounts/{p['id']}/deactivate", json={"reason": "離職"})
    a = check(proxy, sid)
    assert a["live"] is False and a["account_status"] == "inactive"
    assert a["grant"]["status"] == "none"  # deactivation revoked it


def test_grant_pending_then_suspended_by_a_change_of_unit(client, person, chain, admin, demo, proxy):
    p = person()
    me = signed_in(client, p)
    sid = me.login_response["session_id"]
    assert check(proxy, sid)["grant"]["status"] == "none"
    app = approve_all(chain, submit(me, items=["C0101"]).json()["id"], effective=today(2))
    g = check(proxy, sid)["grant"]
    assert g == {"status": "pending", "effective_date": today(2), "application_id": app["id"]}
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": demo["querier2"]["unit_id"]})
    a = check(proxy, sid)
    assert a["grant"]["status"] == "suspended" and a["unit_id"] == demo["querier2"]["unit_id"]


def test_unknown_session_item_and_refusals(client, person, proxy, internal, stack):
    problem(proxy.get(f"/internal/sessions/{uuid.uuid4()}/items/C0101"), 404, "not-found")
    p = person()
    sid = signed_in(client, p).login_response["session_id"]
    problem(proxy.get(f"/internal/sessions/{sid}/items/Z9999"), 422, "item-unknown")
    # a client without sessions:read, a user token, no token
    problem(internal("bliproxy", "grants:read").get(f"/internal/sessions/{sid}/items/C0101"), 403, "forbidden")
    user = signed_in(client, person())
    raw = client(stack["BLIGATE_ACCOUNTS_URL"])
    raw.token = user.token
    problem(raw.get(f"/internal/sessions/{sid}/items/C0101"), 403, "forbidden")
    problem(client(stack["BLIGATE_ACCOUNTS_URL"]).get(f"/internal/sessions/{sid}/items/C0101", bearer=False),
            401, "unauthenticated")


def events_of(stack, account_id, type_):
    rows = sql(stack, f"SELECT event::text FROM accounts.outbox WHERE event->>'type' = '{type_}'"
                      f" AND event->'object'->>'id' = '{account_id}' ORDER BY seq")
    return [json.loads(r) for r in rows]


def test_corrective_action_suspends_every_grant_once(client, person, chain, proxy, auditor, stack):
    p = person()
    me = signed_in(client, p)
    sid = me.login_response["session_id"]
    approve_all(chain, submit(me, items=["C0101", "B0101"]).json()["id"])
    approve_all(chain, submit(me, "change_items", items=["C0101", "B0101", "N0101"]).json()["id"],
                effective=today(5))
    assert check(proxy, sid, "N0101")["grant"]["status"] == "pending"
    ca = str(uuid.uuid4())
    body = {"reason": "查核發現未經核准之查詢，立即停權", "corrective_action_id": ca}
    r = auditor.call("POST", f"/internal/accounts/{p['id']}/grants/suspend", json=body)
    assert r["account_id"] == p["id"] and r["corrective_action_id"] == ca
    assert r["count"] == 3 and sorted(r["items"]) == ["B0101", "C0101", "N0101"]
    for item in ("C0101", "B0101", "N0101"):
        assert check(proxy, sid, item)["grant"]["status"] == "suspended"
    evs = events_of(stack, p["id"], "grants.suspended")
    assert len(evs) == 1
    d = evs[0]["details"]
    assert d["reason"] == body["reason"] and d["corrective_action_id"] == ca
    assert sorted(d["items"]) == ["B0101", "C0101", "N0101"]
    assert evs[0]["actor"] == {"client_id": "audit"}
    # idempotent: nothing left to suspend, no second event
    again = auditor.call("POST", f"/internal/accounts/{p['id']}/grants/suspend", json=body)
    assert again["count"] == 0 and again["items"] == []
    assert len(events_of(stack, p["id"], "grants.suspended")) == 1
    # the session itself is untouched; the grants list shows the reason
    assert check(proxy, sid)["live"] is True
    g = {x["item"]: x for x in me.call("GET", f"/v1/accounts/{p['id']}/grants")["items"] if x["status"] != "revoked"}
    assert g["C0101"]["suspension_reason"] == body["reason"]
    # only an approved application brings an item back, and only the items it names
    approve_all(chain, submit(me, "change_items", items=["C0101"]).json()["id"])
    assert check(proxy, sid, "C0101")["grant"]["status"] == "active"
    assert check(proxy, sid, "B0101")["grant"]["status"] == "none"


def test_corrective_suspension_refusals(client, person, proxy, auditor, internal, login):
    body = {"reason": "停權", "corrective_action_id": str(uuid.uuid4())}
    problem(auditor.post(f"/internal/accounts/{uuid.uuid4()}/grants/suspend", json=body), 404, "not-found")
    p = person()
    # an account without grants: nothing to do
    assert auditor.call("POST", f"/internal/accounts/{p['id']}/grants/suspend", json=body)["count"] == 0
    problem(auditor.post(f"/internal/accounts/{p['id']}/grants/suspend", json={"reason": "停權"}), 400,
            "validation-failed")
    problem(auditor.post(f"/internal/accounts/{p['id']}/grants/suspend",
                         json={**body, "corrective_action_id": "nope"}), 400, "validation-failed")
    problem(auditor.post(f"/internal/accounts/{p['id']}/grants/suspend", json={**body, "extra": 1}), 400,
            "unknown-field")
    # the scope is needed: the proxy's client does not hold it, and a user (even the administrator) is refused
    problem(proxy.post(f"/internal/accounts/{p['id']}/grants/suspend", json=body), 403, "forbidden")
    problem(internal("workflow", "grants:read").post(f"/internal/accounts/{p['id']}/grants/suspend", json=body),
            403, "forbidden")
