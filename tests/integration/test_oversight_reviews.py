"""Quarterly usage reviews (issue 7, rule 7): a quarter seeded on the log with known activity --
including a deliberately unmatched use, a query without a use, a failed and released query, a
forged event from the wrong service and one just past the quarter -- yields exactly the expected
counts, permission changes, unused grants, anomalies and reconciliation differences; the review
is anchored to a signed tree head, signed and submitted by the permission administrator only,
exported whole, and every step is on the log; a quarter not submitted within 30 days of its end
is overdue (test clock), listed and counted on /metrics."""

import datetime
import hashlib
import uuid

import pytest

import auditlib
from conftest import problem
from oversight_helpers import (People, account_updated, consumed, decided, executed, failed, feed, gauge,  # noqa: F401
                               grants_changed, purpose, released, submitted, taipei_now, utc)

EVERYONE = ["permadmin", "querier1", "supervisor1", "reviewer1", "querier2", "supervisor2", "permhead", "itstaff1",
            "ethics1", "director", "district1", "district1head"]
READERS = {"permadmin", "itstaff1", "ethics1", "director"}


def fresh_year(admin):
    """A year no earlier run of these tests has seeded: one before the oldest reviewed year, so
    nothing seeded before has a time before the quarter's end."""
    years = [r["year"] for r in admin.items("/v1/audit/quarterly-reviews")]
    return min(years + [2021]) - 1


def test_seeded_quarter_counts_anomalies_and_reconciliation(admin, login, feed, stack, client):
    year = fresh_year(admin)
    people = People(stack)
    s1, s2, s3 = people.new(), people.new(), people.new()
    A, B, D, E, F, G = (str(uuid.uuid4()) for _ in range(6))
    U1, U2, U3 = (str(uuid.uuid4()) for _ in range(3))
    R1, R2, R3, R4, R5, R6 = (str(uuid.uuid4()) for _ in range(6))
    c1, c2, c3, c4, c5, c6, cg, cx = (str(uuid.uuid4()) for _ in range(8))
    lb1 = {"id": str(uuid.uuid4()), "code": "SA-%s" % uuid.uuid4().hex[:6], "law_name": "社會救助法"}
    lb2 = {"id": str(uuid.uuid4()), "code": "DIS-%s" % uuid.uuid4().hex[:6], "law_name": "身心障礙者權益保障法"}
    p1, p2, p3 = purpose(lb1, "R-1"), purpose(lb1, "R-2"), purpose(lb2, "R-3")
    p6 = purpose(lb2, "R-6")
    # the bureau's calendar: the first Monday of May, its Tuesday, Wednesday and Saturday
    mon = datetime.datetime(year, 5, 1)
    while mon.weekday() != 0:
        mon += datetime.timedelta(days=1)
    tue, wed, sat = (mon + datetime.timedelta(days=d) for d in (1, 2, 5))
    at = lambda day, h, m=0, s=0: utc(day.replace(hour=h, minute=m, second=s))  # noqa: E731
    before = mon - datetime.timedelta(days=7)
    ix = {}

    def send(source, label, ev):
        ix[label] = feed[source].send(ev)[0]
        return ev

    # grants before the quarter: A and B query; G holds two items it never uses in the quarter
    send("accounts", "grant A", grants_changed(utc(datetime.datetime(year, 1, 9, 10)), A, ["C0101", "B0101"],
                                               f"{year}-01-10"))
    send("accounts", "grant B", grants_changed(utc(datetime.datetime(year, 1, 9, 11)), B, ["C0101", "B0201", "P0301"],
                                               f"{year}-01-10"))
    send("accounts", "grant G", grants_changed(utc(datetime.datetime(year - 1, 11, 30, 10)), G, ["T0101", "P0401"],
                                               f"{year - 1}-12-01"))
    g_use = utc(datetime.datetime(year, 2, 15, 10))
    send("bliproxy", "G used P0401", executed(g_use, str(uuid.uuid4()), cg, G, U1, "P0401", s3,
                                              purpose(lb1, "R-G")))
    # registrations of the quarter: R1-R4 approved, R5 rejected
    for label, rq, who, unit, subj in (("R1", R1, A, U1, s1), ("R2", R2, A, U1, s1), ("R3", R3, B, U2, s2),
                                       ("R4", R4, B, U2, s3), ("R5", R5, B, U2, s3)):
        send("workflow", "sub " + label, submitted(at(before, 9), rq, who, unit, [subj], "R-" + label[1]))
        send("workflow", "dec " + label, decided(at(before, 10), rq, "reject" if label == "R5" else "approve",
                                                 "R-" + label[1], str(uuid.uuid4())))
    # c1: an ordinary query on Monday morning
    send("workflow", "use c1", consumed(at(mon, 10), R1, c1, A, "C0101", s1, p1))
    send("bliproxy", "q c1", executed(at(mon, 10, 0, 1), R1, c1, A, U1, "C0101", s1, p1))
    # c4: a use consumed on Tuesday and never queried (the deliberate difference)
    send("workflow", "use c4", consumed(at(tue, 9), R3, c4, B, "C0101", s2, p3))
    # c5: queried, failed upstream, given back: consistent
    q5 = str(uuid.uuid4())
    send("workflow", "use c5", consumed(at(tue, 9, 30), R3, c5, B, "B0201", s2, p3))
    send("bliproxy", "q c5", executed(at(tue, 9, 30, 1), R3, c5, B, U2, "B0201", s2, p3, query_id=q5))
    send("bliproxy", "fail c5", failed(at(tue, 9, 30, 2), R3, c5, B, "B0201", s2, q5))
    send("workflow", "rel c5", released(at(tue, 9, 30, 3), R3, c5, B, "B0201", s2))
    # c3: Tuesday evening, the same person under a second registration
    send("workflow", "use c3", consumed(at(tue, 20), R2, c3, A, "C0101", s1, p2))
    send("bliproxy", "q c3", executed(at(tue, 20, 0, 1), R2, c3, A, U1, "C0101", s1, p2))
    # c6: a query whose use is nowhere on the log
    send("bliproxy", "q c6", executed(at(wed, 14), R6, c6, B, U2, "C0101", s3, p6))
    # a "query" delivered by accounts: not evidence of anything
    send("accounts", "forged", executed(at(wed, 15), R1, str(uuid.uuid4()), A, U1, "C0101", s1, p1))
    # c2: Saturday
    send("workflow", "use c2", consumed(at(sat, 11), R1, c2, A, "B0101", s1, p1))
    send("bliproxy", "q c2", executed(at(sat, 11, 0, 1), R1, c2, A, U1, "B0101", s1, p1))
    # permission changes of June: D granted, B moved (grants suspended), E's phone, F moved without grants
    send("accounts", "grant D", grants_changed(utc(datetime.datetime(year, 5, 31, 15)), D, ["N0101"],
                                               f"{year}-06-01"))
    send("accounts", "move B", account_updated(utc(datetime.datetime(year, 6, 20, 10)), B,
                                               {"unit_id": {"from": U2, "to": U3}},
                                               {"grants": "suspended", "items": ["C0101", "B0201", "P0301"]}))
    send("accounts", "phone E", account_updated(utc(datetime.datetime(year, 6, 21, 10)), E,
                                                {"phone": {"from": "07-1", "to": "07-2"}}))
    send("accounts", "move F", account_updated(utc(datetime.datetime(year, 6, 22, 10)), F,
                                               {"unit_id": {"from": U1, "to": U2}}))
    # the quarter ends at the bureau's midnight: this one belongs to the next
    send("bliproxy", "next quarter", executed(utc(datetime.datetime(year, 7, 1)), R1, cx, A, U1, "C0101", s1, p1))

    review = admin.call("POST", "/v1/audit/quarterly-reviews", status=201, json={"year": year, "quarter": 2})
    rep = review["report"]
    assert review["state"] == "draft" and review["version"] == 1
    assert review["period_start"] == f"{year}-03-31T16:00:00Z" and review["period_end"] == f"{year}-06-30T16:00:00Z"
    assert review["due_at"] == f"{year}-07-30T16:00:00Z" and review["overdue"] is True  # long past
    # anchored: a tree head signed by the audit key that covers every seeded event
    keys = client().call("GET", "/v1/audit/keys", bearer=False)
    assert auditlib.verify_tree_head(rep["tree_head"], keys)
    assert rep["tree_head"]["tree_size"] > max(ix.values())
    assert review["tree_size"] == rep["tree_head"]["tree_size"]
    assert review["report_sha256"] == hashlib.sha256(auditlib.canonical(rep)).hexdigest()

    assert rep["queries"] == {
        "total": 5, "failed": 1,
        "by_querier": [{"querier_id": A, "count": 3}, {"querier_id": B, "count": 2}],
        "by_unit": [{"unit_id": U1, "count": 3}, {"unit_id": U2, "count": 2}],
        "by_item": [{"item": "C0101", "count": 3}, {"item": "B0101", "count": 1}, {"item": "B0201", "count": 1}],
        "by_legal_basis": [{"code": lb1["code"], "legal_basis_id": lb1["id"], "law_name": lb1["law_name"], "count": 3},
                           {"code": lb2["code"], "legal_basis_id": lb2["id"], "law_name": lb2["law_name"], "count": 2}],
    }
    an = rep["anomalies"]
    assert [(o["index"], o["querier_id"], o["item"], o["request_id"]) for o in an["out_of_office_hours"]] == [
        (ix["q c3"], A, "C0101", R2), (ix["q c2"], A, "B0101", R1)]
    assert an["out_of_office_hours"][0]["local_time"] == tue.strftime("%Y-%m-%d") + "T20:00:01+08:00"
    assert an["same_subject_multiple_requests"] == [{
        "subject": {"id_hmac": s1["id_hmac"], "id_masked": s1["id_masked"]}, "request_ids": sorted([R1, R2]),
        "querier_ids": [A], "query_indices": [ix["q c1"], ix["q c3"], ix["q c2"]]}]
    assert an["approved_never_used"] == [{"index": ix["dec R4"], "approved_at": at(before, 10), "request_id": R4,
                                          "form": "F2", "registration_no": "R-4", "querier_id": B}]
    assert an["uses_without_query"] == [{"index": ix["use c4"], "time": at(tue, 9), "consumption_id": c4,
                                         "request_id": R3, "querier_id": B, "item": "C0101",
                                         "subject": {"id_hmac": s2["id_hmac"], "id_masked": s2["id_masked"]}}]
    assert an["unit_changes_with_grants"] == [{
        "index": ix["move B"], "time": utc(datetime.datetime(year, 6, 20, 10)), "account_id": B, "from_unit_id": U2,
        "to_unit_id": U3, "items_held": ["B0201", "C0101", "P0301"], "grants": "suspended"}]
    assert rep["reconciliation"] == {
        "uses_consumed": 5, "uses_released": 1, "queries_executed": 5, "queries_failed": 1, "matched": 3,
        "balanced": False,
        "differences": [
            {"kind": "use_without_query", "consumption_id": c4, "request_id": R3, "querier_id": B, "item": "C0101",
             "indices": [ix["use c4"]]},
            {"kind": "query_without_use", "consumption_id": c6, "request_id": R6, "querier_id": B, "item": "C0101",
             "indices": [ix["q c6"]]}]}
    assert [(p["index"], p["type"], p["account_id"]) for p in rep["permission_changes"]] == [
        (ix["grant D"], "grants.changed", D), (ix["move B"], "account.updated", B),
        (ix["move F"], "account.updated", F)]
    assert rep["unused_grants"] == [
        {"account_id": G, "item": "P0401", "effective_date": f"{year - 1}-12-01",
         "application_id": rep["unused_grants"][0]["application_id"], "last_used_at": g_use},
        {"account_id": G, "item": "T0101", "effective_date": f"{year - 1}-12-01",
         "application_id": rep["unused_grants"][1]["application_id"], "last_used_at": None}]
    assert review["summary"] == rep["summary"] == {
        "queries": 5, "anomalies": 6, "permission_changes": 3, "unused_grants": 2, "reconciliation_differences": 2,
        "out_of_office_hours": 2, "same_subject_multiple_requests": 1, "approved_never_used": 1,
        "uses_without_query": 1, "unit_changes_with_grants": 1}
    assert rep["office_hours"] == {"time_zone": "Asia/Taipei", "weekdays": [1, 2, 3, 4, 5], "start": "08:00",
                                   "end": "18:00"}

    # a draft is generated again from the log as it is now (same activity, a later anchor)
    again = admin.call("POST", "/v1/audit/quarterly-reviews", status=200, json={"year": year, "quarter": 2})
    assert again["id"] == review["id"] and again["version"] == 2 and again["summary"] == review["summary"]
    assert again["tree_size"] >= review["tree_size"]


def test_lifecycle_sign_submit_export_and_the_log(admin, demo):
    year = fresh_year(admin)
    review = admin.call("POST", "/v1/audit/quarterly-reviews", status=201, json={"year": year, "quarter": 4})
    rid = review["id"]
    problem(admin.post(f"/v1/audit/quarterly-reviews/{rid}/submission", json={"reference_no": "x"}), 409,
            "review-state-invalid")
    signed = admin.call("POST", f"/v1/audit/quarterly-reviews/{rid}/sign")
    assert signed["state"] == "signed" and signed["signature"]["name"] == "permadmin"
    assert signed["signature"]["account_id"] == demo["permadmin"]["account_id"]
    assert signed["report_sha256"] == review["report_sha256"]
    problem(admin.post(f"/v1/audit/quarterly-reviews/{rid}/sign", json={}), 409, "review-state-invalid")
    problem(admin.post("/v1/audit/quarterly-reviews", json={"year": year, "quarter": 4}), 409, "review-state-invalid")
    problem(admin.post(f"/v1/audit/quarterly-reviews/{rid}/submission", json={"reference_no": "A123456789"}), 400,
            "validation-failed")
    ref = "高市勞資字第%s號" % uuid.uuid4().hex[:6]
    sub = admin.call("POST", f"/v1/audit/quarterly-reviews/{rid}/submission", json={"reference_no": ref})
    assert sub["state"] == "submitted" and sub["submission"]["reference_no"] == ref
    assert sub["overdue"] is False and sub["submitted_late"] is True  # a quarter of years ago
    problem(admin.post(f"/v1/audit/quarterly-reviews/{rid}/submission", json={"reference_no": ref}), 409,
            "review-state-invalid")
    exp = admin.get(f"/v1/audit/quarterly-reviews/{rid}/export")
    assert exp.status_code == 200 and "attachment" in exp.headers["Content-Disposition"]
    doc = exp.json()
    assert doc["format"] == "bligate.quarterly-review-export/1" and doc["review"]["state"] == "submitted"
    assert hashlib.sha256(auditlib.canonical(doc["report"])).hexdigest() == doc["report_sha256"]
    # every step is on the log, the signature and submission naming the report's digest
    events = admin.call("GET", "/v1/audit/events", params={"object_id": rid, "limit": 200})["items"]
    by_type = {e["event"]["type"]: e["event"] for e in events}
    assert set(by_type) == {"audit.quarterly_review.generated", "audit.quarterly_review.signed",
                            "audit.quarterly_review.submitted", "audit.quarterly_review.exported"}
    for e in by_type.values():
        assert e["source"] == "audit" and e["details"]["report_sha256"] == review["report_sha256"]
    assert by_type["audit.quarterly_review.submitted"]["details"]["reference_no"] == ref
    # listed, with the state filter
    listed = [r["id"] for r in admin.items("/v1/audit/quarterly-reviews", params={"state": "submitted"})]
    assert rid in listed
    problem(admin.get("/v1/audit/quarterly-reviews", params={"state": "lost"}), 400, "bad-query-parameter")
    problem(admin.get("/v1/audit/quarterly-reviews/" + str(uuid.uuid4())), 404, "not-found")


def test_every_read_of_a_review_is_on_the_log(admin, login, demo):
    """The review holds citizens' masked IDs and HMACs (its anomalies): reading it is an access
    to oversight material, recorded on the log before the answer as its export is."""
    year = fresh_year(admin)
    review = admin.call("POST", "/v1/audit/quarterly-reviews", status=201, json={"year": year, "quarter": 1})
    rid = review["id"]
    readers = ["ethics1", "director", "permadmin"]
    for name in readers:
        c = admin if name == "permadmin" else login(name)
        got = c.call("GET", f"/v1/audit/quarterly-reviews/{rid}")
        assert got["report"] == review["report"]
    # refused and unknown reads hand out nothing, so they are not reads of the review
    problem(login("querier1").get(f"/v1/audit/quarterly-reviews/{rid}"), 403, "forbidden")
    problem(admin.get("/v1/audit/quarterly-reviews/" + str(uuid.uuid4())), 404, "not-found")
    events = [e["event"] for e in admin.call("GET", "/v1/audit/events", params={"object_id": rid})["items"]]
    reads = [e for e in events if e["type"] == "audit.quarterly_review.read"]
    assert [e["actor"]["account_id"] for e in reads] == [demo[n]["account_id"] for n in readers]
    for e in reads:
        assert e["source"] == "audit" and e["outcome"] == "success"
        assert e["object"] == {"kind": "quarterly_review", "id": rid}
        assert e["details"]["report_sha256"] == review["report_sha256"]
        assert e["details"]["year"] == year and e["details"]["quarter"] == 1


def test_quarter_must_have_ended_and_bad_bodies(admin):
    now = taipei_now()
    problem(admin.post("/v1/audit/quarterly-reviews", json={"year": now.year, "quarter": (now.month - 1) // 3 + 1}),
            422, "quarter-not-ended")
    problem(admin.post("/v1/audit/quarterly-reviews", json={"year": now.year, "quarter": 5}), 400,
            "validation-failed")
    problem(admin.post("/v1/audit/quarterly-reviews", json={"year": 2019, "quarter": 1, "x": 1}), 400,
            "unknown-field")


def test_refusals_for_every_role(admin, login):
    year = fresh_year(admin)
    rid = admin.call("POST", "/v1/audit/quarterly-reviews", status=201, json={"year": year, "quarter": 3})["id"]
    for name in EVERYONE:
        c = admin if name == "permadmin" else login(name)
        if name != "permadmin":
            problem(c.post("/v1/audit/quarterly-reviews", json={"year": year, "quarter": 1}), 403, "forbidden")
            problem(c.post(f"/v1/audit/quarterly-reviews/{rid}/sign", json={}), 403, "forbidden")
            problem(c.post(f"/v1/audit/quarterly-reviews/{rid}/submission", json={"reference_no": "1"}), 403,
                    "forbidden")
        if name in READERS:
            assert c.call("GET", f"/v1/audit/quarterly-reviews/{rid}")["id"] == rid
            assert any(q["review_id"] == rid for q in c.call("GET", "/v1/audit/quarters")["items"])
        else:
            problem(c.get(f"/v1/audit/quarterly-reviews/{rid}"), 403, "forbidden")
            problem(c.get("/v1/audit/quarterly-reviews"), 403, "forbidden")
            problem(c.get(f"/v1/audit/quarterly-reviews/{rid}/export"), 403, "forbidden")
            problem(c.get("/v1/audit/quarters"), 403, "forbidden")
    problem(admin.request("POST", "/v1/audit/quarterly-reviews", bearer=False, json={"year": year, "quarter": 1}),
            401, "unauthenticated")


def test_overdue_quarter_with_the_test_clock(admin, login, clock, long_crl, stack):
    quarters = admin.call("GET", "/v1/audit/quarters")["items"]
    current = quarters[-1]
    if current["review_id"]:
        pytest.skip("an earlier run on this stack reviewed the current quarter")
    assert current["ended"] is False and current["state"] == "none"
    now = datetime.datetime.strptime(clock(0)["now"], "%Y-%m-%dT%H:%M:%SZ")
    due = datetime.datetime.strptime(current["due_at"], "%Y-%m-%dT%H:%M:%SZ")
    base = gauge(stack, "bligate_quarterly_reviews_overdue")
    # an hour before the due date: ended, reviewed as a draft, not overdue
    clock((due - now).total_seconds() - 3600)
    pa = login("permadmin")
    q = next(x for x in pa.call("GET", "/v1/audit/quarters")["items"] if x["year"] == current["year"]
             and x["quarter"] == current["quarter"])
    assert q["ended"] is True and q["overdue"] is False
    review = pa.call("POST", "/v1/audit/quarterly-reviews", status=201,
                     json={"year": current["year"], "quarter": current["quarter"]})
    assert review["overdue"] is False
    assert gauge(stack, "bligate_quarterly_reviews_overdue") == base
    # an hour after: overdue, in the list and on /metrics
    clock((due - now).total_seconds() + 3600)
    pa = login("permadmin")
    assert pa.call("GET", f"/v1/audit/quarterly-reviews/{review['id']}")["overdue"] is True
    listing = pa.call("GET", "/v1/audit/quarters")
    q = next(x for x in listing["items"] if x["review_id"] == review["id"])
    assert q["overdue"] is True and listing["overdue"] >= 1
    assert gauge(stack, "bligate_quarterly_reviews_overdue") == base + 1
    # signed and submitted late: no longer overdue, marked late
    pa.call("POST", f"/v1/audit/quarterly-reviews/{review['id']}/sign")
    done = pa.call("POST", f"/v1/audit/quarterly-reviews/{review['id']}/submission", json={"reference_no": "L-1"})
    assert done["overdue"] is False and done["submitted_late"] is True
    assert gauge(stack, "bligate_quarterly_reviews_overdue") == base
