"""External applications (rule 5, Form 3; issue 4): a district office applies to the bureau's
business unit with the legal basis and relevance; its supervisor endorses; a business reviewer
of the unit accepts (a linked query request for the unit's supervisor) or rejects with an
opinion; the applicant follows what has been queried. Through the gateway with the demo
accounts (district1 and district1head of D-SANMIN, reviewer1 of SA-WEL). Every response is
checked against the contract."""

import uuid

from conftest import new_national_id, problem
from workflow_helpers import (RELEVANCE, audit_source, bases, events_about, person_in, proxy, sql,  # noqa: F401
                              subject, units)


def form3(demo, basis, subjects, **kw):
    body = {"target_unit_id": demo["reviewer1"]["unit_id"], "applicant_title": "社會課課員", "phone": "07-3123456",
            "fax": "07-3123457", "legal_basis_id": basis["id"], "article": "第4條", "relevance": RELEVANCE,
            "case_reference": "三民區社字第" + uuid.uuid4().hex[:6] + "號", "subjects": subjects}
    body.update(kw)
    return body


def apply(c, body, status=201):
    r = c.post("/v1/external-applications", json=body)
    assert r.status_code == status, r.text
    return r.json()


def endorse(c, aid, decision="endorse", **kw):
    return c.post(f"/v1/external-applications/{aid}/endorsement", json={"decision": decision, **kw})


def review(c, aid, decision="accept", **kw):
    return c.post(f"/v1/external-applications/{aid}/review", json={"decision": decision, **kw})


def test_form3_end_to_end(login, bases, proxy, demo, stack):
    d1, head, rev, sup = login("district1"), login("district1head"), login("reviewer1"), login("supervisor1")
    a, b = new_national_id(), new_national_id()
    r = d1.post("/v1/external-applications", json=form3(demo, bases["PUBLIC-ASSISTANCE"],
                                                         [subject(["C0101", "B0101"], a), subject(["C0101"], b, "陳大文")]))
    assert r.status_code == 201, r.text
    app = r.json()
    assert r.headers["Location"] == f"/v1/external-applications/{app['id']}"
    assert app["application_no"].startswith("F3-") and app["state"] == "submitted" and app["subject_count"] == 2
    assert app["applicant"]["id"] == demo["district1"]["account_id"]
    assert app["applicant"]["unit_id"] == demo["district1"]["unit_id"] and app["applicant"]["title"] == "社會課課員"
    assert app["applicant"]["phone"] == "07-3123456" and app["applicant"]["fax"] == "07-3123457"
    assert all("national_id" not in s for s in app["subjects"])
    # the reviewer cannot act before the applicant's supervisor has endorsed it
    problem(review(rev, app["id"], querier_id=demo["querier1"]["account_id"]), 409, "decision-out-of-turn")
    e = endorse(head, app["id"], comment="同意轉請社會救助科協助")
    assert e.status_code == 200 and e.json()["state"] == "endorsed", e.text
    assert e.json()["endorsement"]["endorsed_by"] == demo["district1head"]["account_id"]
    problem(endorse(head, app["id"]), 409, "decision-out-of-turn")
    # the reviewer sees it (masked) and accepts, naming querier1 of the business unit
    seen = rev.call("GET", f"/v1/external-applications/{app['id']}")
    assert "national_id" not in seen["subjects"][0] and seen["subjects"][0]["national_id_masked"] == a[:3] + "****" + a[-3:]
    ok = review(rev, app["id"], querier_id=demo["querier1"]["account_id"], opinion="依法有據，協助查詢")
    assert ok.status_code == 200, ok.text
    acc = ok.json()
    assert acc["state"] == "accepted" and acc["review"]["querier_id"] == demo["querier1"]["account_id"]
    qr = acc["query_request"]
    assert qr["state"] == "pending" and qr["registration_no"].startswith("F2-")
    # the linked Form 2: requested by the applicant, queried by querier1, decided by supervisor1
    linked = sup.call("GET", f"/v1/query-requests/{qr['id']}")
    assert linked["requester"]["id"] == demo["district1"]["account_id"]
    assert linked["querier"]["id"] == demo["querier1"]["account_id"] and linked["external_application_id"] == app["id"]
    assert linked["unit_id"] == demo["reviewer1"]["unit_id"] and linked["decider_role"] == "supervisor"
    assert linked["case_reference"] == app["case_reference"] and linked["legal_basis"]["code"] == "PUBLIC-ASSISTANCE"
    assert [s["national_id"] for s in linked["subjects"]] == [a, b]
    res = d1.call("GET", f"/v1/external-applications/{app['id']}/results")
    assert res["complete"] is False and res["done"] == 0 and res["total"] == 3
    assert sup.post(f"/v1/query-requests/{qr['id']}/decision", json={"decision": "approve"}).status_code == 200
    assert d1.call("GET", f"/v1/external-applications/{app['id']}")["state"] == "approved"
    # queried by the proxy: the applicant sees what is done
    querier = demo["querier1"]["account_id"]
    assert proxy.consume(qr["id"], querier, "C0101", national_id=a).status_code == 200
    res = d1.call("GET", f"/v1/external-applications/{app['id']}/results")
    assert res["done"] == 1 and not res["complete"]
    first = res["subjects"][0]["items"]
    assert first[0]["item"] == "C0101" and first[0]["done"] is True and first[0]["done_at"]
    assert first[1] == {"item": "B0101", "done": False, "done_at": None}
    last = proxy.consume(qr["id"], querier, "B0101", national_id=a)
    assert proxy.consume(qr["id"], querier, "C0101", national_id=b).status_code == 200
    res = d1.call("GET", f"/v1/external-applications/{app['id']}/results")
    assert res["complete"] is True and res["done"] == 3 and res["state"] == "closed"
    closed = d1.call("GET", f"/v1/external-applications/{app['id']}")
    assert closed["state"] == "closed" and closed["close_reason"] == "completed" and closed["closed_at"]
    # the applicant wrote the numbers and sees them; a use given back re-opens the application
    assert [s["national_id"] for s in closed["subjects"]] == [a, b]
    assert proxy.release(qr["id"], last.json()["consumption_id"], reason="upstream error").status_code == 200
    assert d1.call("GET", f"/v1/external-applications/{app['id']}")["state"] == "approved"
    assert proxy.consume(qr["id"], querier, "B0101", national_id=a).status_code == 200
    assert d1.call("GET", f"/v1/external-applications/{app['id']}")["state"] == "closed"
    types = [e["type"] for e in events_about(stack, app["id"])]
    assert types[:3] == ["external_application.submitted", "external_application.endorsed",
                         "external_application.accepted"]
    assert "external_application.state_changed" in types
    for ev in events_about(stack, app["id"]) + events_about(stack, qr["id"]):
        assert a not in str(ev) and b not in str(ev)
    if "audit" in stack.get("BLIGATE_SERVICES", "").split():
        assert audit_source(stack, events_about(stack, app["id"])[0]["id"]) == "workflow"


def test_form3_without_legal_basis_is_not_accepted(login, bases, demo):
    d1 = login("district1")
    body = form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    for missing in ("legal_basis_id", "article", "relevance"):
        p = problem(d1.post("/v1/external-applications", json={k: v for k, v in body.items() if k != missing}), 422,
                    "legal-basis-required")
        assert [e["field"] for e in p["errors"]] == [missing]
    p = problem(d1.post("/v1/external-applications", json={**body, "relevance": "查詢收入"}), 422,
                "legal-basis-required")
    assert p["errors"][0] == {"field": "relevance", "code": "length", "detail": p["errors"][0]["detail"]}
    # a statement of blanks states nothing: ideographic spaces, zero-width spaces, a byte-order mark
    for blank in ("\u3000", "\u200b", "\ufeff \u00a0", "\u2800", "\ufe0f", "\U000e0020", "\u2063"):
        p = problem(d1.post("/v1/external-applications", json={**body, "article": blank, "relevance": blank * 20}),
                    422, "legal-basis-required")
        assert [e["field"] for e in p["errors"]] == ["article", "relevance"], p
        # an optional case reference, when given, names a case (it becomes the linked request's)
        p = problem(d1.post("/v1/external-applications", json={**body, "case_reference": blank}), 400,
                    "validation-failed")
        assert p["errors"][0]["field"] == "case_reference", p
    p = problem(d1.post("/v1/external-applications", json={k: v for k, v in body.items()
                                                             if k not in ("legal_basis_id", "relevance")}),
                422, "legal-basis-required")
    assert {e["field"] for e in p["errors"]} == {"legal_basis_id", "relevance"}
    problem(d1.post("/v1/external-applications", json={**body, "legal_basis_id": str(uuid.uuid4())}), 422,
            "legal-basis-unknown")
    p = problem(d1.post("/v1/external-applications",
                        json=form3(demo, bases["NATIONAL-PENSION"], [subject(["C0101", "B0201"])])),
                422, "item-not-covered-by-legal-basis")
    assert p["items"] == ["B0201"]


def test_form3_refusals_at_submission(login, bases, demo, units, person_in):
    d1 = login("district1")
    body = form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    # only agencies and district offices apply
    for name in ("querier1", "district1head", "reviewer1"):
        problem(login(name).post("/v1/external-applications", json=body), 403, "forbidden")
    # even with the role: a business unit's staff register with Form 2 in their own unit
    section = person_in(units["SA-DIS"], roles=("external_applicant",))
    problem(section["c"].post("/v1/external-applications", json=body), 422, "unit-not-eligible")
    # to a business unit (section) of the bureau, not to the IT team, not to itself
    for target in (units["IT"], units["D-SANMIN"], str(uuid.uuid4())):
        problem(d1.post("/v1/external-applications", json={**body, "target_unit_id": target}), 422,
                "target-unit-invalid")
    problem(d1.post("/v1/external-applications", json={k: v for k, v in body.items() if k != "phone"}), 400,
            "validation-failed")
    problem(d1.post("/v1/external-applications", json={**body, "subjects": [subject() for _ in range(101)]}), 400,
            "validation-failed")
    assert apply(d1, {**body, "subjects": [subject() for _ in range(100)]})["subject_count"] == 100
    p = problem(d1.post("/v1/external-applications", json={**body, "subjects": [dict(subject(), national_id="a123456789")]}),
                400, "validation-failed")
    assert p["errors"][0]["field"] == "subjects[0].national_id"
    p = problem(d1.post("/v1/external-applications", json={**body, "case_reference": "案號" + new_national_id()}),
                400, "validation-failed")
    assert p["errors"][0]["field"] == "case_reference"
    # the title defaults to the account's
    no_title = {k: v for k, v in body.items() if k != "applicant_title"}
    assert apply(d1, no_title)["applicant"]["title"] == demo["district1"]["title"]


def test_another_district_reads_nothing(login, bases, demo, units, person_in):
    d1 = login("district1")
    app = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    other = person_in(units["D-FENGSHAN"], roles=("external_applicant",))
    problem(other["c"].get(f"/v1/external-applications/{app['id']}"), 404, "not-found")
    problem(other["c"].get(f"/v1/external-applications/{app['id']}/results"), 404, "not-found")
    assert app["id"] not in {x["id"] for x in other["c"].items("/v1/external-applications")}
    # their own application is theirs alone
    mine = apply(other["c"], form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    listed = list(other["c"].items("/v1/external-applications"))
    assert mine["id"] in {x["id"] for x in listed}
    assert {x["applicant"]["unit_id"] for x in listed} == {units["D-FENGSHAN"]}
    problem(d1.get(f"/v1/external-applications/{mine['id']}"), 404, "not-found")
    # units the application is not addressed to see nothing either; the target unit's reviewer does
    for name in ("querier2", "supervisor2", "querier1"):
        problem(login(name).get(f"/v1/external-applications/{app['id']}"), 404, "not-found")
    rev = login("reviewer1")
    listed = {x["id"] for x in rev.items("/v1/external-applications", params={"state": "submitted"})}
    assert {app["id"], mine["id"]} <= listed
    assert login("district1head").call("GET", f"/v1/external-applications/{app['id']}")["id"] == app["id"]
    assert login("director").call("GET", f"/v1/external-applications/{app['id']}")["id"] == app["id"]
    # filters narrow the set
    fengshan = list(rev.items("/v1/external-applications", params={"applicant_unit_id": units["D-FENGSHAN"]}))
    assert mine["id"] in {x["id"] for x in fengshan} and app["id"] not in {x["id"] for x in fengshan}
    problem(rev.get("/v1/external-applications", params={"state": "open"}), 400, "bad-query-parameter")


def test_endorsement_and_review_refusals(login, bases, demo, units, person_in):
    d1, head, rev = login("district1"), login("district1head"), login("reviewer1")
    app = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101", "P0301"])]))
    problem(endorse(d1, app["id"]), 403, "own-application")
    problem(endorse(login("supervisor1"), app["id"]), 403, "not-your-decision")
    problem(endorse(head, str(uuid.uuid4())), 404, "not-found")
    problem(endorse(head, app["id"], "refuse"), 400, "validation-failed")
    assert endorse(head, app["id"]).status_code == 200
    # only a business reviewer of the target unit reviews
    other_reviewer = person_in(units["SA-DIS"], roles=("business_reviewer",))
    # (another unit's reviewer may not even read it: the application does not exist for them)
    problem(review(other_reviewer["c"], app["id"], querier_id=demo["querier2"]["account_id"]), 404, "not-found")
    problem(endorse(login("querier2"), app["id"]), 404, "not-found")
    problem(review(login("supervisor1"), app["id"], querier_id=demo["querier1"]["account_id"]), 403,
            "not-your-decision")
    problem(review(d1, app["id"], querier_id=demo["querier1"]["account_id"]), 403, "own-application")
    # the querier must be an active querier of the unit, holding every item
    problem(review(rev, app["id"], querier_id=demo["querier2"]["account_id"]), 422, "querier-invalid")
    problem(review(rev, app["id"], querier_id=demo["reviewer1"]["account_id"]), 422, "querier-invalid")
    p = problem(review(rev, app["id"], querier_id=demo["querier1"]["account_id"]), 422, "items-not-granted")
    assert p["items"] == ["P0301"]
    problem(review(rev, app["id"]), 400, "validation-failed")
    problem(review(rev, app["id"], "reject", reason="unclear"), 400, "validation-failed")
    problem(review(rev, app["id"], "reject", reason="vague", opinion="x"), 400, "validation-failed")
    problem(review(rev, app["id"], "reject", reason="unclear", opinion="x", querier_id=demo["querier1"]["account_id"]),
            400, "validation-failed")
    # "unclear" is a valid reason to reject
    r = review(rev, app["id"], "reject", reason="unclear", opinion="關聯性說明不清，請補充個案與查詢項目之關係")
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert r.json()["review"]["reason"] == "unclear" and r.json()["query_request"] is None
    problem(review(rev, app["id"], querier_id=demo["querier1"]["account_id"]), 409, "application-closed")
    assert d1.call("GET", f"/v1/external-applications/{app['id']}")["review"]["opinion"].startswith("關聯性")
    # a refused endorsement closes it
    app2 = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
    r = endorse(head, app2["id"], "refuse", comment="非本所業務")
    assert r.status_code == 200 and r.json()["state"] == "not_endorsed" and r.json()["closed_at"]
    problem(review(rev, app2["id"], querier_id=demo["querier1"]["account_id"]), 409, "application-closed")


def test_linked_request_rejected_or_cancelled_closes_the_application(login, bases, demo):
    d1, head, rev, sup = login("district1"), login("district1head"), login("reviewer1"), login("supervisor1")

    def accepted():
        app = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])]))
        assert endorse(head, app["id"]).status_code == 200
        return review(rev, app["id"], querier_id=demo["querier1"]["account_id"]).json()

    one = accepted()
    qid = one["query_request"]["id"]
    # nobody of the applicant's side decides the linked request; the target unit's supervisor does
    problem(d1.post(f"/v1/query-requests/{qid}/decision", json={"decision": "approve"}), 403, "self-approval")
    problem(head.post(f"/v1/query-requests/{qid}/decision", json={"decision": "approve"}), 403, "not-request-decider")
    r = sup.post(f"/v1/query-requests/{qid}/decision", json={"decision": "reject", "reason": "已另案查詢"})
    assert r.status_code == 200
    got = d1.call("GET", f"/v1/external-applications/{one['id']}")
    assert got["state"] == "closed" and got["close_reason"] == "request_rejected"
    assert got["query_request"]["state"] == "rejected"
    two = accepted()
    # the applicant is the linked request's requester: they may cancel it while unused
    r = d1.post(f"/v1/query-requests/{two['query_request']['id']}/cancel", json={"reason": "個案撤回"})
    assert r.status_code == 200, r.text
    got = d1.call("GET", f"/v1/external-applications/{two['id']}")
    assert got["state"] == "closed" and got["close_reason"] == "request_cancelled"
    res = d1.call("GET", f"/v1/external-applications/{two['id']}/results")
    assert res["complete"] is False and res["done"] == 0


def test_linked_request_expiry_closes_the_application(login, bases, demo, proxy, clock):
    d1, head, rev, sup = login("district1"), login("district1head"), login("reviewer1"), login("supervisor1")
    nid = new_national_id()
    app = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    assert endorse(head, app["id"]).status_code == 200
    qid = review(rev, app["id"], querier_id=demo["querier1"]["account_id"]).json()["query_request"]["id"]
    assert sup.post(f"/v1/query-requests/{qid}/decision", json={"decision": "approve", "valid_days": 2}).status_code == 200
    clock(2 * 86400 + 5)
    problem(proxy.consume(qid, demo["querier1"]["account_id"], "C0101", national_id=nid), 409, "request-expired")
    d1 = login("district1")
    got = d1.call("GET", f"/v1/external-applications/{app['id']}")
    assert got["state"] == "closed" and got["close_reason"] == "request_expired"
    assert app["id"] in {x["id"] for x in d1.items("/v1/external-applications", params={"state": "closed"})}


def test_the_last_uses_taken_at_once_complete_the_application(login, bases, demo, proxy, stack):
    """Two pairs' last uses taken at the same time: each counts the pairs done once it holds the
    application, so the later one sees the other's use and closes the application (each used to
    count before, see the other pair undone, and leave it open for good)."""
    import subprocess
    import threading

    from conftest import poll
    d1, head, rev, sup = login("district1"), login("district1head"), login("reviewer1"), login("supervisor1")
    a, b = new_national_id(), new_national_id()
    app = apply(d1, form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], a), subject(["C0101"], b, "陳大文")]))
    assert endorse(head, app["id"]).status_code == 200
    acc = review(rev, app["id"], querier_id=demo["querier1"]["account_id"], opinion="依法有據")
    assert acc.status_code == 200, acc.text
    qr = acc.json()["query_request"]
    assert sup.post(f"/v1/query-requests/{qr['id']}/decision", json={"decision": "approve"}).status_code == 200
    # a third transaction holds the application row while both uses are taken
    holder = subprocess.Popen(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    holder.stdin.write(f"BEGIN;\nSELECT 1 FROM workflow.external_applications WHERE id = '{app['id']}' FOR UPDATE;\n")
    holder.stdin.flush()
    poll("the holder to have the row", lambda: sql(
        stack, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
               f" AND query LIKE '%{app['id']}%FOR UPDATE%'") == ["1"])
    tok, querier, replies = proxy.token(), demo["querier1"]["account_id"], {}

    def take(nid):
        replies[nid] = proxy.consume(qr["id"], querier, "C0101", national_id=nid, token=tok)
    threads = [threading.Thread(target=take, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    poll("both uses to wait for the application", lambda: sql(
        stack, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bligate_workflow' AND wait_event_type = 'Lock'")
        == ["2"])
    holder.stdin.write("COMMIT;\n")
    holder.stdin.close()
    holder.wait(timeout=30)
    for t in threads:
        t.join(timeout=30)
    assert [replies[n].status_code for n in (a, b)] == [200, 200], [replies[n].text for n in (a, b)]
    got = d1.call("GET", f"/v1/external-applications/{app['id']}")
    assert (got["state"], got["close_reason"]) == ("closed", "completed"), got


def test_an_applicant_who_left_gets_no_data(login, bases, demo, person_in, admin):
    """The applicant of a Form 3 is its linked request's requester: once their account is
    deactivated it is neither endorsed, accepted nor approved (422 requester-invalid, as Form 2
    refuses an inactive requester); refusing it at each step still closes it."""
    head, rev, sup = login("district1head"), login("reviewer1"), login("supervisor1")
    applicant = person_in(demo["district1"]["unit_id"], roles=("external_applicant",))
    body = form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"])])
    submitted, endorsed, accepted = (applicant["c"].call("POST", "/v1/external-applications", status=201, json=body)
                                     for _ in range(3))
    assert endorse(head, endorsed["id"]).status_code == 200
    assert endorse(head, accepted["id"]).status_code == 200
    r = review(rev, accepted["id"], querier_id=demo["querier1"]["account_id"])
    assert r.status_code == 200, r.text
    qid = r.json()["query_request"]["id"]
    admin.call("POST", f"/v1/accounts/{applicant['id']}/deactivate", json={"reason": "離職"})

    problem(endorse(head, submitted["id"]), 422, "requester-invalid")
    problem(review(rev, endorsed["id"], querier_id=demo["querier1"]["account_id"]), 422, "requester-invalid")
    problem(sup.post(f"/v1/query-requests/{qid}/decision", json={"decision": "approve"}), 422, "requester-invalid")
    # nothing changed by the refusals
    assert head.call("GET", f"/v1/external-applications/{submitted['id']}")["state"] == "submitted"
    assert rev.call("GET", f"/v1/external-applications/{endorsed['id']}")["state"] == "endorsed"
    assert sup.call("GET", f"/v1/query-requests/{qid}")["state"] == "pending"
    # each may still be refused, which closes it
    r = endorse(head, submitted["id"], decision="refuse", comment="申請人已離職")
    assert r.status_code == 200 and r.json()["state"] == "not_endorsed", r.text
    r = review(rev, endorsed["id"], decision="reject", reason="other", opinion="申請人已離職，不予受理")
    assert r.status_code == 200 and r.json()["state"] == "rejected", r.text
    r = sup.post(f"/v1/query-requests/{qid}/decision", json={"decision": "reject", "reason": "申請人已離職"})
    assert r.status_code == 200, r.text
    got = rev.call("GET", f"/v1/external-applications/{accepted['id']}")
    assert got["state"] == "closed" and got["close_reason"] == "request_rejected"
