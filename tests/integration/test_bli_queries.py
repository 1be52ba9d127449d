"""The BLI proxy (issue 6; DESIGN.md §4): the whole story through the gateway with the demo
accounts, and every refusal — each with its own code, no call to BLI (the sandbox counts them)
and no data. querier1 (SA-WEL) holds grants for C0101, B0101 and B0201; supervisor1 approves
SA-WEL's registrations. Every response is checked against the contract."""

import concurrent.futures
import datetime
import json
import os
import subprocess

import auditlib
import pytest
from test_audit import wait_tree_head
from bli_helpers import NoUpstreamCall, approved, calls, log_events, proxy_token, service_clock, wait_on_log  # noqa: F401
from conftest import new_national_id, poll, problem
from test_workflow_consume import Writer, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from workflow_helpers import ACK, bases, form2, grant, person_in, secret, sql, subject, today, units  # noqa: F401


def query(c, request_id, nid=None, item="C0101", subject_id=None):
    body = {"request_id": request_id, "item": item}
    if subject_id:
        body["subject_id"] = subject_id
    else:
        body["national_id"] = nid
    return c.post("/v1/bli/queries", json=body)


def masked(nid):
    return nid[:3] + "****" + nid[-3:]


def taipei_today():
    return (datetime.datetime.utcnow() + datetime.timedelta(hours=8)).date()


def test_catalogue(login):
    items = login("querier1").call("GET", "/v1/bli/items")["items"]
    assert {"C0101", "B0101", "B0201", "B0301", "P0301", "N0101", "T0101", "B0401", "P0401"} <= {i["code"] for i in items}
    assert all(i["name_zh"] and i["name_en"] for i in items)


# IDs the sandbox always holds records for (services/bli-sandbox/README.md); about one random
# ID in ten has none, which is an answer too (found false, data null)
WITH_RECORDS = ("A123456789", "A223456781", "B123456780")


def test_the_whole_story(login, bases, stack, demo):
    req, nid = approved(login, bases, items=("C0101", "B0101"), nid=WITH_RECORDS[0])
    q1 = login("querier1")  # a login ends the querier's older session: sign in after preparing
    before = calls(stack)
    r = query(q1, req["id"], nid)
    assert r.status_code == 201, r.text
    got = r.json()
    assert calls(stack) == before + 1
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Location"] == f"/v1/bli/queries/{got['id']}"
    assert got["state"] == "succeeded" and got["found"] is True and got["item"] == "C0101"
    assert got["subject"]["national_id_masked"] == masked(nid) and nid not in r.text
    assert got["data"] and got["retrieved_at"] and got["registration_no"] == req["registration_no"]
    # retention: five years by default
    until = datetime.date.fromisoformat(got["retention_until"])
    assert 5 * 365 <= (until - taipei_today()).days <= 5 * 365 + 2
    wm = got["watermark"]
    assert wm["account_id"] == demo["querier1"]["account_id"] and wm["name"] == got["querier"]["name"]
    assert wm["name"] in wm["text"] and wm["at"] == got["retrieved_at"]
    assert got["purpose"]["legal_basis"]["code"] == "PUBLIC-ASSISTANCE"
    # the subject named by its id on the request works as well
    sid = login("supervisor1").call("GET", f"/v1/query-requests/{req['id']}")["subjects"][0]["id"]
    second = query(q1, req["id"], item="B0101", subject_id=sid)
    assert second.status_code == 201, second.text
    # metadata of the request's queries: no data
    listed = q1.call("GET", "/v1/bli/queries", params={"request_id": req["id"]})["items"]
    assert sorted(x["id"] for x in listed) == sorted([got["id"], second.json()["id"]])
    assert all("data" not in x for x in listed)
    # read again: the same data, a fresh watermark, an event
    again = q1.call("GET", f"/v1/bli/queries/{got['id']}")
    assert again["data"] == got["data"] and again["subject"]["national_id_masked"] == masked(nid)
    assert again["watermark"]["name"] == got["querier"]["name"] and again["watermark"]["name"] in again["watermark"]["text"]
    # on the log: the query's event before the data, the reading after, with inclusion proofs
    executed = wait_on_log(login, type="bli_query.executed", object_id=got["id"])
    viewed = wait_on_log(login, type="bli_query.viewed", object_id=got["id"])
    ev = executed[0]["event"]
    assert ev["actor"]["account_id"] == demo["querier1"]["account_id"]
    assert ev["details"]["request_id"] == req["id"] and ev["details"]["item"] == "C0101"
    assert ev["subject"]["id_masked"] == masked(nid) and len(ev["subject"]["id_hmac"]) == 64
    assert ev["purpose"]["registration_no"] == req["registration_no"]
    assert viewed[0]["event"]["details"]["viewer_role"] == "querier"
    c = login("ethics1")
    head = wait_tree_head(c, max(executed[0]["index"], viewed[0]["index"]) + 1)
    jwks = c.call("GET", "/v1/audit/keys", bearer=False)
    assert auditlib.verify_tree_head(head, jwks)
    for line in (executed[0], viewed[0]):
        p = c.call("GET", "/v1/audit/proofs/inclusion", bearer=False,
                   params={"index": line["index"], "tree_size": head["tree_size"]})
        leaf = auditlib.leaf_hash(auditlib.canonical(line["event"]))
        assert auditlib.verify_inclusion(line["index"], head["tree_size"], leaf,
                                         [bytes.fromhex(h) for h in p["audit_path"]], bytes.fromhex(head["root_hash"]))
    # no national ID anywhere on the log
    for line in log_events(login, object_id=got["id"]):
        assert nid not in str(line)


def test_the_requester_reads_again_others_do_not(login, bases, demo, person_in, units):
    colleague = person_in(units["SA-WEL"], roles=("querier",))
    req, nid = approved(login, bases, requester_id=colleague["id"])
    got = query(login("querier1"), req["id"], nid).json()
    seen = colleague["c"].call("GET", f"/v1/bli/queries/{got['id']}")
    assert seen["data"] == got["data"] and seen["watermark"]["account_id"] == colleague["id"]
    # the watermark names whoever is shown the data, not the querier
    assert seen["watermark"]["name"] == colleague["name"] and colleague["name"] in seen["watermark"]["text"]
    assert [x["id"] for x in colleague["c"].call("GET", "/v1/bli/queries",
                                                 params={"request_id": req["id"]})["items"]] == [got["id"]]
    # the supervisor who approved, another querier, another unit's supervisor: not readers of the data
    for name in ("supervisor1", "querier2", "supervisor2"):
        problem(login(name).get(f"/v1/bli/queries/{got['id']}"), 404, "not-found")
    # rule 4: the unit's supervisor oversees its queries, and lists them (metadata only, no data)
    listed = login("supervisor1").call("GET", "/v1/bli/queries", params={"request_id": req["id"]})["items"]
    assert [x["id"] for x in listed] == [got["id"]] and "data" not in listed[0] and nid not in str(listed)
    for name in ("querier2", "supervisor2"):
        assert login(name).call("GET", "/v1/bli/queries", params={"request_id": req["id"]})["items"] == []


def _listed(c, limit, **params):
    ids, cursor = [], None
    while True:
        page = c.call("GET", "/v1/bli/queries", params=dict(params, limit=limit, **({"cursor": cursor} if cursor else {})))
        assert len(page["items"]) <= limit
        ids += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def _scan_rows(node):
    """Index entries and table rows the plan's scans returned, over all their loops."""
    n = node.get("Actual Rows", 0) * node.get("Actual Loops", 1) if "Scan" in node.get("Node Type", "") else 0
    return n + sum(_scan_rows(child) for child in node.get("Plans", []))


def test_listing_pages_down_each_readers_index(login, bases, stack, demo, units):
    """A supervisor lists the unit's records (rule 4) and a querier their own, page by page: every
    record once, in order; and a page reads about a page of entries per way of being a reader,
    not every record of the unit."""
    req, nid = approved(login, bases)
    got = query(login("querier1"), req["id"], nid).json()
    # 150 more of the unit's records, a second apart (copies of this one, each its own id; their
    # sealed results cannot be opened under their ids, so they go again at the end)
    sql(stack, "INSERT INTO bliproxy.queries SELECT (jsonb_populate_record(NULL::bliproxy.queries, to_jsonb(q)"
               " || jsonb_build_object('id', gen_random_uuid(), 'consumption_id', gen_random_uuid(),"
               " 'created_at', q.created_at - n * interval '1 second'))).* FROM bliproxy.queries q,"
               f" generate_series(1, 150) n WHERE q.id = '{got['id']}'")
    try:
        _page_through_the_listings(login, stack, demo, units, req, got)
    finally:
        sql(stack, f"DELETE FROM bliproxy.queries WHERE request_id = '{req['id']}' AND id <> '{got['id']}'")


def _page_through_the_listings(login, stack, demo, units, req, got):
    sup1 = demo["supervisor1"]["account_id"]
    expected = sql(stack, "SELECT id FROM bliproxy.queries WHERE querier_id = '{0}' OR requester_id = '{0}'"
                          " OR applicant_id = '{0}' OR unit_id = '{1}' ORDER BY created_at, id".format(sup1, units["SA-WEL"]))
    assert len(expected) > 150
    assert _listed(login("supervisor1"), 40) == expected
    # the statement the proxy runs for a page (the last one a pooled connection ran: listed again
    # until one shows it, another statement may have followed on it), planned again for a page
    # of 10 — as the planner does once the table is large (this one is too small for it to
    # prefer walking an index over a sort: test_indexes.py)
    def statement():
        login("supervisor1").call("GET", "/v1/bli/queries", params={"limit": 5})
        found = sql(stack, "SELECT query FROM pg_stat_activity WHERE usename = 'bligate_bliproxy'"
                           " AND query LIKE '%UNION (SELECT id, created_at FROM queries WHERE unit_id%' LIMIT 1")
        return found[0] if found else None
    text = poll("the proxy's listing statement in pg_stat_activity", statement)
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                         input="SET search_path = bliproxy;\nSET enable_seqscan = off;\nSET enable_bitmapscan = off;\n"
                               f"PREPARE l AS {text};\n"
                               f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE l('{sup1}', NULL, NULL, 11, '{units['SA-WEL']}');\n",
                         check=True, capture_output=True, text=True).stdout
    plan = json.loads(out)[0]["Plan"]
    assert _scan_rows(plan) <= 4 * 11 + 11, json.dumps(plan, indent=1)
    q1 = demo["querier1"]["account_id"]  # the querier and the requester of each: listed once
    assert _listed(login("querier1"), 50) == sql(
        stack, "SELECT id FROM bliproxy.queries WHERE querier_id = '{0}' OR requester_id = '{0}'"
               " OR applicant_id = '{0}' ORDER BY created_at, id".format(q1))
    of_request = sql(stack, f"SELECT id FROM bliproxy.queries WHERE request_id = '{req['id']}' ORDER BY created_at, id")
    assert len(of_request) == 151 and _listed(login("querier1"), 60, request_id=req["id"]) == of_request


def test_refusals_before_any_upstream_call(login, bases, stack, demo, client):
    req, nid = approved(login, bases, items=("C0101",))
    q1 = login("querier1")
    with NoUpstreamCall(stack):
        # no token
        problem(client().post("/v1/bli/queries", json={"request_id": req["id"], "national_id": nid, "item": "C0101"}),
                401, "unauthenticated")
        # no grant for the item (querier1 holds no P0301)
        problem(query(q1, req["id"], nid, item="P0301"), 403, "grant-missing")
        # another querier's request: querier2 holds C0101 but the request is querier1's
        problem(query(login("querier2"), req["id"], nid), 403, "not-request-querier")
        # subject or item not on the request
        problem(query(q1, req["id"], "A123456789"), 422, "subject-not-on-request")
        problem(query(q1, req["id"], nid, item="B0101"), 422, "item-not-on-request")
        # no such request
        problem(query(q1, "00000000-0000-4000-8000-000000000000", nid), 404, "not-found")
        # bad bodies
        problem(q1.post("/v1/bli/queries", json={"request_id": req["id"], "item": "C0101"}), 400, "validation-failed")
        problem(q1.post("/v1/bli/queries", json={"request_id": req["id"], "item": "X9999", "national_id": nid}), 400,
                "validation-failed")
        problem(q1.post("/v1/bli/queries", json={"request_id": req["id"], "item": "C0101", "national_id": nid,
                                                 "extra": 1}), 400, "unknown-field")
    # a use: the first query runs, the second finds none left
    assert query(q1, req["id"], nid).status_code == 201
    with NoUpstreamCall(stack):
        problem(query(q1, req["id"], nid), 409, "uses-exhausted")
    # a registration not approved (pending), and one rejected
    pending = q1.call("POST", "/v1/query-requests", status=201,
                      json=form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    with NoUpstreamCall(stack):
        problem(query(q1, pending["id"], nid), 409, "request-not-approved")
        # whose request it is comes first: another querier holding its id learns nothing of its
        # state, subjects or uses
        q2 = login("querier2")
        problem(query(q2, pending["id"], nid), 403, "not-request-querier")
        problem(query(q2, req["id"], nid), 403, "not-request-querier")
        problem(query(q2, pending["id"], "A123456789"), 403, "not-request-querier")
    q1.call("POST", f"/v1/query-requests/{pending['id']}/cancel", json={"reason": "no longer needed"})
    with NoUpstreamCall(stack):
        problem(query(q1, pending["id"], nid), 409, "request-not-approved")
        problem(query(login("querier2"), pending["id"], nid), 403, "not-request-querier")


def _own_registration(login, bases, who, items=("C0101",), decider="supervisor1"):
    nid = new_national_id()
    req = who["c"].call("POST", "/v1/query-requests", status=201,
                        json=form2(bases["PUBLIC-ASSISTANCE"], [subject(list(items), nid)]))
    login(decider).call("POST", f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"})
    return req, nid


def test_session_refusals(login, admin, bases, stack, demo, service_clock, person_in, units):
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    req, nid = _own_registration(login, bases, who)
    with NoUpstreamCall(stack):
        # idle: accounts' clock moves past the 10-minute idle limit; the token itself still verifies here
        service_clock("accounts", 11 * 60)
        problem(query(who["c"], req["id"], nid), 401, "session-idle-expired")
        service_clock("accounts", 0)
    # logged in again, then logged out: the old token is refused at once
    who["c"].login(who["cert"], who["key"])
    token = who["c"].token
    assert who["c"].delete("/v1/auth/sessions/current").status_code == 204
    who["c"].token = token
    with NoUpstreamCall(stack):
        problem(query(who["c"], req["id"], nid), 401, "session-ended")
    # the registration is still good: after a new login the query runs
    who["c"].login(who["cert"], who["key"])
    assert query(who["c"], req["id"], nid).status_code == 201


def test_deactivated_account_and_suspended_grant(login, admin, bases, stack, person_in, units):
    a, b = person_in(units["SA-WEL"]), person_in(units["SA-WEL"])
    for who in (a, b):
        grant(login, admin, who, ["C0101"], "supervisor1")
    req_a, nid_a = _own_registration(login, bases, a)
    req_b, nid_b = _own_registration(login, bases, b)
    # a change of unit suspends every grant at once
    admin.call("PATCH", f"/v1/accounts/{a['id']}", json={"unit_id": units["SA-DIS"]})
    with NoUpstreamCall(stack):
        problem(query(a["c"], req_a["id"], nid_a), 403, "grant-suspended")
    # so does the end of being a querier: the role goes, the grants with it, before any new login
    # (and without the role no grant would do)
    done = admin.call("PATCH", f"/v1/accounts/{b['id']}", json={"roles": []})
    assert done["roles"] == []
    with NoUpstreamCall(stack):
        problem(query(b["c"], req_b["id"], nid_b), 403, "not-a-querier")
    g = admin.call("GET", f"/v1/accounts/{b['id']}/grants")["items"]
    assert [(x["item"], x["status"], x["suspension_reason"]) for x in g] == [("C0101", "suspended", "querier-role-removed")]
    # a grant effective from tomorrow does not allow a query today (checked before the request)
    c = person_in(units["SA-WEL"])
    app = c["c"].call("POST", "/v1/permission-applications", status=201, json={
        "type": "new", "items": ["C0101"], "reason": "辦理社會救助業務", "acknowledgements": ACK})
    url = f"/v1/permission-applications/{app['id']}/decisions"
    login("supervisor1").call("POST", url, json={"decision": "approve"})
    admin.call("POST", url, json={"decision": "approve"})
    login("permhead").call("POST", url, json={"decision": "approve", "effective_date": today(1)})
    with NoUpstreamCall(stack):
        problem(query(c["c"], req_a["id"], nid_a), 403, "grant-not-effective")
    # leaving: deactivation ends the session and the account
    token = b["c"].token
    admin.call("POST", f"/v1/accounts/{b['id']}/deactivate", json={"reason": "離職"})
    b["c"].token = token
    with NoUpstreamCall(stack):
        r = query(b["c"], req_b["id"], nid_b)
        assert r.status_code in (401, 403), r.text
        problem(r, r.status_code, "session-ended" if r.status_code == 401 else "account-inactive")


def _moved_to_sa_dis(login, admin, who, units, items=("C0101",)):
    """who moves from SA-WEL to SA-DIS (every grant suspended) and SA-DIS confirms the items for
    the new duties: a change of duties decided by its supervisor, the administrator and the
    head; the same session all along."""
    admin.call("PATCH", f"/v1/accounts/{who['id']}", json={"unit_id": units["SA-DIS"]})
    app = who["c"].call("POST", "/v1/permission-applications", status=201, json={
        "type": "change_of_duties", "items": list(items), "reason": "辦理社會救助業務", "acknowledgements": ACK})
    url = f"/v1/permission-applications/{app['id']}/decisions"
    login("supervisor2").call("POST", url, json={"decision": "approve"})
    admin.call("POST", url, json={"decision": "approve"})
    login("permhead").call("POST", url, json={"decision": "approve", "effective_date": today()})


def test_the_event_names_the_unit_of_today(login, admin, bases, person_in, units):
    """After a change of unit the session goes on, its token naming the old unit: the query's
    event names the unit the querier belongs to when the query runs, as accounts says."""
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    _moved_to_sa_dis(login, admin, who, units)
    req, nid = _own_registration(login, bases, who, decider="supervisor2")
    got = query(who["c"], req["id"], nid)
    assert got.status_code == 201, got.text
    [line] = [x for x in log_events(login, object_id=got.json()["id"]) if x["event"]["type"] == "bli_query.executed"]
    assert line["event"]["actor"]["unit_id"] == units["SA-DIS"]
    assert line["event"]["actor"]["account_id"] == who["id"]


def test_a_request_of_the_unit_left_behind_is_not_used(login, admin, bases, stack, person_in, units):
    """Rule 5: a registration is for its unit's business, approved by that unit's supervisor.
    A querier who moved (the new unit confirming the items for the new duties) no longer
    queries under the old unit's registrations; under the new unit's they do."""
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    old, nid = _own_registration(login, bases, who)
    _moved_to_sa_dis(login, admin, who, units)
    with NoUpstreamCall(stack):
        problem(query(who["c"], old["id"], nid), 403, "request-of-another-unit")
    new, nid2 = _own_registration(login, bases, who, decider="supervisor2")
    assert query(who["c"], new["id"], nid2).status_code == 201
    # nothing was taken of the old registration
    assert sql(stack, f"SELECT used FROM workflow.query_request_uses WHERE request_id = '{old['id']}'") == ["0"]


def test_a_grant_outlasting_the_querier_role_gives_no_query(login, admin, bases, stack, person_in, units):
    """The role goes and the grants are suspended with it; should a grant be active again all
    the same (an approval racing the removal), there is still no query without the role."""
    who = person_in(units["SA-WEL"])
    grant(login, admin, who, ["C0101"], "supervisor1")
    req, nid = _own_registration(login, bases, who)
    admin.call("PATCH", f"/v1/accounts/{who['id']}", json={"roles": []})
    sql(stack, f"UPDATE accounts.grants SET suspended_at = NULL, suspension_reason = NULL WHERE account_id = '{who['id']}'")
    with NoUpstreamCall(stack):
        problem(query(who["c"], req["id"], nid), 403, "not-a-querier")


def test_expired_registration(login, bases, stack, clock):
    req, nid = approved(login, bases)
    # a week and a day later the querier signs in again (the old session ended long ago):
    # the registration's window has closed
    clock(8 * 86400)
    q1 = login("querier1")
    with NoUpstreamCall(stack):
        problem(query(q1, req["id"], nid), 409, "request-expired")


def test_ciphertext_holds_no_plaintext(login, bases, stack):
    req, nid = approved(login, bases, nid=WITH_RECORDS[1])
    got = query(login("querier1"), req["id"], nid).json()
    row = sql(stack, f"SELECT encode(sealed, 'hex'), key_id, subject_hmac FROM bliproxy.queries WHERE id = '{got['id']}'")
    sealed_hex, kid, hmac = row[0].split("|")
    sealed = bytes.fromhex(sealed_hex)
    assert kid == "k1" and len(hmac) == 64
    # nothing of the data, the subject's name or number is readable in the stored bytes
    for value in [nid, masked(nid), got["subject"]["name"]] + [str(v) for v in got["data"].values() if isinstance(v, str)]:
        assert value.encode() not in sealed
    assert b'"record"' not in sealed and b"found" not in sealed
    # the same ciphertext moved to another record does not open: reading that record fails closed
    req2, nid2 = approved(login, bases)
    other = query(login("querier1"), req2["id"], nid2).json()
    sql(stack, f"UPDATE bliproxy.queries SET sealed = decode('{sealed_hex}', 'hex') WHERE id = '{other['id']}'")
    problem(login("querier1").get(f"/v1/bli/queries/{other['id']}"), 500, "internal-error")


def test_the_outcome_is_written_in_place(login, bases, stack):
    """The outcome's update changes no indexed column, so PostgreSQL writes it as a heap-only
    tuple (no new entry in any of the record's indexes: 0003_outcome_in_place.sql); an index on
    state, found, retrieved_at, key_id or sealed would undo that and fail here."""
    req, nid = approved(login, bases)
    got = query(login("querier1"), req["id"], nid).json()
    [ctid] = sql(stack, f"SELECT ctid FROM bliproxy.queries WHERE id = '{got['id']}'")
    block, item = ctid.strip("()").split(",")
    sql(stack, "CREATE EXTENSION IF NOT EXISTS pageinspect")
    [flags] = sql(stack, f"SELECT t_infomask2 FROM heap_page_items(get_raw_page('bliproxy.queries', {block}))"
                         f" WHERE lp = {item}")
    assert int(flags) & 0x8000, "the outcome was not written in place (HEAP_ONLY_TUPLE not set)"
    assert sql(stack, f"SELECT count(*) FROM bliproxy.queries_in_flight WHERE query_id = '{got['id']}'") == ["0"]


def test_purge_destroys_expired_results_and_logs_it(login, bases, stack, client):
    req, nid = approved(login, bases)
    got = query(login("querier1"), req["id"], nid).json()
    keep = query_another(login, bases)
    pc = client(stack["BLIGATE_BLIPROXY_URL"])
    pc.token = proxy_token(client, stack)
    # not yet: nothing of this record goes
    first = pc.call("POST", "/internal/results/purge", json={})
    assert got["id"] not in first["record_ids"]
    # five years on: the record's retention date is moved into the past (moving the clocks five
    # years would also rotate the token keys); the result retained to today stays
    sql(stack, f"UPDATE bliproxy.queries SET retention_until = retention_until - interval '{5 * 366} days'"
               f" WHERE id = '{got['id']}'")
    sql(stack, f"UPDATE bliproxy.queries SET retention_until = '{taipei_today()}' WHERE id = '{keep['id']}'")
    done = pc.call("POST", "/internal/results/purge", json={})
    assert got["id"] in done["record_ids"] and keep["id"] not in done["record_ids"] and done["destroyed"] >= 1
    assert login("querier1").call("GET", f"/v1/bli/queries/{keep['id']}")["data"] == keep["data"]
    row = sql(stack, f"SELECT state, sealed IS NULL, key_id IS NULL, destroyed_at IS NOT NULL FROM bliproxy.queries"
                     f" WHERE id = '{got['id']}'")
    assert row == ["destroyed|t|t|t"]
    problem(login("querier1").get(f"/v1/bli/queries/{got['id']}"), 410, "result-destroyed")
    # the record stays (metadata), the destruction is on the log
    listed = login("querier1").call("GET", "/v1/bli/queries", params={"request_id": req["id"]})["items"]
    assert listed[0]["state"] == "destroyed" and listed[0]["destroyed_at"]
    ev = wait_on_log(login, type="bli_result.destroyed", until=lambda e: got["id"] in e["event"]["details"]["record_ids"])
    assert not any(keep["id"] in e["event"]["details"]["record_ids"] for e in ev)
    # the proxy's own doing (EVENTS.md), naming the latest retention date it ended
    [mine] = [e["event"] for e in ev if got["id"] in e["event"]["details"]["record_ids"]]
    assert mine["actor"] == {"client_id": "bliproxy"}
    assert mine["details"]["retention_until"] == sql(
        stack, f"SELECT max(retention_until) FROM bliproxy.queries WHERE id IN"
               f" ({', '.join(repr(i) for i in mine['details']['record_ids'])})")[0]
    # a second run finds nothing more of it
    assert got["id"] not in pc.call("POST", "/internal/results/purge", json={})["record_ids"]


def _form3_approved(login, bases, demo):
    """A Form 3 application of district1 for one subject and C0101, reviewed, its linked
    request approved: (the application, the request's id, the national ID)."""
    from test_workflow_external import endorse, form3, review
    nid = new_national_id()
    app = login("district1").call("POST", "/v1/external-applications", status=201,
                                  json=form3(demo, bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    assert endorse(login("district1head"), app["id"]).status_code == 200
    acc = review(login("reviewer1"), app["id"], querier_id=demo["querier1"]["account_id"], opinion="協助查詢").json()
    rid = acc["query_request"]["id"]
    login("supervisor1").call("POST", f"/v1/query-requests/{rid}/decision", json={"decision": "approve"})
    return app, rid, nid


def _form3_queried(login, bases, demo):
    """A Form 3 application queried for: (the applicant's client, the application, the query)."""
    app, rid, nid = _form3_approved(login, bases, demo)
    got = query(login("querier1"), rid, nid).json()
    return login("district1"), app, got


@pytest.mark.parametrize("path", ["view", "form3-results"])
def test_a_result_destroyed_while_it_is_read_is_not_shown(path, login, bases, stack, client, demo):
    """A reading that began within the retention, whose event reaches the log only after the
    purge destroyed the result: no data leaves after the destruction."""
    if path == "view":
        req, nid = approved(login, bases)
        reader = login("querier1")
        got = query(reader, req["id"], nid).json()
        url = f"/v1/bli/queries/{got['id']}"
    else:
        reader, app, got = _form3_queried(login, bases, demo)
        url = f"/v1/external-applications/{app['id']}/results"
    pc = client(stack["BLIGATE_BLIPROXY_URL"])
    pc.token = proxy_token(client, stack)
    # every outbox shipped first: then the reading's append is the only one to wait on the lock
    wait_for("every outbox shipped", lambda: sql(
        stack, "SELECT (SELECT count(*) FROM accounts.outbox WHERE shipped_at IS NULL)"
               " + (SELECT count(*) FROM workflow.outbox WHERE shipped_at IS NULL)"
               " + (SELECT count(*) FROM bliproxy.outbox WHERE shipped_at IS NULL)") == ["0"])
    # the log's lock held: the reading has opened the result and its event waits to be appended
    writer = Writer(stack, "SELECT 1 FROM audit.log_state WHERE id = 1 FOR UPDATE")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            pending = ex.submit(reader.get, url)
            wait_for("the reading's event waits on the log's lock", lambda: pending.done() or sql(
                stack, "SELECT 1 FROM pg_stat_activity WHERE usename = 'bligate_audit' AND wait_event_type = 'Lock'"))
            assert not pending.done(), pending.result().text
            # meanwhile the retention ends and the purge destroys the result
            sql(stack, f"UPDATE bliproxy.queries SET retention_until = retention_until - interval '{5 * 366} days'"
                       f" WHERE id = '{got['id']}'")
            assert got["id"] in pc.call("POST", "/internal/results/purge", json={})["record_ids"]
            writer.commit()
            seen = pending.result(timeout=30)
    finally:
        writer.abort()
    if path == "view":
        problem(seen, 410, "result-destroyed")
    else:
        problem(seen, 409, "conflict")
        # read again: the record is there, destroyed, without data
        again = reader.call("GET", url)["results"]
        assert [(x["id"], x["state"], "data" in x) for x in again] == [(got["id"], "destroyed", False)]
    assert "data" not in seen.json() and "results" not in seen.json()


def test_a_destruction_that_fails_is_tried_again(login, bases, stack, client):
    """The database refuses the destruction: nothing is destroyed, no event, 503 — and the next
    run destroys it (the failed run's event, never written, is freed: the sanitizer's report at
    the stack's stop would name it)."""
    req, nid = approved(login, bases)
    got = query(login("querier1"), req["id"], nid).json()
    pc = client(stack["BLIGATE_BLIPROXY_URL"])
    pc.token = proxy_token(client, stack)
    sql(stack, f"UPDATE bliproxy.queries SET retention_until = retention_until - interval '{5 * 366} days'"
               f" WHERE id = '{got['id']}'")
    sql(stack, "CREATE FUNCTION bliproxy.test_no_destruction() RETURNS trigger LANGUAGE plpgsql AS"
               " $$BEGIN RAISE EXCEPTION 'not now'; END$$;"
               " CREATE TRIGGER test_no_destruction BEFORE UPDATE ON bliproxy.queries FOR EACH ROW"
               " WHEN (NEW.state = 'destroyed') EXECUTE FUNCTION bliproxy.test_no_destruction()")
    try:
        for _ in range(2):
            problem(pc.post("/internal/results/purge", json={}), 503, "database-unavailable")
        assert sql(stack, f"SELECT state FROM bliproxy.queries WHERE id = '{got['id']}'") == ["succeeded"]
    finally:
        sql(stack, "DROP TRIGGER test_no_destruction ON bliproxy.queries; DROP FUNCTION bliproxy.test_no_destruction()")
    assert got["id"] in pc.call("POST", "/internal/results/purge", json={})["record_ids"]


def query_another(login, bases):
    req, nid = approved(login, bases)
    r = query(login("querier1"), req["id"], nid)
    assert r.status_code == 201, r.text
    return r.json()


def test_purge_needs_its_scope(stack, client):
    c = client(stack["BLIGATE_BLIPROXY_URL"])
    c.token = client().client_token("workflow", secret(stack, "workflow"))
    problem(c.post("/internal/results/purge", json={}), 403, "forbidden")
    problem(client(stack["BLIGATE_BLIPROXY_URL"]).post("/internal/results/purge", json={}), 401, "unauthenticated")


def test_form3_results_come_with_the_data(login, bases, demo):
    app, rid, nid = _form3_approved(login, bases, demo)
    d1 = login("district1")
    before = d1.call("GET", f"/v1/external-applications/{app['id']}/results")
    assert before["results"] == [] and before["done"] == 0
    got = query(login("querier1"), rid, nid).json()
    res = d1.get(f"/v1/external-applications/{app['id']}/results")
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    body = res.json()
    assert body["complete"] is True and [x["id"] for x in body["results"]] == [got["id"]]
    assert body["results"][0]["data"] == got["data"]
    assert body["watermark"]["account_id"] == demo["district1"]["account_id"]
    assert body["watermark"]["name"] == d1.me()["account"]["name"] and body["watermark"]["name"] in body["watermark"]["text"]
    # the applicant's reading is on the log, naming the application
    viewed = wait_on_log(login, type="bli_query.viewed", object_id=got["id"])
    assert any(v["event"]["details"].get("external_application_id") == app["id"] and
               v["event"]["details"]["viewer_role"] == "applicant" for v in viewed)
    # the applicant's supervisor sees the application's progress but not the data
    head = login("district1head").call("GET", f"/v1/external-applications/{app['id']}/results")
    assert head["results"] == [] and head["complete"] is True
    # the applicant reads the single result again too
    assert d1.call("GET", f"/v1/bli/queries/{got['id']}")["data"] == got["data"]
    # the authentication scheme's name is case-insensitive here as on every other endpoint
    lower = d1.get(f"/v1/external-applications/{app['id']}/results", headers={"Authorization": "bearer " + d1.token})
    assert lower.status_code == 200 and [x["id"] for x in lower.json()["results"]] == [got["id"]]


def stack_cmd(stack, *args):
    env = dict(os.environ, BLIGATE_VAR=stack["BLIGATE_VAR"])
    r = subprocess.run([os.path.join(REPO, "scripts", "stack"), *args], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_audit_no_data(login, bases, stack):
    req, nid = approved(login, bases)
    q1 = login("querier1")
    stack_cmd(stack, "stop-service", "audit")
    try:
        with NoUpstreamCall(stack):
            body = problem(query(q1, req["id"], nid), 503, "audit-unavailable")
        assert "given back" in body["detail"]
    finally:
        stack_cmd(stack, "start-service", "audit")
    # the use was given back: with the log back the same query runs
    r = query(q1, req["id"], nid)
    assert r.status_code == 201, r.text
    # and the log tells both: the refused attempt (its event delivered late, then its failure) and the query
    failed = wait_on_log(login, type="bli_query.failed", until=lambda e: e["event"]["details"]["request_id"] == req["id"])
    line = next(e for e in failed if e["event"]["details"]["request_id"] == req["id"])
    f = line["event"]
    assert f["details"]["code"] == "audit-unavailable" and f["details"]["released"] is True
    # the attempt's own event, never acknowledged by the log, was shipped from the outbox before
    # its failure
    [attempt] = wait_on_log(login, type="bli_query.executed", object_id=f["object"]["id"])
    assert attempt["index"] < line["index"]
    assert attempt["event"]["details"]["consumption_id"] == f["details"]["consumption_id"]
