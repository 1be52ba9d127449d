"""Permissions (rule 2, Form 1; issue 3): applications through the approval chain, grants that
become active on their date, follow staff through job changes, and the single permission
administrator (rule 7). Every response is checked against the contract."""

import concurrent.futures
import datetime
import json
import subprocess

import pytest

from conftest import problem

ACK = {"pdpa_read": True, "environment_ready": True}


def today(offset_days=0):
    # the bureau's date (Asia/Taipei)
    return (datetime.datetime.utcnow() + datetime.timedelta(hours=8, days=offset_days)).strftime("%Y-%m-%d")


def submit(c, type_="new", items=("C0101", "B0101"), **kw):
    body = {"type": type_, "items": list(items), "reason": "辦理社會救助業務需查詢投保資料",
            "acknowledgements": ACK, **kw}
    return c.post("/v1/permission-applications", json=body)


@pytest.fixture
def chain(login, admin):
    """The three deciders for an applicant of SA-WEL: supervisor1, the administrator, the head."""
    return {"sup": login("supervisor1"), "admin": admin, "head": login("permhead")}


def decide(c, app_id, decision="approve", **kw):
    return c.post(f"/v1/permission-applications/{app_id}/decisions", json={"decision": decision, **kw})


def approve_all(chain, app_id, effective=None):
    assert decide(chain["sup"], app_id).status_code == 200
    assert decide(chain["admin"], app_id).status_code == 200
    r = decide(chain["head"], app_id, effective_date=effective or today())
    assert r.status_code == 200, r.text
    return r.json()


def grants(c, account_id):
    return {g["item"]: g for g in c.call("GET", f"/v1/accounts/{account_id}/grants")["items"]
            if g["status"] != "revoked"}


def events_of(stack, account_id, type_):
    """The account's events of one type in the accounts outbox, in order."""
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c",
                          f"SELECT event::text FROM accounts.outbox WHERE event->>'type' = '{type_}'"
                          f" AND event->'object'->>'id' = '{account_id}' ORDER BY seq"],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def signed_in(client, p):
    c = client()
    c.login(p["cert"], p["key"])
    return c


def test_one_person_signs_one_step(client, person, admin, login):
    """Form 1 has three signatures: someone who holds the roles of two steps (a unit supervisor
    who also heads the Secretariat) decides one of them; the next is another person's."""
    p = person()
    app = submit(signed_in(client, p)).json()
    q = person(roles=("supervisor", "permission_unit_head"))
    both = signed_in(client, q)
    assert decide(both, app["id"]).status_code == 200  # step 1, as the applicant's unit supervisor
    assert decide(admin, app["id"]).status_code == 200
    problem(decide(both, app["id"], effective_date=today()), 403, "not-your-decision")
    r = decide(login("permhead"), app["id"], effective_date=today())
    assert r.status_code == 200 and r.json()["state"] == "approved"


def test_only_business_units_hold_query_permissions(client, person, demo):
    """Rules 2 and 5: a district office's staff (or an agency's, or the IT team's) do not become
    queriers; they ask a business unit for a query with Form 3. Nor does a change of duties
    carry permissions into such a unit."""
    for unit in ("D-SANMIN", "IT"):
        p = person(unit_code=unit)
        problem(submit(signed_in(client, p)), 422, "unit-not-eligible")
    p = person()
    problem(submit(signed_in(client, p), "change_of_duties", new_unit_id=demo["district1"]["unit_id"]), 422,
            "unit-not-eligible")
    assert submit(signed_in(client, p)).status_code == 201  # a section's staff apply as before


def test_full_chain_to_active_grants(client, person, chain):
    p = person()
    me = signed_in(client, p)
    r = submit(me)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["state"] == "pending_supervisor" and app["current_step"] == 1
    assert app["form_no"].startswith("F1-") and app["applicant"]["name"] == p["name"]
    assert app["applicant"]["national_id"] == p["national_id"]
    assert app["acknowledgements"] == ACK
    assert decide(chain["sup"], app["id"]).json()["state"] == "pending_admin"
    assert decide(chain["admin"], app["id"]).json()["state"] == "pending_head"
    done = decide(chain["head"], app["id"], effective_date=today(), comment="核可").json()
    assert done["state"] == "approved" and done["effective_date"] == today()
    trail = [(d["step"], d["decision"], d["decider_role"]) for d in done["decisions"]]
    assert trail == [(1, "approve", "supervisor"), (2, "approve", "permission_admin"),
                     (3, "approve", "permission_unit_head")]
    assert all(d["decider_name"] and d["decider_title"] and d["decided_at"] for d in done["decisions"])
    g = grants(me, p["id"])
    assert set(g) == {"C0101", "B0101"} and all(x["status"] == "active" for x in g.values())
    assert g["C0101"]["application_id"] == app["id"]
    # the supervisor sees the whole trail too
    assert len(chain["sup"].call("GET", f"/v1/permission-applications/{app['id']}")["decisions"]) == 3


@pytest.mark.parametrize("step", [1, 2, 3])
def test_reject_at_each_step(client, person, chain, step):
    p = person()
    me = signed_in(client, p)
    app = submit(me).json()
    deciders = [chain["sup"], chain["admin"], chain["head"]]
    for i in range(step - 1):
        assert decide(deciders[i], app["id"]).status_code == 200
    problem(decide(deciders[step - 1], app["id"], "reject"), 400, "validation-failed")
    r = decide(deciders[step - 1], app["id"], "reject", comment="用途說明不足")
    assert r.json()["state"] == "rejected"
    problem(decide(chain["head"], app["id"], effective_date=today()), 409, "application-closed")
    assert grants(me, p["id"]) == {}
    # closed: a new application is possible again
    assert submit(me).status_code == 201


def test_return_and_resubmit(client, person, chain):
    p = person()
    me = signed_in(client, p)
    app = submit(me, items=["C0101"]).json()
    r = decide(chain["sup"], app["id"], "return", comment="請補充查詢項目")
    assert r.json()["state"] == "returned"
    problem(decide(chain["admin"], app["id"]), 409, "decision-out-of-turn")
    # still open: no second application meanwhile
    problem(submit(me), 409, "application-pending-exists")
    again = me.post(f"/v1/permission-applications/{app['id']}/resubmission",
                    json={"items": ["C0101", "B0201"], "reason": "補充：需給付明細", "acknowledgements": ACK})
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["state"] == "pending_supervisor" and body["round"] == 2 and body["items"] == ["C0101", "B0201"]
    approve_all(chain, app["id"])
    assert set(grants(me, p["id"])) == {"C0101", "B0201"}
    problem(me.post(f"/v1/permission-applications/{app['id']}/resubmission",
                    json={"items": ["C0101"], "reason": "again", "acknowledgements": ACK}), 409, "application-closed")


def test_refusals(client, person, chain, login):
    p = person()
    me = signed_in(client, p)
    b = problem(submit(me, items=["C0101", "X9999"]), 422, "item-unknown")
    assert b["errors"][0]["field"] == "items"
    b = problem(submit(me, acknowledgements={"pdpa_read": True, "environment_ready": False}), 422,
                "acknowledgement-required")
    assert b["errors"][0]["field"] == "acknowledgements.environment_ready"
    b = problem(submit(me, items=[], other_text=""), 400, "validation-failed")
    assert b["errors"][0]["field"] == "other_text"
    problem(submit(me, acknowledgements={"pdpa_read": True}), 400, "validation-failed")
    app = submit(me).json()
    problem(submit(me), 409, "application-pending-exists")
    # the wrong unit's supervisor, someone with no step at all, out of turn
    problem(decide(login("supervisor2"), app["id"]), 403, "not-your-decision")
    problem(decide(login("querier1"), app["id"]), 403, "not-your-decision")
    problem(decide(chain["admin"], app["id"]), 409, "decision-out-of-turn")
    problem(decide(chain["head"], app["id"], effective_date=today()), 409, "decision-out-of-turn")
    # the applicant never decides their own
    problem(decide(me, app["id"]), 403, "own-application")
    assert decide(chain["sup"], app["id"]).status_code == 200
    assert decide(chain["admin"], app["id"]).status_code == 200
    problem(decide(chain["head"], app["id"]), 400, "validation-failed")  # no effective date
    problem(decide(chain["head"], app["id"], effective_date=today(-1)), 422, "effective-date-in-past")
    assert decide(chain["head"], app["id"], effective_date=today()).status_code == 200
    problem(decide(chain["head"], app["id"], effective_date=today()), 409, "application-closed")
    # reading: another unit's supervisor and other staff do not see it
    problem(login("supervisor2").get(f"/v1/permission-applications/{app['id']}"), 404, "not-found")


def test_supervisors_own_application_goes_to_the_director(client, person, chain, login):
    boss = person(roles=("supervisor", "querier"))
    me = signed_in(client, boss)
    app = submit(me).json()
    problem(decide(me, app["id"]), 403, "own-application")
    problem(decide(chain["sup"], app["id"]), 403, "not-your-decision")
    r = decide(login("director"), app["id"])
    assert r.status_code == 200 and r.json()["decisions"][0]["decider_role"] == "director"


def test_racing_decisions_exactly_one_wins(client, person, chain):
    p = person()
    second = person(roles=("supervisor",))
    me = signed_in(client, p)
    app = submit(me).json()
    deciders = [chain["sup"], signed_in(client, second)]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda c: decide(c, app["id"]), deciders))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] in ("decision-out-of-turn",)
    assert len(chain["sup"].call("GET", f"/v1/permission-applications/{app['id']}")["decisions"]) == 1


def test_future_effective_date_is_pending_then_active(client, person, chain, clock):
    p = person()
    me = signed_in(client, p)
    app = submit(me, items=["P0301"]).json()
    approve_all(chain, app["id"], effective=today(3))
    assert grants(me, p["id"])["P0301"]["status"] == "pending"
    clock(3 * 86400)
    me = signed_in(client, p)  # three days later: a new session
    assert grants(me, p["id"])["P0301"]["status"] == "active"


def test_change_of_unit_suspends_until_change_of_duties_is_approved(client, person, chain, admin, demo, login):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101", "B0101"]).json()["id"])
    dis = demo["querier2"]["unit_id"]
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    g = grants(admin, p["id"])
    assert {k: v["status"] for k, v in g.items()} == {"C0101": "suspended", "B0101": "suspended"}
    assert g["C0101"]["suspension_reason"] == "change-of-duties"
    # after the move, a change-of-duties application re-confirms C0101 only; the new unit decides
    me.refresh()
    app = submit(me, "change_of_duties", items=["C0101"]).json()
    assert app["target_unit_id"] == dis
    assert decide(login("supervisor2"), app["id"]).status_code == 200
    assert decide(chain["admin"], app["id"]).status_code == 200
    assert decide(chain["head"], app["id"], effective_date=today()).status_code == 200
    g = {k: v["status"] for k, v in grants(admin, p["id"]).items()}
    assert g == {"C0101": "active"}


def test_change_of_duties_approved_in_advance_carries_grants_over(client, person, chain, admin, demo):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    dis = demo["querier2"]["unit_id"]
    app = submit(me, "change_of_duties", items=["C0101"], new_unit_id=dis).json()
    approve_all(chain, app["id"])
    assert grants(admin, p["id"])["C0101"]["status"] == "active"
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    assert grants(admin, p["id"])["C0101"]["status"] == "active"
    # used once: a later move elsewhere suspends again
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": demo["querier1"]["unit_id"]})
    assert grants(admin, p["id"])["C0101"]["status"] == "suspended"


def test_change_items_revoke_and_suspension(client, person, chain, admin):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101", "B0101"]).json()["id"])
    approve_all(chain, submit(me, "change_items", items=["B0101", "N0101"]).json()["id"])
    assert {k: v["status"] for k, v in grants(me, p["id"]).items()} == {"B0101": "active", "N0101": "active"}
    problem(me.post(f"/v1/accounts/{p['id']}/suspend", json={"reason": "x"}), 403, "forbidden")
    r = admin.call("POST", f"/v1/accounts/{p['id']}/suspend", json={"reason": "稽核發現違規查詢，立即停權"})
    assert all(g["status"] == "suspended" for g in r["items"])
    approve_all(chain, submit(me, "revoke", items=[]).json()["id"])
    assert grants(me, p["id"]) == {}


def test_deactivation_revokes_grants_and_ends_sessions(client, person, chain, admin):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    admin.call("POST", f"/v1/accounts/{p['id']}/deactivate", json={"reason": "離職"})
    problem(me.get("/v1/auth/me"), 401, "session-ended")
    all_grants = admin.call("GET", f"/v1/accounts/{p['id']}/grants")["items"]
    assert all_grants and all(g["status"] == "revoked" for g in all_grants)


def test_internal_grants_for_services(client, person, chain, stack):
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    secret = open(f"{stack['BLIGATE_SECRETS_DIR']}/bliproxy.client-secret").read().strip()
    tok = me.client_token("bliproxy", secret, scope="grants:read")
    internal = client(stack["BLIGATE_ACCOUNTS_URL"])
    g = internal.call("GET", f"/internal/accounts/{p['id']}/grants", headers={"Authorization": "Bearer " + tok})
    assert g["account_status"] == "active" and [x["item"] for x in g["items"]] == ["C0101"]
    assert g["items"][0]["status"] == "active"


def test_permission_admin_handover_leaves_exactly_one_holder(admin, demo, login):
    it = demo["itstaff1"]["account_id"]
    pa = demo["permadmin"]["account_id"]

    def holders():
        return [a["id"] for a in admin.items("/v1/accounts", params={"role": "permission_admin", "status": "active"})]

    assert holders() == [pa]
    problem(admin.patch(f"/v1/accounts/{it}", json={"roles": ["it_staff", "permission_admin"]}), 409,
            "role-holder-exists")
    r = admin.call("POST", "/v1/permission-admin/handover", json={"to_account_id": it, "reason": "輪調"})
    assert r == {"from_account_id": pa, "to_account_id": it}
    new = login("itstaff1")
    try:
        assert [a["id"] for a in new.items("/v1/accounts", params={"role": "permission_admin"})] == [it]
        problem(admin.post("/v1/units", json={"code": "NOPE", "name": "x", "kind": "section"}), 403, "forbidden")
    finally:
        back = new.call("POST", "/v1/permission-admin/handover", json={"to_account_id": pa, "reason": "歸建"})
        assert back["to_account_id"] == pa
    assert [a["id"] for a in new.items("/v1/accounts", params={"role": "permission_admin"})] == [pa]
    problem(admin.post("/v1/permission-admin/handover", json={"to_account_id": pa, "reason": "再次移交"}), 422,
            "handover-target-invalid")


def test_demo_grants_came_through_approved_applications(admin, demo):
    want = {"querier1": {"C0101", "B0101", "B0201"}, "querier2": {"C0101", "P0301"}}
    for name, items in want.items():
        g = grants(admin, demo[name]["account_id"])
        assert {k for k, v in g.items() if v["status"] == "active"} >= items
        for item in items:
            app = admin.call("GET", f"/v1/permission-applications/{g[item]['application_id']}")
            assert app["state"] == "approved" and app["applicant_id"] == demo[name]["account_id"]
            assert [d["step"] for d in app["decisions"] if d["decision"] == "approve"][-3:] == [1, 2, 3]


def test_resubmission_and_withdraw_refusals(client, person, chain):
    p = person()
    me = signed_in(client, p)
    app = submit(me).json()
    assert decide(chain["sup"], app["id"], "return", comment="請修正").status_code == 200
    url = f"/v1/permission-applications/{app['id']}/resubmission"
    base = {"items": ["C0101"], "reason": "修正後重送", "acknowledgements": ACK}
    problem(me.post(url, json={**base, "type": "revoke"}), 400, "validation-failed")
    problem(me.post(url, json={**base, "new_unit_id": p["unit_id"]}), 400, "validation-failed")
    problem(me.post(url, json={**base, "acknowledgements": {**ACK, "extra": True}}), 400, "unknown-field")
    problem(me.post(f"/v1/permission-applications/{app['id']}/withdraw", json={"why": "x"}), 400, "unknown-field")
    assert me.post(f"/v1/permission-applications/{app['id']}/withdraw", json={}).json()["state"] == "withdrawn"


def test_change_of_duties_to_an_unknown_unit(client, person, chain):
    p = person()
    me = signed_in(client, p)
    problem(submit(me, "change_of_duties", items=["C0101"], new_unit_id="00000000-0000-4000-8000-000000000000"),
            422, "unit-unknown")


def test_advance_change_of_duties_takes_effect_at_the_move_with_its_items_and_date(client, person, chain, admin,
                                                                                  demo, clock, stack):
    """Rule 2 / Form 1: a change of duties approved in advance names the items for the new duties,
    effective from a date. At the move the grants become exactly those items from that date (the
    others revoked), as its approval does after a move; until the move the current duties' stand."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101", "B0101"]).json()["id"])
    dis = demo["querier2"]["unit_id"]
    app = submit(me, "change_of_duties", items=["C0101", "N0101"], new_unit_id=dis).json()
    approve_all(chain, app["id"], effective=today(5))
    assert {k: v["status"] for k, v in grants(admin, p["id"]).items()} == {"C0101": "active", "B0101": "active"}
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    g = {k: (v["status"], v["effective_date"], v["application_id"]) for k, v in grants(admin, p["id"]).items()}
    assert g == {"C0101": ("pending", today(5), app["id"]), "N0101": ("pending", today(5), app["id"])}
    ended = [x for x in admin.call("GET", f"/v1/accounts/{p['id']}/grants")["items"] if x["item"] == "B0101"]
    assert [(x["status"], x["revocation_reason"]) for x in ended] == [("revoked", "change_of_duties")]
    # the move's grant change is on the log, as the approval's would be
    d = events_of(stack, p["id"], "grants.changed")[-1]["details"]
    assert (d["application_id"], d["type"], d["revoked_items"], sorted(d["granted_items"]), d["effective_date"]) == \
        (app["id"], "change_of_duties", ["B0101"], ["C0101", "N0101"], today(5))
    upd = events_of(stack, p["id"], "account.updated")[-1]["details"]["change_of_duties"]
    assert upd == {"grants": "carried_over", "application_id": app["id"]}
    clock(5 * 86400)
    me = signed_in(client, p)
    assert {k: v["status"] for k, v in grants(me, p["id"]).items()} == {"C0101": "active", "N0101": "active"}


def test_advance_change_of_duties_does_not_lift_a_role_removal(client, person, chain, admin, demo):
    """A change of duties approved in advance, then the querier role removed before the move:
    the move gives the application's items, suspended with the role."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    dis = demo["querier2"]["unit_id"]
    approve_all(chain, submit(me, "change_of_duties", items=["C0101"], new_unit_id=dis).json()["id"])
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": []})
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    g = grants(admin, p["id"])
    assert {k: (v["status"], v["suspension_reason"]) for k, v in g.items()} == \
        {"C0101": ("suspended", "querier-role-removed")}


def test_application_open_at_a_change_of_unit_is_not_decided(client, person, chain, admin, demo, login):
    """An application is decided for the unit it was filed in: after the applicant moves, the
    old unit's supervisor (or the steps after) no longer decide it (409); the applicant withdraws
    it and applies from the new unit."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    pending = submit(me, "new", items=["C0101", "B0101"]).json()
    at_admin = person()
    other = submit(signed_in(client, at_admin), items=["C0101"]).json()
    assert decide(chain["sup"], other["id"]).status_code == 200
    dis = demo["querier2"]["unit_id"]
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    admin.call("PATCH", f"/v1/accounts/{at_admin['id']}", json={"unit_id": dis})
    problem(decide(chain["sup"], pending["id"]), 409, "applicant-unit-changed")
    problem(decide(login("supervisor2"), pending["id"]), 403, "not-your-decision")
    problem(decide(chain["admin"], other["id"]), 409, "applicant-unit-changed")
    assert grants(admin, p["id"])["C0101"]["status"] == "suspended"
    assert me.post(f"/v1/permission-applications/{pending['id']}/withdraw", json={}).json()["state"] == "withdrawn"
    me.refresh()
    assert submit(me, "change_of_duties", items=["C0101"]).json()["target_unit_id"] == dis


@pytest.mark.parametrize("role_removed_first", [False, True])
def test_change_of_unit_suspension_is_lifted_only_by_a_change_of_duties(role_removed_first, client, person, chain,
                                                                        admin, demo, login, stack):
    """A change of unit suspends the grants until a change of duties is approved: a plain Form 1
    (new, change_items) approved in the new unit adds what it names that was not held, and leaves
    the suspended grants suspended — also those suspended before the move for another reason
    (the querier role removed, then given back)."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    if role_removed_first:  # suspended before the move for another reason, the role back after it
        admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": []})
    dis = demo["querier2"]["unit_id"]
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    if role_removed_first:
        admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": ["querier"]})
    me.refresh()
    new_chain = {**chain, "sup": login("supervisor2")}
    approve_all(new_chain, submit(me, "new", items=["C0101", "B0101"]).json()["id"])
    g = grants(admin, p["id"])
    assert {k: (v["status"], v["suspension_reason"]) for k, v in g.items()} == \
        {"C0101": ("suspended", "change-of-duties"), "B0101": ("active", None)}
    d = events_of(stack, p["id"], "grants.changed")[-1]["details"]
    assert (d["granted_items"], d["kept_suspended_items"]) == (["B0101"], ["C0101"])
    approve_all(new_chain, submit(me, "change_items", items=["C0101", "B0101"]).json()["id"])
    assert grants(admin, p["id"])["C0101"]["status"] == "suspended"
    approve_all(new_chain, submit(me, "change_of_duties", items=["C0101"]).json()["id"])
    assert {k: v["status"] for k, v in grants(admin, p["id"]).items()} == {"C0101": "active"}


def test_a_change_of_duties_into_the_unit_moved_to_is_decided_after_the_move(client, person, chain, admin, demo):
    """Applied for before the change (rule 2), its first step decided, then the move: the rest
    of the chain decides it, and it takes effect at once."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101", "B0101"]).json()["id"])
    dis = demo["querier2"]["unit_id"]
    app = submit(me, "change_of_duties", items=["C0101"], new_unit_id=dis).json()
    assert decide(chain["sup"], app["id"]).status_code == 200
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"unit_id": dis})
    assert decide(chain["admin"], app["id"]).status_code == 200
    r = decide(chain["head"], app["id"], effective_date=today())
    assert r.status_code == 200, r.text
    assert {k: v["status"] for k, v in grants(admin, p["id"]).items()} == {"C0101": "active"}


def test_form1_needs_the_querier_role(client, person, chain, admin):
    """Removing the querier role suspends the grants; no Form 1 for items brings them back while
    the account does not hold the role — neither a new one nor one open when the role went.
    Giving items up (revoke) is for anyone."""
    p = person()
    me = signed_in(client, p)
    approve_all(chain, submit(me, items=["C0101"]).json()["id"])
    open_app = submit(me, "change_items", items=["C0101", "B0101"]).json()
    assert decide(chain["sup"], open_app["id"]).status_code == 200
    assert decide(chain["admin"], open_app["id"]).status_code == 200
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": []})
    problem(decide(chain["head"], open_app["id"], effective_date=today()), 409, "applicant-not-querier")
    assert grants(admin, p["id"])["C0101"]["suspension_reason"] == "querier-role-removed"
    me.post(f"/v1/permission-applications/{open_app['id']}/withdraw", json={})
    for type_ in ("new", "change_items", "change_of_duties"):
        problem(submit(me, type_, items=["C0101"]), 409, "applicant-not-querier")
    assert grants(admin, p["id"])["C0101"]["status"] == "suspended"
    # the role back: an approved application brings the item back
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": ["querier"]})
    approve_all(chain, submit(me, "new", items=["C0101"]).json()["id"])
    assert grants(admin, p["id"])["C0101"]["status"] == "active"
    # without the role, the items can still be given up
    admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"roles": []})
    approve_all(chain, submit(me, "revoke", items=[]).json()["id"])
    assert grants(admin, p["id"]) == {}
