"""Subject-access reports (issue 7; Personal Data Protection Act): every access to one citizen's
BLI data on the log -- queries and later views, with who, which unit, item, legal basis and
registration -- each with an inclusion proof checked here by an independent verifier against a
signed tree head; none of another person's; the ID number only ever in the body; the request on
the log with its 15-day due date; only the permission administrator and the Ethics Office
may ask."""

import datetime
import uuid

import auditlib
from conftest import problem
from oversight_helpers import People, consumed, executed, feed, purpose, viewed  # noqa: F401
from workflow_helpers import units  # noqa: F401

EVERYONE = ["querier1", "supervisor1", "reviewer1", "querier2", "supervisor2", "permhead", "itstaff1", "director",
            "district1", "district1head"]


def now_minus(minutes):
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def test_report_lists_exactly_the_subjects_accesses_with_proofs(admin, login, feed, stack, demo, units, client):
    people = People(stack)
    a, b = people.new(), people.new()
    q1, q2, sup = demo["querier1"], demo["querier2"], demo["supervisor1"]
    lb = {"id": str(uuid.uuid4()), "code": "SA-SAR", "law_name": "社會救助法"}
    p1, p2 = purpose(lb, "R-SAR-1", article="第5條之1"), purpose(lb, "R-SAR-2")
    r1, r2 = str(uuid.uuid4()), str(uuid.uuid4())
    qa1, qa2 = str(uuid.uuid4()), str(uuid.uuid4())
    ix = {}
    ix["use a1"] = feed["workflow"].send(consumed(now_minus(50), r1, str(uuid.uuid4()), q1["account_id"], "C0101",
                                                  a, p1))[0]
    ix["a1"] = feed["bliproxy"].send(executed(now_minus(50), r1, str(uuid.uuid4()), q1["account_id"],
                                              q1["unit_id"], "C0101", a, p1, query_id=qa1))[0]
    ix["b1"] = feed["bliproxy"].send(executed(now_minus(40), r2, str(uuid.uuid4()), q2["account_id"],
                                              q2["unit_id"], "B0101", b, p2))[0]
    ix["a2"] = feed["bliproxy"].send(executed(now_minus(30), r2, str(uuid.uuid4()), q2["account_id"],
                                              q2["unit_id"], "B0201", a, p2, query_id=qa2))[0]
    ix["view a1"] = feed["bliproxy"].send(viewed(now_minus(20), r1, qa1, sup["account_id"], sup["unit_id"],
                                                 "requester", "C0101", a))[0]
    # the same shape delivered by another service is no evidence of an access
    feed["accounts"].send(executed(now_minus(10), r1, str(uuid.uuid4()), q1["account_id"], q1["unit_id"], "C0101",
                                   a, p1))

    eth = login("ethics1")
    resp = eth.post("/v1/audit/subject-access-reports",
                    json={"national_id": a["nid"], "reference": "民眾申請第%s號" % uuid.uuid4().hex[:6]})
    assert resp.status_code == 201, resp.text
    assert a["nid"] not in resp.text and a["nid"] not in resp.headers.get("Location", "")
    sar = resp.json()
    rep = sar["report"]
    assert sar["subject_masked"] == a["id_masked"] and rep["subject"] == {"id_masked": a["id_masked"],
                                                                           "id_hmac": a["id_hmac"]}
    received = datetime.date.fromisoformat(sar["received_on"])
    assert sar["due_on"] == (received + datetime.timedelta(days=15)).isoformat() == rep["due_on"]
    assert rep["access_count"] == sar["access_count"] == 3 and rep["truncated"] is False
    acc = rep["accesses"]
    assert [x["index"] for x in acc] == [ix["a1"], ix["a2"], ix["view a1"]]
    assert [(x["kind"], x["item"], x["account_id"], x["name"], x["unit_id"], x["role"]) for x in acc] == [
        ("query", "C0101", q1["account_id"], "querier1", q1["unit_id"], "querier"),
        ("query", "B0201", q2["account_id"], "querier2", q2["unit_id"], "querier"),
        ("view", "C0101", sup["account_id"], "supervisor1", sup["unit_id"], "requester")]
    assert [x["unit_name"] for x in acc] == ["社會救助科", "身心障礙福利科", "社會救助科"]
    assert [x["registration_no"] for x in acc] == ["R-SAR-1", "R-SAR-2", "R-SAR-1"]  # a view shows its query's
    assert all(x["legal_basis"] == lb for x in acc) and acc[0]["article"] == "第5條之1"
    assert [x["query_id"] for x in acc] == [qa1, qa2, qa1]
    # each access proves itself: its event hashes to its leaf, the leaf is in the signed tree
    sth = rep["tree_head"]
    assert auditlib.verify_tree_head(sth, client().call("GET", "/v1/audit/keys", bearer=False))
    root = bytes.fromhex(sth["root_hash"])
    for x in acc:
        leaf = auditlib.leaf_hash(x["event"].encode())
        assert leaf.hex() == x["leaf_hash"]
        assert auditlib.verify_inclusion(x["index"], sth["tree_size"], leaf,
                                         [bytes.fromhex(h) for h in x["audit_path"]], root)
    assert b["id_hmac"] not in resp.text and b["id_masked"] not in resp.text
    # and the other person's report holds only theirs
    other = eth.call("POST", "/v1/audit/subject-access-reports", status=201, json={"national_id": b["nid"]})
    assert [x["index"] for x in other["report"]["accesses"]] == [ix["b1"]]
    assert a["id_hmac"] not in str(other)

    # the request is on the log with its due date, about the person (by mask and HMAC only)
    found = admin.call("POST", "/v1/audit/events/search", json={"national_id": a["nid"],
                                                                "type": "audit.subject_access.reported"})["items"]
    mine = [e["event"] for e in found if e["event"]["object"]["id"] == sar["id"]]
    assert len(mine) == 1 and mine[0]["details"]["due_on"] == sar["due_on"]
    assert mine[0]["subject"] == {"id_hmac": a["id_hmac"], "id_masked": a["id_masked"]}
    assert a["nid"] not in str(mine[0])
    # read again (recorded), and listed
    again = admin.call("GET", f"/v1/audit/subject-access-reports/{sar['id']}")
    assert again["report"] == rep
    assert sar["id"] in [r["id"] for r in admin.items("/v1/audit/subject-access-reports")]
    reads = admin.call("GET", "/v1/audit/events", params={"object_id": sar["id"]})["items"]
    assert [e["event"]["type"] for e in reads] == ["audit.subject_access.reported", "audit.subject_access.read"]
    # one extension of 15 days, with its reason, on the log; not a second
    assert again["extension"] is None
    ext = eth.call("POST", f"/v1/audit/subject-access-reports/{sar['id']}/extension",
                   json={"reason": "涉及多個單位之查詢紀錄，需會同查核"})
    assert ext["due_on"] == (received + datetime.timedelta(days=30)).isoformat()
    assert ext["extension"]["reason"] == "涉及多個單位之查詢紀錄，需會同查核"
    problem(eth.post(f"/v1/audit/subject-access-reports/{sar['id']}/extension", json={"reason": "again"}), 409,
            "conflict")
    last = admin.call("GET", "/v1/audit/events", params={"object_id": sar["id"]})["items"][-1]["event"]
    assert last["type"] == "audit.subject_access.extended" and last["subject"]["id_masked"] == a["id_masked"]


def test_received_date_and_bad_bodies(admin):
    r = admin.call("POST", "/v1/audit/subject-access-reports", status=201,
                   json={"national_id": "A123456789", "received_on": "2026-01-05"})
    assert r["received_on"] == "2026-01-05" and r["due_on"] == "2026-01-20"
    # its 15 days are over: the law's extension is given within them, not after
    problem(admin.post(f"/v1/audit/subject-access-reports/{r['id']}/extension", json={"reason": "太晚了"}), 409,
            "conflict")
    assert admin.call("GET", f"/v1/audit/subject-access-reports/{r['id']}")["due_on"] == "2026-01-20"
    problem(admin.post("/v1/audit/subject-access-reports", json={"national_id": "A123456788"}), 400,
            "validation-failed")
    problem(admin.post("/v1/audit/subject-access-reports", json={"national_id": "A123456789", "id": "x"}), 400,
            "unknown-field")
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    problem(admin.post("/v1/audit/subject-access-reports", json={"national_id": "A123456789",
                                                                 "received_on": tomorrow}), 400, "validation-failed")
    problem(admin.post("/v1/audit/subject-access-reports", json={"national_id": "A123456789",
                                                                 "reference": "A123456789 asked"}), 400,
            "validation-failed")


def test_refusals_for_every_role(admin, login):
    sar = admin.call("POST", "/v1/audit/subject-access-reports", status=201, json={"national_id": "A223456781"})
    for name in EVERYONE:
        c = login(name)
        problem(c.post("/v1/audit/subject-access-reports", json={"national_id": "A223456781"}), 403, "forbidden")
        problem(c.get("/v1/audit/subject-access-reports"), 403, "forbidden")
        problem(c.get(f"/v1/audit/subject-access-reports/{sar['id']}"), 403, "forbidden")
        problem(c.post(f"/v1/audit/subject-access-reports/{sar['id']}/extension", json={"reason": "late"}), 403,
                "forbidden")
    problem(admin.request("POST", "/v1/audit/subject-access-reports", bearer=False,
                          json={"national_id": "A223456781"}), 401, "unauthenticated")
