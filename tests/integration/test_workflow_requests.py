"""Query registrations (rule 5, Form 2; issue 4): registered with the legal basis and the
relevance, approved by the querier's unit supervisor (never the querier or the requester: then
the Director), usable for a window, each (subject, item) a limited number of times; consumed
and released by the proxy; object-level access. Through the gateway with the demo accounts
(querier1 holds C0101, B0101, B0201; querier2 C0101, P0301). Every response is checked against
the contract."""

import base64
import concurrent.futures
import datetime
import uuid

import pytest
import requests

from conftest import new_national_id, problem
from workflow_helpers import (RELEVANCE, audit_source, bases, events_about, form2, grant, person_in, proxy,  # noqa: F401
                              race_consume, sql, subject, today, units)


def submit(c, body, status=201):
    r = c.post("/v1/query-requests", json=body)
    assert r.status_code == status, r.text
    return r.json()


def decide(c, rid, decision="approve", **kw):
    return c.post(f"/v1/query-requests/{rid}/decision", json={"decision": decision, **kw})


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def test_form2_end_to_end(login, bases, proxy, demo, stack):
    q1, sup = login("querier1"), login("supervisor1")
    a, b = new_national_id(), new_national_id()
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101", "B0101"], a, "王小明"), subject(["B0201"], b, "李小華")])
    r = q1.post("/v1/query-requests", json=body)
    assert r.status_code == 201, r.text
    req = r.json()
    assert r.headers["Location"] == f"/v1/query-requests/{req['id']}"
    assert req["registration_no"].startswith("F2-") and req["state"] == "pending"
    assert req["querier"]["id"] == req["requester"]["id"] == demo["querier1"]["account_id"]
    assert req["unit_id"] == demo["querier1"]["unit_id"] and req["decider_role"] == "supervisor"
    assert req["legal_basis"]["law_name"] == "社會救助法" and req["article"] == "第5條之1"
    assert req["subject_count"] == 2 and req["max_uses"] == 1 and req["usage"] == {"used": 0, "total": 3, "remaining": 3}
    # the creating reply masks the numbers the caller just sent
    assert [s["national_id_masked"] for s in req["subjects"]] == [a[:3] + "****" + a[-3:], b[:3] + "****" + b[-3:]]
    assert all("national_id" not in s for s in req["subjects"])
    # the deciding supervisor reads the subjects in full before deciding
    seen = sup.call("GET", f"/v1/query-requests/{req['id']}")
    assert [s["national_id"] for s in seen["subjects"]] == [a, b]
    assert seen["subjects"][0]["items"] == [{"item": "C0101", "used": 0, "max_uses": 1, "remaining": 1},
                                            {"item": "B0101", "used": 0, "max_uses": 1, "remaining": 1}]
    d = decide(sup, req["id"])
    assert d.status_code == 200, d.text
    ok = d.json()
    assert ok["state"] == "approved" and ok["decision"]["decided_by"] == demo["supervisor1"]["account_id"]
    assert ts(ok["valid_until"]) - ts(ok["valid_from"]) == datetime.timedelta(days=7)
    # the proxy takes each use once, naming the subject by ID or by subject id
    sid_b = seen["subjects"][1]["id"]
    got = proxy.consume(req["id"], demo["querier1"]["account_id"], "C0101", national_id=a)
    assert got.status_code == 200, got.text
    use = got.json()
    assert use["subject"]["national_id"] == a and use["remaining"] == 0 and use["registration_no"] == req["registration_no"]
    assert use["purpose"]["legal_basis"]["code"] == "PUBLIC-ASSISTANCE" and use["purpose"]["case_reference"]
    assert proxy.consume(req["id"], demo["querier1"]["account_id"], "B0101", national_id=a).status_code == 200
    assert proxy.consume(req["id"], demo["querier1"]["account_id"], "B0201", subject_id=sid_b).status_code == 200
    problem(proxy.consume(req["id"], demo["querier1"]["account_id"], "B0201", subject_id=sid_b), 409, "uses-exhausted")
    after = q1.call("GET", f"/v1/query-requests/{req['id']}")
    assert after["usage"] == {"used": 3, "total": 3, "remaining": 0}
    # every step is an event; none carries a national ID, subjects go as mask + keyed HMAC
    evs = events_about(stack, req["id"])
    types = [e["type"] for e in evs]
    assert types[0] == "query_request.submitted" and "query_request.decided" in types
    assert types.count("query_request.use_consumed") == 3 and "query_request.subjects_disclosed" in types
    sub = evs[0]
    assert len(sub["subjects"]) == 2 and all(len(s["id_hmac"]) == 64 and "****" in s["id_masked"] for s in sub["subjects"])
    assert sub["purpose"]["registration_no"] == req["registration_no"]
    for e in evs:
        assert a not in str(e) and b not in str(e)
    assert not sql(stack, f"SELECT 1 FROM workflow.outbox WHERE event::text LIKE '%{a}%'")
    assert not sql(stack, f"SELECT 1 FROM workflow.query_request_subjects WHERE id_enc LIKE '%{a}%'"
                          f" OR name LIKE '%{a}%'")
    if "audit" in stack.get("BLIGATE_SERVICES", "").split():
        assert audit_source(stack, sub["id"]) == "workflow"


def test_an_ended_session_is_refused_at_once(login, bases, demo):
    """Rule 3: a logout ends the session everywhere data is reached, not when the token expires
    five minutes later: workflow asks accounts about the session on every request, so an old
    token reads no subject's ID number and decides nothing."""
    q1 = login("querier1")
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], new_national_id())]))
    token = q1.token
    q1.logout()
    q1.token = token
    problem(q1.get(f"/v1/query-requests/{req['id']}"), 401, "session-ended")
    problem(q1.get("/v1/query-requests"), 401, "session-ended")
    problem(q1.post(f"/v1/query-requests/{req['id']}/cancel", json={"reason": "no longer needed here"}),
            401, "session-ended")
    sup = login("supervisor1")
    token = sup.token
    sup.logout()
    sup.token = token
    problem(sup.get(f"/v1/query-requests/{req['id']}"), 401, "session-ended")
    problem(decide(sup, req["id"]), 401, "session-ended")
    # nothing was decided or cancelled with the ended sessions
    assert login("supervisor1").call("GET", f"/v1/query-requests/{req['id']}")["state"] == "pending"


def test_colleague_asks_a_querier(login, bases, person_in, demo):
    """Rule 5: staff of the same unit may ask a querier to query for them."""
    colleague = person_in(demo["querier1"]["unit_id"], roles=())
    nid = new_national_id()
    body = form2(bases["SENIOR-WELFARE"], [subject(["C0101"], nid)], querier_id=demo["querier1"]["account_id"])
    req = submit(colleague["c"], body)
    assert req["requester"]["id"] == colleague["id"] and req["querier"]["id"] == demo["querier1"]["account_id"]
    assert req["submitted_by"] == colleague["id"]
    # requester and querier see the number; an uninvolved colleague sees nothing
    assert colleague["c"].call("GET", f"/v1/query-requests/{req['id']}")["subjects"][0]["national_id"] == nid
    q1 = login("querier1")
    assert q1.call("GET", f"/v1/query-requests/{req['id']}")["subjects"][0]["national_id"] == nid
    bystander = person_in(demo["querier1"]["unit_id"], roles=("querier",))
    problem(bystander["c"].get(f"/v1/query-requests/{req['id']}"), 404, "not-found")
    # the querier may also register on the colleague's behalf
    body2 = form2(bases["SENIOR-WELFARE"], [subject(["C0101"])], requester_id=colleague["id"])
    assert submit(q1, body2)["requester"]["id"] == colleague["id"]
    # but nobody registers for two other people
    third = form2(bases["SENIOR-WELFARE"], [subject(["C0101"])], querier_id=demo["querier1"]["account_id"],
                  requester_id=colleague["id"])
    problem(bystander["c"].post("/v1/query-requests", json=third), 403, "forbidden")


def test_a_requester_who_left_gets_no_data(login, bases, person_in, demo, admin):
    """A request asked for by a colleague who has since left is not approved (422
    requester-invalid, as at submission); it may still be rejected."""
    colleague = person_in(demo["querier1"]["unit_id"], roles=())
    body = form2(bases["SENIOR-WELFARE"], [subject(["C0101"])], querier_id=demo["querier1"]["account_id"])
    req = submit(colleague["c"], body)
    admin.call("POST", f"/v1/accounts/{colleague['id']}/deactivate", json={"reason": "離職"})
    refused_then_rejected(login("supervisor1"), req, "requester-invalid", "申請人已離職")


def refused_then_rejected(sup, req, code, reason):
    """The approval is refused (422 `code`), the request stays pending, and it may be rejected."""
    url = f"/v1/query-requests/{req['id']}/decision"
    problem(sup.post(url, json={"decision": "approve"}), 422, code)
    assert sup.call("GET", f"/v1/query-requests/{req['id']}")["state"] == "pending"
    assert sup.call("POST", url, json={"decision": "reject", "reason": reason})["state"] == "rejected"


@pytest.mark.parametrize("change", ["moved", "role-removed", "left"])
def test_a_request_of_a_querier_gone_from_the_unit_is_not_approved(change, login, bases, person_in, units, admin):
    """The querier is no longer an active querier of the request's unit when it is decided:
    moved to another, the role removed or left. Approved, nobody could use it (the proxy
    refuses all three): 422 querier-invalid; it may still be rejected."""
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    asker = person_in(units["SA-WEL"], roles=())  # the requester, who stays
    req = submit(who["c"], form2(bases["SENIOR-WELFARE"], [subject(["C0101"])], requester_id=asker["id"]))
    if change == "moved":
        admin.call("PATCH", f"/v1/accounts/{who['id']}", json={"unit_id": units["SA-DIS"]})
    elif change == "role-removed":
        admin.call("PATCH", f"/v1/accounts/{who['id']}", json={"roles": []})
    else:
        admin.call("POST", f"/v1/accounts/{who['id']}/deactivate", json={"reason": "離職"})
    refused_then_rejected(login("supervisor1"), req, "querier-invalid", "查詢者已調離")


def test_legal_basis_must_cover_every_item(login, bases):
    q1 = login("querier1")
    body = form2(bases["DOMESTIC-VIOLENCE"], [subject(["C0101", "B0101"]), subject(["B0201"])])
    p = problem(q1.post("/v1/query-requests", json=body), 422, "item-not-covered-by-legal-basis")
    assert p["items"] == ["B0101", "B0201"]
    assert "B0101" in p["detail"] and "B0201" in p["detail"] and "家庭暴力防治法" in p["detail"]
    assert {e["field"] for e in p["errors"]} == {"items"} and len(p["errors"]) == 2
    # covered: accepted
    submit(q1, form2(bases["DOMESTIC-VIOLENCE"], [subject(["C0101"])]))


def test_querier_must_hold_an_active_grant(login, bases, person_in, demo):
    q1 = login("querier1")
    p = problem(q1.post("/v1/query-requests", json=form2(bases["PUBLIC-ASSISTANCE"],
                                                         [subject(["C0101", "P0301"]), subject(["N0101"])])),
                422, "items-not-granted")
    assert p["items"] == ["P0301", "N0101"] and "P0301" in p["detail"]
    # a querier without any grant
    fresh = person_in(demo["querier1"]["unit_id"], roles=("querier",))
    p = problem(fresh["c"].post("/v1/query-requests", json=form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])),
                422, "items-not-granted")
    assert p["items"] == ["C0101"]
    # someone without the querier role cannot be the querier
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])], querier_id=demo["supervisor1"]["account_id"])
    problem(q1.post("/v1/query-requests", json={**body, "requester_id": demo["querier1"]["account_id"]}), 422,
            "querier-invalid")
    body["querier_id"] = str(uuid.uuid4())
    problem(q1.post("/v1/query-requests", json={**body, "requester_id": demo["querier1"]["account_id"]}), 422,
            "querier-invalid")


def test_requester_must_be_of_the_queriers_unit(login, bases, demo):
    q1, q2 = login("querier1"), login("querier2")
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])], requester_id=demo["querier2"]["account_id"])
    problem(q1.post("/v1/query-requests", json=body), 422, "requester-other-unit")
    # the other way round: someone of another unit asks querier1
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])], querier_id=demo["querier1"]["account_id"])
    problem(q2.post("/v1/query-requests", json=body), 422, "requester-other-unit")
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])], requester_id=str(uuid.uuid4()))
    problem(q1.post("/v1/query-requests", json=body), 422, "requester-invalid")


def test_legal_statement_and_subjects_are_checked(login, bases):
    q1 = login("querier1")
    base = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    for missing in ("legal_basis_id", "article", "relevance"):
        body = {k: v for k, v in base.items() if k != missing}
        p = problem(q1.post("/v1/query-requests", json=body), 422, "legal-basis-required")
        assert [e["field"] for e in p["errors"]] == [missing]
    p = problem(q1.post("/v1/query-requests", json={**base, "relevance": "查" * 14}), 422, "legal-basis-required")
    assert p["errors"][0]["code"] == "length"
    assert submit(q1, {**base, "relevance": "查" * 15})["relevance"] == "查" * 15
    # fourteen characters padded with ideographic and zero-width spaces are still fourteen
    problem(q1.post("/v1/query-requests", json={**base, "relevance": "查" * 14 + "\u3000\u200b" * 5}), 422,
            "legal-basis-required")
    problem(q1.post("/v1/query-requests", json={**base, "article": "   "}), 422, "legal-basis-required")
    problem(q1.post("/v1/query-requests", json={**base, "legal_basis_id": str(uuid.uuid4())}), 422,
            "legal-basis-unknown")
    problem(q1.post("/v1/query-requests", json={k: v for k, v in base.items() if k != "case_reference"}), 400,
            "validation-failed")
    # subjects: 1 to 50, valid IDs, no person twice, known items, no unknown fields
    bad = dict(subject(["C0101"]), national_id="A123456788")
    p = problem(q1.post("/v1/query-requests", json={**base, "subjects": [subject(), bad]}), 400, "validation-failed")
    assert p["errors"][0]["field"] == "subjects[1].national_id"
    assert "A123456788" not in str(p)
    problem(q1.post("/v1/query-requests", json={**base, "subjects": []}), 400, "validation-failed")
    problem(q1.post("/v1/query-requests", json={**base, "subjects": [subject() for _ in range(51)]}), 400,
            "validation-failed")
    assert submit(q1, {**base, "subjects": [subject() for _ in range(50)]})["subject_count"] == 50
    same = subject()
    p = problem(q1.post("/v1/query-requests", json={**base, "subjects": [same, dict(same, name="別名")]}), 400,
                "validation-failed")
    assert p["errors"][0]["code"] == "duplicate"
    p = problem(q1.post("/v1/query-requests", json={**base, "subjects": [subject(["C0101", "Z9999"])]}), 422,
                "item-unknown")
    assert p["errors"][0]["field"] == "subjects[0].items"
    problem(q1.post("/v1/query-requests", json={**base, "subjects": [dict(subject(), birthday="1990-01-01")]}),
            400, "unknown-field")
    # a national ID typed into free text would be stored in clear and could reach the audit log
    nid = new_national_id()
    p = problem(q1.post("/v1/query-requests", json={**base, "relevance": f"申請人 {nid} 之家戶所得查核需要"}), 400,
                "validation-failed")
    assert p["errors"][0]["field"] == "relevance" and p["errors"][0]["code"] == "national-id" and nid not in str(p)
    p = problem(q1.post("/v1/query-requests", json={**base, "subjects": [dict(subject(), name="王" + nid)]}), 400,
                "validation-failed")
    assert p["errors"][0]["field"] == "subjects[0].name"
    # typed in lower case it is the number all the same
    p = problem(q1.post("/v1/query-requests", json={**base, "case_reference": "個案" + nid.lower()}), 400,
                "validation-failed")
    assert p["errors"][0]["field"] == "case_reference" and nid.lower() not in str(p)
    problem(q1.post("/v1/query-requests", json={**base, "max_uses": 4}), 400, "validation-failed")
    problem(q1.post("/v1/query-requests", json={**base, "max_uses": 0}), 400, "validation-failed")


# characters that show nothing: Braille blank, variation selectors, Mongolian free variation
# selectors, tags, interlinear annotation, word joiner and invisible operators, a lone combining mark
INVISIBLE = ("\u2800", "\ufe0f", "\ufe00", "\u180b", "\U000e0041", "\U000e007f", "\ufff9", "\ufffb",
             "\u2060", "\u2064", "\u0301", "\u200b\u2800\ufe0f")


def test_a_statement_of_invisible_characters_states_nothing(login, bases):
    """Rule 5: a legal statement, a case reference or a subject's name made only of characters
    that do not show is blank, whichever invisible characters they are."""
    q1 = login("querier1")
    base = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    for blank in INVISIBLE:
        p = problem(q1.post("/v1/query-requests", json={**base, "article": blank, "relevance": blank * 15}), 422,
                    "legal-basis-required")
        assert [e["field"] for e in p["errors"]] == ["article", "relevance"], (blank, p)
        # fourteen characters that show, padded with invisible ones, are still fourteen
        p = problem(q1.post("/v1/query-requests", json={**base, "relevance": "查" * 14 + blank * 5}), 422,
                    "legal-basis-required")
        assert p["errors"][0]["code"] == "length"
        p = problem(q1.post("/v1/query-requests", json={**base, "case_reference": blank}), 400, "validation-failed")
        assert p["errors"][0]["field"] == "case_reference", p
        p = problem(q1.post("/v1/query-requests", json={**base, "subjects": [dict(subject(["C0101"]), name=blank)]}),
                    400, "validation-failed")
        assert p["errors"][0]["field"] == "subjects[0].name", p
    # text that shows is counted, whatever its script; a variation selector after it changes nothing
    assert submit(q1, {**base, "article": "第4條", "relevance": "查核申請人家戶所得以審核社會救助資格\ufe0f"})


def test_nobody_approves_their_own_request(login, bases, demo, person_in, admin):
    q1, sup, director = login("querier1"), login("supervisor1"), login("director")
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    problem(decide(q1, req["id"]), 403, "self-approval")
    # the unit's supervisor asks querier1 for a query: then the Director decides
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])], querier_id=demo["querier1"]["account_id"])
    own = submit(sup, body)
    assert own["requester"]["id"] == demo["supervisor1"]["account_id"] and own["decider_role"] == "director"
    problem(decide(sup, own["id"]), 403, "self-approval")
    problem(decide(q1, own["id"]), 403, "self-approval")
    d = decide(director, own["id"])
    assert d.status_code == 200 and d.json()["decision"]["decided_by"] == demo["director"]["account_id"]
    # a querier who is also a supervisor: the Director decides, not a fellow supervisor
    boss = person_in(demo["querier1"]["unit_id"], roles=("querier", "supervisor"))
    grant(login, admin, boss, ["C0101"], "director")
    mine = submit(boss["c"], form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    assert mine["decider_role"] == "director"
    problem(decide(boss["c"], mine["id"]), 403, "self-approval")
    problem(decide(sup, mine["id"]), 403, "not-request-decider")
    # (grant() signed the Director in again, which ended the first session)
    problem(decide(director, mine["id"]), 401, "session-ended")
    assert decide(login("director"), mine["id"]).status_code == 200


def test_only_the_supervisor_of_the_unit_decides(login, bases):
    q1 = login("querier1")
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    for name in ("supervisor2", "permhead", "district1head", "reviewer1", "director", "permadmin"):
        problem(decide(login(name), req["id"]), 403, "not-request-decider")
    problem(decide(login("supervisor2"), str(uuid.uuid4())), 404, "not-found")
    sup = login("supervisor1")
    problem(sup.post(f"/v1/query-requests/{req['id']}/decision", json={"decision": "reject"}), 400,
            "validation-failed")
    problem(decide(sup, req["id"], "reject", reason="x", valid_days=3), 400, "validation-failed")
    problem(decide(sup, req["id"], valid_days=31), 400, "validation-failed")
    r = decide(sup, req["id"], "reject", reason="與個案無關")
    assert r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["valid_until"] is None
    assert r.json()["decision"]["reason"] == "與個案無關"
    problem(decide(sup, req["id"]), 409, "request-not-pending")


def test_racing_deciders_one_wins(login, bases, person_in, demo):
    q1 = login("querier1")
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    second = person_in(demo["querier1"]["unit_id"], roles=("supervisor",))
    deciders = [login("supervisor1"), second["c"]]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda c: decide(c, req["id"]), deciders))
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    assert next(r for r in results if r.status_code == 409).json()["code"] == "request-not-pending"


def test_window_and_expiry_follow_the_clock(login, bases, proxy, demo, clock):
    q1, sup = login("querier1"), login("supervisor1")
    nid = new_national_id()
    week = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    day = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    assert decide(sup, week["id"]).status_code == 200
    r = decide(sup, day["id"], valid_days=1)
    assert r.status_code == 200 and ts(r.json()["valid_until"]) - ts(r.json()["valid_from"]) == datetime.timedelta(days=1)
    querier = demo["querier1"]["account_id"]
    clock(86400 + 60)  # a day and a minute later
    problem(proxy.consume(day["id"], querier, "C0101", national_id=nid), 409, "request-expired")
    q1 = login("querier1")  # the old access token has expired meanwhile
    assert q1.call("GET", f"/v1/query-requests/{day['id']}")["state"] == "expired"
    assert q1.call("GET", f"/v1/query-requests/{week['id']}")["state"] == "approved"
    expired = {x["id"] for x in q1.items("/v1/query-requests", params={"state": "expired"})}
    assert day["id"] in expired and week["id"] not in expired
    problem(q1.post(f"/v1/query-requests/{day['id']}/cancel", json={}), 409, "request-closed")
    clock(7 * 86400 + 60)  # past the default window of 7 days
    problem(proxy.consume(week["id"], querier, "C0101", national_id=nid), 409, "request-expired")
    clock(0)
    assert proxy.consume(week["id"], querier, "C0101", national_id=nid).status_code == 200


def test_racing_consumes_of_the_last_use(login, bases, proxy, demo, stack):
    q1, sup = login("querier1"), login("supervisor1")
    nid = new_national_id()
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)], max_uses=2))
    assert decide(sup, req["id"]).status_code == 200
    querier = demo["querier1"]["account_id"]
    assert proxy.consume(req["id"], querier, "C0101", national_id=nid).status_code == 200  # one use left
    n = 12
    results = race_consume(proxy, stack, req["id"], querier, nid, n)
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [409] * (n - 1), [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"uses-exhausted"}
    rows = sql(stack, f"SELECT used, max_uses FROM workflow.query_request_uses WHERE request_id = '{req['id']}'")
    assert rows == ["2|2"]
    assert sql(stack, "SELECT count(*) FROM workflow.query_request_consumptions"
                      f" WHERE request_id = '{req['id']}'") == ["2"]


def test_max_uses_and_release(login, bases, proxy, demo):
    q1, sup = login("querier1"), login("supervisor1")
    nid = new_national_id()
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["B0101"], nid)], max_uses=3))
    assert req["max_uses"] == 3 and req["usage"]["total"] == 3
    assert decide(sup, req["id"]).status_code == 200
    querier = demo["querier1"]["account_id"]
    uses = [proxy.consume(req["id"], querier, "B0101", national_id=nid) for _ in range(3)]
    assert [u.status_code for u in uses] == [200, 200, 200] and [u.json()["remaining"] for u in uses] == [2, 1, 0]
    problem(proxy.consume(req["id"], querier, "B0101", national_id=nid), 409, "uses-exhausted")
    # an upstream failure gives the use back, once however often it is retried
    rel = proxy.release(req["id"], uses[2].json()["consumption_id"], reason="upstream timeout")
    assert rel.status_code == 200 and rel.json()["remaining"] == 1 and rel.json()["already_released"] is False
    again = proxy.release(req["id"], uses[2].json()["consumption_id"])
    assert again.status_code == 200 and again.json()["already_released"] is True
    assert q1.call("GET", f"/v1/query-requests/{req['id']}")["usage"]["used"] == 2
    assert proxy.consume(req["id"], querier, "B0101", national_id=nid).status_code == 200
    problem(proxy.release(req["id"], str(uuid.uuid4())), 404, "not-found")
    other = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["B0101"])]))
    problem(proxy.release(other["id"], uses[0].json()["consumption_id"]), 404, "not-found")


def test_consume_refusals(login, bases, proxy, demo, stack):
    q1, sup = login("querier1"), login("supervisor1")
    nid = new_national_id()
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    querier = demo["querier1"]["account_id"]
    problem(proxy.consume(req["id"], querier, "C0101", national_id=nid), 409, "request-not-approved")
    assert decide(sup, req["id"]).status_code == 200
    problem(proxy.consume(req["id"], demo["querier2"]["account_id"], "C0101", national_id=nid), 403,
            "not-request-querier")
    problem(proxy.consume(req["id"], querier, "C0101", national_id=new_national_id()), 422, "subject-not-on-request")
    problem(proxy.consume(req["id"], querier, "C0101", subject_id=str(uuid.uuid4())), 422, "subject-not-on-request")
    problem(proxy.consume(req["id"], querier, "B0101", national_id=nid), 422, "item-not-on-request")
    problem(proxy.consume(str(uuid.uuid4()), querier, "C0101", national_id=nid), 404, "not-found")
    problem(proxy.consume(req["id"], querier, "C0101"), 400, "validation-failed")
    problem(proxy.consume(req["id"], querier, "C0101", national_id="A123456788"), 400, "validation-failed")
    # only a client with the scope; never a user
    problem(proxy.consume(req["id"], querier, "C0101", national_id=nid, token=proxy.token("workflow")), 403,
            "forbidden")
    problem(proxy.consume(req["id"], querier, "C0101", national_id=nid, token=q1.token), 403, "forbidden")
    # the gateway does not route the internal API
    r = requests.post(f"{stack['BLIGATE_GATEWAY_URL']}/internal/query-requests/{req['id']}/consume", json={},
                      timeout=10)
    assert r.status_code == 404
    # a rejected request is not approved either
    rej = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    assert decide(sup, rej["id"], "reject", reason="不需要").status_code == 200
    problem(proxy.consume(rej["id"], querier, "C0101", national_id=nid), 409, "request-not-approved")


def test_cancel_while_unused(login, bases, proxy, demo, person_in):
    q1, sup = login("querier1"), login("supervisor1")
    nid = new_national_id()
    pending = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    r = q1.post(f"/v1/query-requests/{pending['id']}/cancel", json={"reason": "個案已結案"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert r.json()["cancellation"]["reason"] == "個案已結案"
    problem(q1.post(f"/v1/query-requests/{pending['id']}/cancel"), 409, "request-closed")
    problem(decide(sup, pending["id"]), 409, "request-not-pending")
    problem(proxy.consume(pending["id"], demo["querier1"]["account_id"], "C0101", national_id=nid), 409,
            "request-not-approved")
    # approved and used: cancelling is refused; given back, it is unused again
    used = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    assert decide(sup, used["id"]).status_code == 200
    take = proxy.consume(used["id"], demo["querier1"]["account_id"], "C0101", national_id=nid)
    assert take.status_code == 200
    problem(q1.post(f"/v1/query-requests/{used['id']}/cancel", json={}), 409, "request-in-use")
    # the supervisor reads it but does not cancel it; another unit does not even see it
    problem(sup.post(f"/v1/query-requests/{used['id']}/cancel", json={}), 403, "forbidden")
    problem(login("querier2").post(f"/v1/query-requests/{used['id']}/cancel", json={}), 404, "not-found")
    assert proxy.release(used["id"], take.json()["consumption_id"]).status_code == 200
    assert q1.post(f"/v1/query-requests/{used['id']}/cancel").json()["state"] == "cancelled"
    # the requester may cancel too
    colleague = person_in(demo["querier1"]["unit_id"], roles=())
    theirs = submit(colleague["c"], form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])],
                                          querier_id=demo["querier1"]["account_id"]))
    assert colleague["c"].post(f"/v1/query-requests/{theirs['id']}/cancel", json={}).json()["state"] == "cancelled"


def test_other_units_see_nothing(login, bases, demo):
    q1 = login("querier1")
    nid = new_national_id()
    req = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    for name in ("querier2", "supervisor2", "district1", "district1head"):
        c = login(name)
        problem(c.get(f"/v1/query-requests/{req['id']}"), 404, "not-found")
        assert req["id"] not in {x["id"] for x in c.items("/v1/query-requests")}
        assert req["id"] not in {x["id"] for x in c.items("/v1/query-requests",
                                                           params={"unit_id": demo["querier1"]["unit_id"]})}
    # the unit's business reviewer and the overseers see it, masked
    for name in ("reviewer1", "director", "ethics1", "permadmin"):
        got = login(name).call("GET", f"/v1/query-requests/{req['id']}")
        assert got["subjects"][0]["national_id_masked"] == nid[:3] + "****" + nid[-3:]
        assert "national_id" not in got["subjects"][0]
    problem(login("supervisor1").get(f"/v1/query-requests/{uuid.uuid4()}"), 404, "not-found")
    problem(login("supervisor1").get("/v1/query-requests/not-a-uuid"), 404, "not-found")


def test_list_filters_and_pages(login, bases, demo, person_in):
    q1 = login("querier1")
    colleague = person_in(demo["querier1"]["unit_id"], roles=())
    mine = [submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])) for _ in range(3)]
    theirs = submit(colleague["c"], form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])],
                                          querier_id=demo["querier1"]["account_id"]))
    sup = login("supervisor1")
    assert decide(sup, mine[0]["id"]).status_code == 200
    ids = {x["id"] for x in sup.items("/v1/query-requests", params={"requester_id": colleague["id"]})}
    assert ids == {theirs["id"]}
    # the colleague sees their own only
    assert {x["id"] for x in colleague["c"].items("/v1/query-requests")} == {theirs["id"]}
    approved = {x["id"] for x in sup.items("/v1/query-requests", params={"state": "approved",
                                                                          "querier_id": demo["querier1"]["account_id"]})}
    assert mine[0]["id"] in approved and mine[1]["id"] not in approved
    pending = [x for x in sup.items("/v1/query-requests", params={"state": "pending"})]
    assert all(x["state"] == "pending" and "subjects" not in x for x in pending)
    assert {x["id"] for x in sup.items("/v1/query-requests", params={"from": today(), "to": today()})} >= \
        {m["id"] for m in mine}
    assert not {x["id"] for x in sup.items("/v1/query-requests", params={"from": today(1)})} & {m["id"] for m in mine}
    assert not {x["id"] for x in sup.items("/v1/query-requests", params={"to": today(-1)})} & {m["id"] for m in mine}
    # pages of one walk the same set
    seen, params = [], {"limit": 1, "querier_id": demo["querier1"]["account_id"], "from": today()}
    while True:
        page = sup.call("GET", "/v1/query-requests", params=params)
        seen += [x["id"] for x in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)) and {m["id"] for m in mine} <= set(seen)
    for bad in ({"state": "done"}, {"from": "2026-02-30"}, {"to": "yesterday"}, {"unit_id": "x"},
                {"querier_id": "1"}, {"limit": 201}):
        problem(sup.get("/v1/query-requests", params=bad), 400, "bad-query-parameter")
    problem(sup.get("/v1/query-requests", params={"cursor": "x"}), 400, "bad-cursor")
    # a cursor with a time the database cannot hold (it answered 500)
    for t in ("0000-01-01T00:00:00Z", "9999-12-31T23:00:00-23:00"):
        cur = base64.urlsafe_b64encode(f"{t}|{uuid.uuid4()}".encode()).decode().rstrip("=")
        problem(sup.get("/v1/query-requests", params={"cursor": cur}), 400, "bad-cursor")


def test_idempotent_submission(login, bases):
    q1 = login("querier1")
    body = form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    key = {"Idempotency-Key": "qr-" + uuid.uuid4().hex}
    a = q1.post("/v1/query-requests", json=body, headers=key)
    b = q1.post("/v1/query-requests", json=body, headers=key)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert b.headers.get("Idempotent-Replayed") == "true"
    assert body["subjects"][0]["national_id"] not in b.text
    problem(q1.post("/v1/query-requests", json={**body, "article": "第4條"}, headers=key), 422,
            "idempotency-key-reused")


def test_numbers_are_counted_per_year(login, bases, demo, clock, long_crl, stack):
    """Registration (F2-YYYY-NNNNNN) and application (F3-...) numbers start again at 1 each year
    (Asia/Taipei), as the contract says; they went on from the year before."""
    from test_workflow_external import form3
    q1, d1 = login("querier1"), login("district1")
    a = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    fa = d1.call("POST", "/v1/external-applications", status=201,
                 json=form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    # to noon on 2 January of next year in Taipei (UTC+8, no daylight saving)
    now = ts(clock(0)["now"]) + datetime.timedelta(hours=8)
    target = datetime.datetime(now.year + 1, 1, 2, 12)
    clock((target - now).total_seconds())
    year = str(now.year + 1)
    # numbers this stack gave in that year already (an earlier run of this test)
    f2_before = int(sql(stack, f"SELECT count(*) FROM workflow.query_requests WHERE registration_no LIKE 'F2-{year}-%'")[0])
    f3_before = int(sql(stack, f"SELECT count(*) FROM workflow.external_applications"
                               f" WHERE application_no LIKE 'F3-{year}-%'")[0])
    q1, d1 = login("querier1"), login("district1")
    b = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    c = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    fb = d1.call("POST", "/v1/external-applications", status=201,
                 json=form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    assert a["registration_no"].split("-")[1] == str(now.year)
    assert b["registration_no"] == f"F2-{year}-{f2_before + 1:06d}", (a["registration_no"], b["registration_no"])
    assert c["registration_no"] == f"F2-{year}-{f2_before + 2:06d}"
    assert fa["application_no"].split("-")[1] == str(now.year)
    assert fb["application_no"] == f"F3-{year}-{f3_before + 1:06d}", (fa["application_no"], fb["application_no"])
    # back in this year the count goes on where it was
    clock(0)
    q1 = login("querier1")
    d = submit(q1, form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    assert d["registration_no"] == "F2-%s-%06d" % (now.year, int(a["registration_no"].split("-")[2]) + 1)
