"""Inspections (issue 7, rule 8, Form 4) and corrective actions: the IT team with the Ethics
Office opens an inspection of a querier whose queries are on the log; the sample is drawn
reproducibly (the draw is repeated here from the seed); the querier answers, the auditors find
(a breach opens a corrective action due in ten days and suspends the querier's grants through
accounts), the four sign with their names and titles, the Director's review closes the record;
the corrective action turns overdue on the test clock, is counted on /metrics, reported late
and closed. Every role that may not act is refused, and every step is on the log."""

import datetime
import hashlib
import json
import re
import uuid

import pytest

from conftest import problem
from oversight_helpers import People, executed, feed, gauge, purpose  # noqa: F401
from workflow_helpers import grant, person_in, today, units  # noqa: F401

BASIS = {"id": str(uuid.uuid4()), "code": "SA-F4", "law_name": "社會救助法"}


def seed_queries(feed, stack, who, unit_id, n=5):
    """n queries by `who` over the last hours, as bliproxy puts them on the log: [(index, event id)]."""
    people = People(stack)
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for k in range(n):
        t = (now - datetime.timedelta(minutes=30 * (k + 1))).strftime("%Y-%m-%dT%H:%M:%SZ")
        ev = executed(t, str(uuid.uuid4()), str(uuid.uuid4()), who, unit_id, "C0101", people.new(),
                      purpose(BASIS, "R-%d" % k))
        out.append((feed["bliproxy"].send(ev)[0], ev["id"]))
    return sorted(out)


def draw(seed, population, k):
    """The documented draw: the k events with the smallest SHA-256(seed ":" event_id), in log order."""
    chosen = sorted(population, key=lambda p: hashlib.sha256(f"{seed}:{p[1]}".encode()).hexdigest())[:k]
    return [eid for _, eid in sorted(chosen)]


def due_in(days):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def body(demo, units, querier_id, **kw):
    b = {"querier_id": querier_id, "period_from": today(-10), "period_to": today(), "auditing_unit_id": units["IT"],
         "auditing_unit_phone": "07-7995678", "auditor_ids": [demo["itstaff1"]["account_id"],
                                                             demo["ethics1"]["account_id"]],
         "documents_due_at": due_in(3), "sample_size": 3}
    b.update(kw)
    return b


def test_creation_and_a_reproducible_sample(login, demo, units, feed, stack, person_in):
    who = person_in(units["SA-WEL"])
    population = seed_queries(feed, stack, who["id"], units["SA-WEL"])
    it, eth = login("itstaff1"), login("ethics1")
    seed = "seed-" + uuid.uuid4().hex
    first = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], seed=seed))
    assert first["inspection_no"].startswith("F4-") and first["form"] == "F4" and first["state"] == "open"
    assert first["querier"] == {"account_id": who["id"], "name": who["name"], "title": "科員",
                                "unit_id": units["SA-WEL"]}
    assert first["using_unit"]["name"] == "社會救助科"
    assert first["auditing_unit"]["name"] == "秘書室資訊組" and first["auditing_unit"]["phone"] == "07-7995678"
    assert [(a["name"], a["title"], a["team"]) for a in first["auditors"]] == [("itstaff1", "資訊管理師", "it"),
                                                                              ("ethics1", "政風專員", "ethics")]
    assert first["sample"]["population"] == 5 and first["sample"]["drawn"] == 3 and first["case_count"] == 3
    # the given seed with the server's 32 random bytes after it: the recorded seed draws the cases
    recorded = first["sample"]["seed"]
    assert re.fullmatch(re.escape(seed) + r"\.[0-9a-f]{64}", recorded), recorded
    assert [c["event_id"] for c in first["cases"]] == draw(recorded, population, 3)
    assert [c["case_no"] for c in first["cases"]] == [1, 2, 3]
    assert all(c["item"] == "C0101" and c["purpose"]["legal_basis"]["code"] == "SA-F4" for c in first["cases"])
    # without a seed one is chosen, recorded, and reproduces the draw too
    own = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], sample_size=4))
    assert re.fullmatch(r"[0-9a-f]{64}", own["sample"]["seed"])
    assert [c["event_id"] for c in own["cases"]] == draw(own["sample"]["seed"], population, 4)
    # the longest seed the field takes is recorded and drawn from whole (it was cut to 71)
    long_seed = ("s" + uuid.uuid4().hex * 4)[:128]
    full = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], seed=long_seed))
    assert re.fullmatch(long_seed + r"\.[0-9a-f]{64}", full["sample"]["seed"])
    assert [c["event_id"] for c in full["cases"]] == draw(full["sample"]["seed"], population, 3)
    # the creation event carries the seed and the drawn events
    ev = [e["event"] for e in login("director").call("GET", "/v1/audit/events",
                                                     params={"object_id": first["id"]})["items"]]
    assert [e["type"] for e in ev] == ["audit.inspection.created"]
    assert ev[0]["details"]["sample"]["seed"] == recorded
    assert [c["event_index"] for c in ev[0]["details"]["sample"]["cases"]] == [c["event_index"]
                                                                              for c in first["cases"]]
    # an Idempotency-Key replays the first reply
    # (one body for both: body() stamps documents_due_at to the second, and a second boundary
    # between two calls made them different requests under one key)
    key, same = uuid.uuid4().hex, body(demo, units, who["id"], seed=seed)
    r1 = it.post("/v1/audit/inspections", json=same, headers={"Idempotency-Key": key})
    r2 = it.post("/v1/audit/inspections", json=same, headers={"Idempotency-Key": key})
    assert r1.status_code == r2.status_code == 201 and r1.json()["id"] == r2.json()["id"]
    assert r2.headers.get("Idempotent-Replayed") == "true"


def test_the_opener_cannot_choose_the_sample(login, demo, units, feed, stack, person_in):
    """Rule 8's inspection is unannounced: an auditor who could pick the seed could try seeds
    until the draw missed the cases they wanted missed. A given seed is only mixed in: the same
    seed over the same population is recorded as two different seeds, each of which re-draws
    its own sample by the documented rule."""
    who = person_in(units["SA-WEL"])
    population = seed_queries(feed, stack, who["id"], units["SA-WEL"], n=6)
    it, eth = login("itstaff1"), login("ethics1")
    seed = "chosen-" + uuid.uuid4().hex
    opened = [c.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], seed=seed))
              for c in (it, eth, it)]
    recorded = [x["sample"]["seed"] for x in opened]
    assert len(set(recorded)) == 3 and seed not in recorded, recorded
    for x in opened:
        assert x["sample"]["population"] == 6 and x["case_count"] == 3
        assert [c["event_id"] for c in x["cases"]] == draw(x["sample"]["seed"], population, 3)
        # the log holds the same seed and cases as the record
        ev = login("director").call("GET", "/v1/audit/events", params={"object_id": x["id"]})["items"][0]["event"]
        assert ev["details"]["sample"]["seed"] == x["sample"]["seed"]
        assert [c["event_index"] for c in ev["details"]["sample"]["cases"]] == [c["event_index"] for c in x["cases"]]


def test_creation_refusals(login, demo, units, feed, stack, person_in, admin):
    who = person_in(units["SA-WEL"])
    seed_queries(feed, stack, who["id"], units["SA-WEL"], n=1)
    it = login("itstaff1")
    for name in ("querier1", "supervisor1", "reviewer1", "permhead", "director", "district1"):
        problem(login(name).post("/v1/audit/inspections", json=body(demo, units, who["id"])), 403, "forbidden")
    # the caller must be one of the auditors
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], auditor_ids=[
        demo["permadmin"]["account_id"], demo["ethics1"]["account_id"]])), 403, "forbidden")
    # the IT team and the Ethics Office, both
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], auditor_ids=[
        demo["itstaff1"]["account_id"], demo["permadmin"]["account_id"]])), 422, "inspection-parties-invalid")
    # an auditor must be of either
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], auditor_ids=[
        demo["itstaff1"]["account_id"], demo["ethics1"]["account_id"], demo["supervisor1"]["account_id"]])),
        422, "inspection-parties-invalid")
    # nobody audits themselves
    problem(admin.post("/v1/audit/inspections", json=body(demo, units, demo["permadmin"]["account_id"], auditor_ids=[
        demo["permadmin"]["account_id"], demo["ethics1"]["account_id"]])), 422, "inspection-parties-invalid")
    # in any spelling: an id in upper case is the same person (PostgreSQL would take it as such)
    pa, eth = demo["permadmin"]["account_id"], demo["ethics1"]["account_id"]
    problem(admin.post("/v1/audit/inspections", json=body(demo, units, pa, auditor_ids=[pa.upper(), eth])), 422,
            "inspection-parties-invalid")
    problem(admin.post("/v1/audit/inspections", json=body(demo, units, pa.upper(), auditor_ids=[pa, eth])), 422,
            "inspection-parties-invalid")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], auditor_ids=[
        demo["itstaff1"]["account_id"], eth, eth.upper()])), 400, "validation-failed")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, str(uuid.uuid4()))), 422,
            "inspection-parties-invalid")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], auditing_unit_id=units["SA-WEL"])),
            422, "auditing-unit-invalid")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], period_from="2010-01-01",
                                                       period_to="2010-03-31")), 422, "inspection-no-queries")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], period_to=today(3))), 400,
            "validation-failed")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], documents_due_at=due_in(-1))), 400,
            "validation-failed")
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], seed="short")), 400,
            "validation-failed")
    # Form 4 names the auditing unit's telephone
    no_phone = {k: v for k, v in body(demo, units, who["id"]).items() if k != "auditing_unit_phone"}
    p = problem(it.post("/v1/audit/inspections", json=no_phone), 400, "validation-failed")
    assert [e["field"] for e in p["errors"]] == ["auditing_unit_phone"]
    # nothing typed into an inspection that goes on the log may hold an ID number
    problem(it.post("/v1/audit/inspections", json=body(demo, units, who["id"], seed="A123456789-abcdefgh")), 400,
            "validation-failed")


def test_form4_from_creation_to_the_directors_review_with_a_corrective_action(
        login, demo, units, feed, stack, person_in, admin, client, clock):
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101", "B0101"], "supervisor1")
    seed_queries(feed, stack, who["id"], units["SA-WEL"], n=4)
    it, eth, sup1, sup2 = login("itstaff1"), login("ethics1"), login("supervisor1"), login("supervisor2")
    q = who["c"]
    ins = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"]))
    iid, url = ins["id"], "/v1/audit/inspections/" + ins["id"]

    # who sees the record: the querier, the auditors, both supervisors, overseers; nobody else
    for c in (q, it, eth, sup1, login("permhead"), login("director")):
        assert c.call("GET", url)["id"] == iid
    for c in (login("querier2"), sup2, login("reviewer1"), login("district1")):
        problem(c.get(url), 404, "not-found")
    assert iid in [i["id"] for i in q.items("/v1/audit/inspections")]
    assert iid not in [i["id"] for i in sup2.items("/v1/audit/inspections")]
    problem(q.post(url + "/signoffs", json={"capacity": "querier"}), 409, "inspection-state-invalid")

    # the querier's documents
    problem(sup1.post(url + "/responses", json={"responses": [
        {"case_no": 1, "case_reference": "x", "explanation": "y"}]}), 403, "not-audited-querier")
    ins = q.call("POST", url + "/responses", json={"responses": [
        {"case_no": 1, "case_reference": "高市社助字第1號", "explanation": "低收入戶複查"},
        {"case_no": 2, "case_reference": "高市社助字第2號", "explanation": "急難救助"}]})
    assert [c["response"]["case_reference"] if c["response"] else None for c in ins["cases"]] == [
        "高市社助字第1號", "高市社助字第2號", None]
    assert ins["cases"][0]["response"]["late"] is False
    problem(q.post(url + "/responses", json={"responses": [{"case_no": 1, "case_reference": "x",
                                                            "explanation": "y"}]}), 409, "case-already-answered")
    problem(q.post(url + "/responses", json={"responses": [{"case_no": 9, "case_reference": "x",
                                                            "explanation": "y"}]}), 422, "inspection-case-unknown")
    # case 3 is not answered and its deadline has not passed: no finding yet
    problem(eth.post(url + "/findings", json={"findings": [{"case_no": 3, "result": "compliant"}]}), 409,
            "case-response-pending")
    q.call("POST", url + "/responses", json={"responses": [{"case_no": 3, "case_reference": "高市社助字第3號",
                                                            "explanation": "身障補助"}]})

    # the auditors' findings; a breach opens a corrective action and suspends the grants
    for c in (q, sup1, login("director")):
        problem(c.post(url + "/findings", json={"opinion": "x"}), 403, "not-inspection-auditor")
    problem(eth.post(url + "/findings", json={"findings": [{"case_no": 2, "result": "breach"}]}), 400,
            "validation-failed")  # a breach says what was breached
    part = eth.call("POST", url + "/findings", json={"findings": [{"case_no": 1, "result": "compliant"}]})
    assert part["state"] == "open"
    ins = eth.call("POST", url + "/findings", json={
        "findings": [{"case_no": 2, "result": "breach", "note": "查詢目的與案件不符"},
                     {"case_no": 3, "result": "observation", "note": "說明過簡"}],
        "opinion": "第2案違反查詢目的，應即改正並於十日內提出檢討報告", "suspend_grants": True})
    assert ins["state"] == "findings_recorded" and ins["opinion"]["by"] == demo["ethics1"]["account_id"]
    assert [c["finding"]["result"] for c in ins["cases"]] == ["compliant", "breach", "observation"]
    ca = ins["cases"][1]["corrective_action"]
    assert ins["cases"][0]["corrective_action"] is None and ins["cases"][2]["corrective_action"] is None
    found = datetime.datetime.strptime(ins["cases"][1]["finding"]["found_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert ca["due_at"] == (found + datetime.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ca["state"] == "open" and ca["overdue"] is False and ca["account_id"] == who["id"]
    assert ca["grant_suspension"]["state"] == "done" and sorted(ca["grant_suspension"]["items"]) == ["B0101", "C0101"]
    grants = admin.call("GET", f"/v1/accounts/{who['id']}/grants")["items"]
    assert {g["item"]: g["status"] for g in grants} == {"C0101": "suspended", "B0101": "suspended"}
    problem(eth.post(url + "/findings", json={"opinion": "again"}), 409, "inspection-state-invalid")

    # four signatures, each by who may give it, once
    problem(q.post(url + "/signoffs", json={"capacity": "auditor"}), 403, "signoff-not-entitled")
    problem(sup1.post(url + "/signoffs", json={"capacity": "auditing_unit_supervisor"}), 403, "signoff-not-entitled")
    problem(login("director").post(url + "/director-review", json={}), 409, "inspection-state-invalid")
    q.call("POST", url + "/signoffs", json={"capacity": "querier"})
    problem(q.post(url + "/signoffs", json={"capacity": "querier"}), 409, "signoff-exists")
    it.call("POST", url + "/signoffs", json={"capacity": "auditor"})
    problem(eth.post(url + "/signoffs", json={"capacity": "auditor"}), 409, "signoff-exists")
    problem(login("director").post(url + "/signoffs", json={"capacity": "using_unit_supervisor"}), 403,
            "signoff-not-entitled")  # the querier's unit has its supervisor
    sup1.call("POST", url + "/signoffs", json={"capacity": "using_unit_supervisor"})
    ins = login("permhead").call("POST", url + "/signoffs", json={"capacity": "auditing_unit_supervisor"})
    assert ins["state"] == "signed" and ins["signatures_missing"] == []
    assert {s["capacity"]: (s["name"], s["title"]) for s in ins["signatures"]} == {
        "querier": (who["name"], "科員"), "auditor": ("itstaff1", "資訊管理師"),
        "using_unit_supervisor": ("supervisor1", "科長"), "auditing_unit_supervisor": ("permhead", "秘書室主任")}

    # the Director's review files it
    problem(admin.post(url + "/director-review", json={}), 403, "forbidden")
    problem(login("director").post(url + "/director-review", json={"comment": "見 A123456789 案"}), 400,
            "validation-failed")
    ins = login("director").call("POST", url + "/director-review", json={"comment": "准予備查"})
    assert ins["state"] == "closed" and ins["director_review"]["name"] == "director"
    assert ins["director_review"]["title"] == "局長" and ins["director_review"]["comment"] == "准予備查"
    problem(login("director").post(url + "/director-review", json={}), 409, "inspection-state-invalid")
    # every step on the log, in order (the reads of the record are on it too, among them:
    # test_every_read_of_an_inspection_is_on_the_log)
    types = [e["event"]["type"] for e in admin.call("GET", "/v1/audit/events",
                                                    params={"object_id": iid, "limit": 100})["items"]]
    types = [t for t in types if t != "audit.inspection.read"]
    assert types == ["audit.inspection.created"] + ["audit.inspection.responded"] * 2 + [
        "audit.inspection.findings_recorded"] * 2 + ["audit.inspection.signed_off"] * 4 + ["audit.inspection.reviewed"]
    ca_types = [e["event"]["type"] for e in admin.call("GET", "/v1/audit/events",
                                                       params={"object_id": ca["id"]})["items"]]
    assert ca_types == ["audit.corrective_action.opened", "audit.corrective_action.grants_suspended"]

    # the corrective action: seen by the querier, their supervisor and the auditors only
    ca_url = "/v1/audit/corrective-actions/" + ca["id"]
    for c in (q, sup1, eth, it):
        assert c.call("GET", ca_url)["id"] == ca["id"]
    for c in (sup2, login("querier2")):
        problem(c.get(ca_url), 404, "not-found")
    assert ca["id"] in [a["id"] for a in sup1.items("/v1/audit/corrective-actions")]
    assert ca["id"] not in [a["id"] for a in sup2.items("/v1/audit/corrective-actions")]
    problem(sup1.post(ca_url + "/report", json={"report": "x"}), 403, "forbidden")
    problem(eth.post(ca_url + "/close", json={}), 409, "corrective-action-state-invalid")
    problem(q.post(ca_url + "/suspension", json={}), 403, "not-inspection-auditor")
    overdue = [a["id"] for a in admin.items("/v1/audit/corrective-actions", params={"overdue": "true"})]
    assert ca["id"] not in overdue and gauge(stack, "bligate_corrective_actions_overdue") == len(overdue)

    # eleven days on: overdue, listed and counted
    clock(11 * 86400)
    pa, q2, eth2 = login("permadmin"), client(), login("ethics1")
    q2.login(who["cert"], who["key"])
    late = pa.call("GET", ca_url)
    assert late["overdue"] is True
    overdue = [a["id"] for a in pa.items("/v1/audit/corrective-actions", params={"overdue": "true"})]
    assert ca["id"] in overdue and gauge(stack, "bligate_corrective_actions_overdue") == len(overdue)
    rep = q2.call("POST", ca_url + "/report", json={"report": "已重新教育訓練並改正查詢流程"})
    assert rep["state"] == "reported" and rep["report"]["late"] is True and rep["overdue"] is False
    assert gauge(stack, "bligate_corrective_actions_overdue") == len(overdue) - 1
    problem(q2.post(ca_url + "/report", json={"report": "again"}), 409, "corrective-action-state-invalid")
    problem(q2.post(ca_url + "/close", json={}), 403, "not-inspection-auditor")
    closed = eth2.call("POST", ca_url + "/close", json={"note": "檢討報告已審閱"})
    assert closed["state"] == "closed" and closed["closure"]["note"] == "檢討報告已審閱"
    problem(pa.post(ca_url + "/suspension", json={}), 409, "corrective-action-state-invalid")
    ca_types = [e["event"]["type"] for e in pa.call("GET", "/v1/audit/events",
                                                    params={"object_id": ca["id"]})["items"]]
    assert ca_types[-2:] == ["audit.corrective_action.reported", "audit.corrective_action.closed"]


def canonical_sha256(doc):
    """SHA-256 of a document's canonical JSON, the form events take (docs/audit-log.md)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def test_every_read_of_an_inspection_is_on_the_log(login, demo, units, feed, stack, person_in, admin):
    """Form 4's cases name citizens (each sampled query's subject mask, registration and
    purpose): every read of the record is an access to oversight material, on the log before
    the answer, one event by its reader naming the record, its case count and the SHA-256 of
    exactly what was handed out. The list carries no cases (the record's own GET does), so it
    hands none out. A refused read (who may not see the record, an unknown record, an account
    that has left) hands out nothing and records nothing."""
    who = person_in(units["SA-WEL"])
    seed_queries(feed, stack, who["id"], units["SA-WEL"], n=3)
    it = login("itstaff1")
    ins = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], sample_size=2))
    iid, url = ins["id"], "/v1/audit/inspections/" + ins["id"]
    assert ins["case_count"] == 2 and all(c["subject_masked"] and c["purpose"] for c in ins["cases"])
    gone = person_in(units["IT"], roles=("it_staff",))  # an overseer who leaves before the end

    def reads():
        events = [e["event"] for e in admin.call("GET", "/v1/audit/events",
                                                 params={"object_id": iid, "limit": 100})["items"]]
        assert [e["type"] for e in events if e["type"] != "audit.inspection.read"] == ["audit.inspection.created"]
        return [e for e in events if e["type"] == "audit.inspection.read"]

    readers = [(who["c"], who["id"]), (it, demo["itstaff1"]["account_id"]),
               (login("ethics1"), demo["ethics1"]["account_id"]),
               (login("supervisor1"), demo["supervisor1"]["account_id"]),
               (login("permhead"), demo["permhead"]["account_id"]), (login("director"), demo["director"]["account_id"]),
               (admin, demo["permadmin"]["account_id"]), (gone["c"], gone["id"]),
               (it, demo["itstaff1"]["account_id"])]  # a second read is a second event
    digests = []
    for k, (c, _) in enumerate(readers):
        got = c.call("GET", url)
        assert [x["event_id"] for x in got["cases"]] == [x["event_id"] for x in ins["cases"]]
        assert [x["subject_masked"] for x in got["cases"]] == [x["subject_masked"] for x in ins["cases"]]
        digests.append(canonical_sha256(got))
        # on the log by the time the answer arrives
        assert len(reads()) == k + 1

    # the list names the records, not the citizens in their cases: nothing to record
    for c in (admin, who["c"], it):
        listed = [i for i in c.items("/v1/audit/inspections", params={"querier_id": who["id"]}) if i["id"] == iid]
        assert len(listed) == 1 and "cases" not in listed[0]
        assert listed[0]["case_count"] == 2 and listed[0]["inspection_no"] == ins["inspection_no"]

    # refused reads hand out nothing, so they are not reads of the record
    for name in ("querier2", "supervisor2", "reviewer1", "district1"):
        problem(login(name).get(url), 404, "not-found")
    unknown = str(uuid.uuid4())
    problem(admin.get("/v1/audit/inspections/" + unknown), 404, "not-found")
    assert admin.call("GET", "/v1/audit/events", params={"object_id": unknown})["items"] == []
    admin.call("POST", f"/v1/accounts/{gone['id']}/deactivate", json={"reason": "離職"})
    r = gone["c"].get(url)
    assert r.status_code in (401, 403), r.text

    got = reads()
    assert [e["actor"]["account_id"] for e in got] == [a for _, a in readers]
    for e, digest in zip(got, digests):
        assert e["source"] == "audit" and e["outcome"] == "success"
        assert e["object"] == {"kind": "inspection", "id": iid}
        assert e["details"]["inspection_no"] == ins["inspection_no"] and e["details"]["state"] == "open"
        assert e["details"]["case_count"] == 2 and e["details"]["record_sha256"] == digest


def one_case_found(it, demo, units, feed, stack, who, finding):
    """An inspection of one query by `who` (an account from person_in), answered, with the
    finding given and an opinion: (its URL, the record)."""
    seed_queries(feed, stack, who["id"], who["unit_id"], n=1)
    ins = it.call("POST", "/v1/audit/inspections", status=201, json=body(demo, units, who["id"], sample_size=1))
    url = "/v1/audit/inspections/" + ins["id"]
    who["c"].call("POST", url + "/responses", json={"responses": [{"case_no": 1, "case_reference": "r",
                                                                   "explanation": "e"}]})
    return url, it.call("POST", url + "/findings", json={"findings": [dict(finding, case_no=1)], "opinion": "o"})


def test_a_supervisor_querier_s_record_is_signed_by_the_director(login, demo, units, feed, stack, person_in):
    """A querier who is their unit's supervisor cannot sign for the using unit as well (one person,
    one capacity); the Director does, as for a supervisor's Form 2, else the record could never
    be signed and reviewed."""
    who = person_in(units["SA-ELD"], roles=("querier", "supervisor"))
    it = login("itstaff1")
    url, _ = one_case_found(it, demo, units, feed, stack, who, {"result": "compliant"})
    problem(who["c"].post(url + "/signoffs", json={"capacity": "using_unit_supervisor"}), 403, "signoff-not-entitled")
    who["c"].call("POST", url + "/signoffs", json={"capacity": "querier"})
    it.call("POST", url + "/signoffs", json={"capacity": "auditor"})
    login("permhead").call("POST", url + "/signoffs", json={"capacity": "auditing_unit_supervisor"})
    done = login("director").call("POST", url + "/signoffs", json={"capacity": "using_unit_supervisor"})
    assert done["state"] == "signed" and done["signatures_missing"] == []
    assert login("director").call("POST", url + "/director-review", json={"comment": "准予備查"})["state"] == "closed"


def test_a_breach_without_immediate_suspension_can_be_suspended_later(login, demo, units, feed, stack, person_in,
                                                                      admin):
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    it = login("itstaff1")
    url, ins = one_case_found(it, demo, units, feed, stack, who, {"result": "breach", "note": "n"})
    ca = ins["cases"][0]["corrective_action"]
    assert ca["grant_suspension"]["state"] == "none"
    assert {g["status"] for g in admin.call("GET", f"/v1/accounts/{who['id']}/grants")["items"]} == {"active"}
    done = admin.call("POST", f"/v1/audit/corrective-actions/{ca['id']}/suspension")
    assert done["grant_suspension"]["state"] == "done" and done["grant_suspension"]["items"] == ["C0101"]
    assert {g["status"] for g in admin.call("GET", f"/v1/accounts/{who['id']}/grants")["items"]} == {"suspended"}


def test_every_role_on_an_open_inspection(login, demo, units, feed, stack, person_in, admin):
    """Who sees the record is refused acting as someone else (403); who does not see it learns
    nothing (404); only the Director reviews, only the auditors find, only the querier answers."""
    who = person_in(units["SA-WEL"])
    seed_queries(feed, stack, who["id"], units["SA-WEL"], n=1)
    it = login("itstaff1")
    url = "/v1/audit/inspections/" + it.call("POST", "/v1/audit/inspections", status=201,
                                             json=body(demo, units, who["id"], sample_size=1))["id"]
    sees = {"permadmin", "itstaff1", "ethics1", "director", "supervisor1", "permhead"}
    auditors = {"itstaff1", "ethics1"}
    answer = {"responses": [{"case_no": 1, "case_reference": "r", "explanation": "e"}]}
    for name in ["permadmin", "querier1", "supervisor1", "reviewer1", "querier2", "supervisor2", "permhead",
                 "itstaff1", "ethics1", "director", "district1", "district1head"]:
        c = admin if name == "permadmin" else (it if name == "itstaff1" else login(name))
        if name not in sees:
            for path, b in (("/responses", answer), ("/findings", {"opinion": "o"}),
                            ("/signoffs", {"capacity": "auditor"})):
                problem(c.post(url + path, json=b), 404, "not-found")
            problem(c.get(url), 404, "not-found")
        else:
            problem(c.post(url + "/responses", json=answer), 403, "not-audited-querier")
            if name not in auditors:
                problem(c.post(url + "/findings", json={"opinion": "o"}), 403, "not-inspection-auditor")
                problem(c.post(url + "/signoffs", json={"capacity": "auditor"}), 403, "signoff-not-entitled")
            else:
                problem(c.post(url + "/signoffs", json={"capacity": "auditor"}), 409, "inspection-state-invalid")
        if name == "director":
            problem(c.post(url + "/director-review", json={}), 409, "inspection-state-invalid")
        else:
            problem(c.post(url + "/director-review", json={}), 403, "forbidden")
