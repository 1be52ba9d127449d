"""Every login, failure, logout and account change lands in the accounts outbox in the same
transaction as the change (issue 2), and no event carries a full national ID."""

import json
import subprocess

from conftest import problem, sign_in_body


def sql(stack, query):
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c", query], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def events_about(stack, object_id):
    rows = sql(stack, f"SELECT event::text FROM accounts.outbox WHERE event->'object'->>'id' = '{object_id}'"
                      " OR event->'actor'->>'account_id' = '{object_id}'"
                      f" OR event->'details'->>'account_id' = '{object_id}' ORDER BY seq")
    return [json.loads(r) for r in rows]


def test_login_logout_and_failure_events(client, person, stack):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    sid = c.login_response["session_id"]
    c.logout()
    types = [e["type"] for e in events_about(stack, sid)]
    assert types == ["auth.login", "auth.logout"], types
    login = events_about(stack, sid)[0]
    assert login["actor"]["account_id"] == p["id"] and login["outcome"] == "success"
    assert login["request_id"] and login["client_addr"]
    # a failure: signature over another nonce
    ch = c.challenge()
    body = sign_in_body(ch, p["cert"], p["key"])
    body["signature"] = sign_in_body(c.challenge(), p["cert"], p["key"])["signature"]
    problem(c.post("/v1/auth/sessions", json=body, bearer=False), 401, "signature-invalid")
    rows = sql(stack, "SELECT event::text FROM accounts.outbox WHERE event->>'type' = 'auth.login.failed'"
                      " ORDER BY seq DESC LIMIT 1")
    failed = json.loads(rows[0])
    assert failed["details"]["code"] == "signature-invalid" and failed["outcome"] == "failure"


def test_a_login_names_the_session_it_ended(client, person, stack):
    """Rule 3: a new login ends the account's older session, and its auth.login event says
    which one, in the same transaction."""
    p = person()
    first, second = client(), client()
    first.login(p["cert"], p["key"])
    login1 = events_about(stack, first.login_response["session_id"])[0]
    assert "superseded_session_id" not in login1["details"]
    second.login(p["cert"], p["key"])
    login2 = events_about(stack, second.login_response["session_id"])[0]
    assert login2["type"] == "auth.login"
    assert login2["details"]["superseded_session_id"] == first.login_response["session_id"]
    assert login2["details"]["method"] == "signature" and len(login2["details"]["certificate"]) == 64


def test_account_changes_are_recorded_without_national_ids(person, admin, stack):
    p = person()
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"title": "組長"})
    admin.call("POST", f"/v1/accounts/{p['id']}/deactivate", json={"reason": "retired"})
    evs = events_about(stack, p["id"])
    types = [e["type"] for e in evs]
    for t in ("account.created", "certificate.registered", "account.updated", "account.deactivated"):
        assert t in types, types
    upd = next(e for e in evs if e["type"] == "account.updated")
    assert upd["details"]["changes"]["title"] == {"from": "科員", "to": "組長"}
    # no event anywhere holds a full national ID
    assert sql(stack, f"SELECT count(*) FROM accounts.outbox WHERE event::text LIKE '%{p['national_id']}%'") == ["0"]
