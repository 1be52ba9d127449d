"""The audit log (issue 5): intake with de-duplication, gap-free indices, signed tree heads,
inclusion and consistency proofs checked by an independent verifier (auditlib.py), an
append-only table even for its owner, readers only and every read on the log, search by
national ID without the ID in a URL, NDJSON export checked offline by `bligate audit verify`
(and a tampered copy refused), and the server's own verification."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid

import pytest
import requests

import auditlib
from conftest import new_national_id, problem

READERS = ["permadmin", "itstaff1", "ethics1", "director"]


def psql(url, query):
    return subprocess.run(["psql", url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                          capture_output=True, text=True)


def sql(stack, query):
    r = psql(stack["BLIGATE_DB_SUPER_URL"], query)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line]


def role_url(stack, role):
    return f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user={role}"


@pytest.fixture
def intake(client, stack):
    """A client on the audit service's own port holding the accounts client's token
    (scope events:append), as a shipper would."""
    secret = open(os.path.join(stack["BLIGATE_SECRETS_DIR"], "accounts.client-secret")).read().strip()
    token = client().client_token("accounts", secret)
    c = client(stack["BLIGATE_AUDIT_URL"])
    c.token = token
    return c


def event(**kw):
    ev = {"id": str(uuid.uuid4()), "type": "test.audit", "time": "2026-01-02T03:04:05Z",
          "outcome": "success", "object": {"kind": "test", "id": uuid.uuid4().hex}, "details": {"n": 1}}
    ev.update(kw)
    return ev


def append(intake, events, status=200):
    return intake.call("POST", "/internal/events", status=status, json={"events": events})


def latest(c):
    return c.call("GET", "/v1/audit/tree-heads/latest", bearer=False)


def wait_tree_head(c, size, seconds=10):
    """The signer covers new events within a second; poll (bounded) until it has."""
    deadline = time.monotonic() + seconds
    while True:
        sth = latest(c)
        if sth["tree_size"] >= size:
            return sth
        assert time.monotonic() < deadline, f"no tree head covers {size} events: {sth}"
        time.sleep(0.1)


def id_hmac(stack, nid):
    key = bytes.fromhex(open(os.path.join(stack["PKI"], "id-hmac.key")).read().strip())
    return hmac.new(key, nid.encode(), hashlib.sha256).hexdigest()


def export(c, **params):
    r = c.get("/v1/audit/events", headers={"Accept": "application/x-ndjson"}, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    return [auditlib.loads(line) for line in r.text.splitlines()]


def test_keys_and_signed_tree_heads(client, intake):
    c = client()
    jwks = c.call("GET", "/v1/audit/keys", bearer=False)
    assert jwks["keys"] and all(k["alg"] == "ES256" for k in jwks["keys"])
    res = append(intake, [event()])
    idx = res["results"][0]["index"]
    sth = wait_tree_head(c, idx + 1)
    assert auditlib.verify_tree_head(sth, jwks)
    # a changed value, or a signature by another key, is refused
    assert not auditlib.verify_tree_head(dict(sth, tree_size=sth["tree_size"] + 1), jwks)
    assert not auditlib.verify_tree_head(dict(sth, root_hash="00" * 32), jwks)
    from cryptography.hazmat.primitives.asymmetric import ec
    nums = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    b64 = lambda v: base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
    other = {"keys": [dict(jwks["keys"][0], x=b64(nums.x), y=b64(nums.y))]}
    assert not auditlib.verify_tree_head(sth, other)


def test_intake_appends_in_order_without_gaps_and_acknowledges_duplicates(intake, stack):
    evs = [event(), event(), event()]
    first = append(intake, evs)
    idx = [r["index"] for r in first["results"]]
    assert [r["status"] for r in first["results"]] == ["appended"] * 3
    assert idx == list(range(idx[0], idx[0] + 3)) and first["appended"] == 3
    # the same batch again: acknowledged with the same indices, nothing appended
    again = append(intake, evs)
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert [r["index"] for r in again["results"]] == idx and again["appended"] == 0
    # a duplicate inside one batch, beside a new event
    new = event()
    mixed = append(intake, [new, new, evs[0]])
    assert [r["status"] for r in mixed["results"]] == ["appended", "duplicate", "duplicate"]
    assert mixed["results"][0]["index"] == mixed["results"][1]["index"] > idx[2]
    # an id written in upper case, sent twice: the log stores it as a uuid (lower case), and the
    # second is still recognised as a duplicate (it was a 503, and a shipper would stall on it)
    upper = event()
    upper["id"] = upper["id"].upper()
    first_up = append(intake, [upper])["results"][0]
    again_up = append(intake, [upper])["results"][0]
    assert first_up["status"] == "appended"
    assert again_up["status"] == "duplicate" and again_up["index"] == first_up["index"]
    for e in evs + [new]:
        assert sql(stack, f"SELECT count(*) FROM audit.events WHERE event_id = '{e['id']}'") == ["1"]
    # indices have no gap anywhere on the log
    n, lo, hi = sql(stack, "SELECT count(*), min(idx), max(idx) FROM audit.events")[0].split("|")
    assert int(lo) == 0 and int(hi) == int(n) - 1


def test_intake_refusals(intake, client, stack):
    e = event()
    append(intake, [e])
    # the same id with other content is a conflict, and nothing of the batch is appended
    fresh = event()
    r = intake.post("/internal/events", json={"events": [fresh, dict(e, outcome="failure")]})
    problem(r, 409, "event-id-conflict")
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE event_id = '{fresh['id']}'") == ["0"]
    # a national ID anywhere in an event, even inside free text
    nid = new_national_id()
    r = intake.post("/internal/events", json={"events": [event(details={"note": f"about {nid}"})]})
    body = problem(r, 422, "national-id-in-event")
    assert nid not in json.dumps(body)
    # in lower case too, where it stands alone (inside a hex digest it is not one)
    r = intake.post("/internal/events", json={"events": [event(details={"note": f"個案{nid.lower()}"})]})
    problem(r, 422, "national-id-in-event")
    # malformed events, each field named
    r = intake.post("/internal/events", json={"events": [{"id": "x", "type": "Bad Type", "time": "yesterday",
                                                          "extra": 1}]})
    fields = {e["field"] for e in problem(r, 400, "validation-failed")["errors"]}
    assert {"events[0].id", "events[0].type", "events[0].time", "events[0].extra"} <= fields
    r = intake.post("/internal/events", json={"events": [event(subject={"id_hmac": "nothex", "id_masked": "A123456789"})]})
    fields = {e["field"] for e in problem(r, 400, "validation-failed")["errors"]}
    assert fields == {"events[0].subject.id_hmac", "events[0].subject.id_masked"}
    # an object id is what the log is searched by: a short string (a long one failed as a 503)
    long_id = "x" * 6000
    r = intake.post("/internal/events", json={"events": [event(object={"kind": "thing", "id": long_id})]})
    assert [e["field"] for e in problem(r, 400, "validation-failed")["errors"]] == ["events[0].object.id"]
    r = intake.post("/internal/events", json={"events": [event(object={"kind": "thing", "id": 12345})]})
    assert [e["field"] for e in problem(r, 400, "validation-failed")["errors"]] == ["events[0].object.id"]
    # floating-point numbers have no canonical form
    problem(intake.post("/internal/events", json={"events": [event(details={"x": 1.5})]}), 400, "validation-failed")
    problem(intake.post("/internal/events", json={"events": []}), 400, "validation-failed")
    problem(intake.post("/internal/events", json={"events": [event()], "more": 1}), 400, "unknown-field")
    # a token without events:append, and no token
    secret = open(os.path.join(stack["BLIGATE_SECRETS_DIR"], "audit.client-secret")).read().strip()
    other = client(stack["BLIGATE_AUDIT_URL"])
    other.token = client().client_token("audit", secret)
    problem(other.post("/internal/events", json={"events": [event()]}), 403, "forbidden")
    problem(client(stack["BLIGATE_AUDIT_URL"]).post("/internal/events", json={"events": [event()]}), 401,
            "unauthenticated")


def test_inclusion_and_consistency_proofs_verify_independently(client, intake, login):
    c = client()
    before = wait_tree_head(c, 1)
    res = append(intake, [event() for _ in range(13)])
    indices = [r["index"] for r in res["results"]]
    after = wait_tree_head(c, indices[-1] + 1)
    jwks = c.call("GET", "/v1/audit/keys", bearer=False)
    assert auditlib.verify_tree_head(before, jwks) and auditlib.verify_tree_head(after, jwks)
    size, root = after["tree_size"], bytes.fromhex(after["root_hash"])
    lines = {line["index"]: line for line in export(login("ethics1"), tree_size=size)}
    for i in sorted({0, size - 1, *indices}):
        p = c.call("GET", "/v1/audit/proofs/inclusion", bearer=False, params={"index": i, "tree_size": size})
        leaf = auditlib.leaf_hash(auditlib.canonical(lines[i]["event"]))
        assert p["leaf_hash"] == leaf.hex() == lines[i]["leaf_hash"] and p["root_hash"] == after["root_hash"]
        proof = [bytes.fromhex(h) for h in p["audit_path"]]
        assert auditlib.verify_inclusion(i, size, leaf, proof, root)
        if proof:  # a wrong index or a changed path is refused
            assert not auditlib.verify_inclusion(i, size, leaf, proof[:-1], root)
            assert not auditlib.verify_inclusion(i, size, auditlib.leaf_hash(b"other"), proof, root)
    # every older size is consistent with the newer tree head
    for first in sorted({1, 2, before["tree_size"], size - 1, size}):
        p = c.call("GET", "/v1/audit/proofs/consistency", bearer=False, params={"first": first, "second": size})
        proof = [bytes.fromhex(h) for h in p["consistency_path"]]
        assert p["second_root_hash"] == after["root_hash"]
        first_root = bytes.fromhex(p["first_root_hash"])
        if first == before["tree_size"]:
            assert p["first_root_hash"] == before["root_hash"]
        assert first_root == auditlib.root([bytes.fromhex(lines[k]["leaf_hash"]) for k in range(first)])
        assert auditlib.verify_consistency(first, size, first_root, root, proof)
        assert not auditlib.verify_consistency(first, size, first_root, bytes(32), proof)
    # refusals: index beyond the tree, size 0, first > second, first 0, sizes beyond the log
    for params, code in [({"index": size, "tree_size": size}, "proof-range-invalid"),
                         ({"index": 0, "tree_size": 0}, "proof-range-invalid"),
                         ({"index": 0, "tree_size": size + 1000000}, "tree-size-beyond-log"),
                         ({"index": "x", "tree_size": size}, "bad-query-parameter"),
                         ({"tree_size": size}, "bad-query-parameter")]:
        problem(c.get("/v1/audit/proofs/inclusion", bearer=False, params=params), 400, code)
    for params, code in [({"first": 3, "second": 2}, "proof-range-invalid"),
                         ({"first": 0, "second": 2}, "proof-range-invalid"),
                         ({"first": 1, "second": size + 1000000}, "tree-size-beyond-log"),
                         ({"first": 1}, "bad-query-parameter")]:
        problem(c.get("/v1/audit/proofs/consistency", bearer=False, params=params), 400, code)


@pytest.mark.parametrize("who", ["super", "owner", "runtime"])
def test_events_cannot_be_changed_by_anyone(stack, intake, who):
    e = event()
    idx = append(intake, [e])["results"][0]["index"]
    url = {"super": stack["BLIGATE_DB_SUPER_URL"], "owner": role_url(stack, "bligate_audit_owner"),
           "runtime": role_url(stack, "bligate_audit")}[who]
    before = sql(stack, "SELECT count(*), md5(string_agg(canonical, '' ORDER BY idx)) FROM audit.events")
    for stmt in (f"UPDATE audit.events SET type = 'forged' WHERE idx = {idx}",
                 f"DELETE FROM audit.events WHERE idx = {idx}",
                 "TRUNCATE audit.events",
                 f"UPDATE audit.nodes SET hash = hash WHERE level = 1",
                 "TRUNCATE audit.tree_heads"):
        r = psql(url, stmt)
        assert r.returncode != 0, (who, stmt)
        expected = "permission denied" if who == "runtime" else "append-only"
        assert expected in r.stderr, (who, stmt, r.stderr)
    assert sql(stack, "SELECT count(*), md5(string_agg(canonical, '' ORDER BY idx)) FROM audit.events") == before


def test_readers_only_and_every_read_is_on_the_log(login, stack, demo):
    q = login("querier1")
    problem(q.get("/v1/audit/events"), 403, "forbidden")
    problem(q.post("/v1/audit/events/search", json={"national_id": new_national_id()}), 403, "forbidden")
    problem(q.post("/v1/audit/verifications", json={}), 403, "forbidden")
    problem(q.get("/v1/audit/events", bearer=False), 401, "unauthenticated")
    denied = sql(stack, "SELECT canonical FROM audit.events WHERE source = 'audit' AND actor_id = "
                        f"'{demo['querier1']['account_id']}' ORDER BY idx")
    outcomes = [(auditlib.loads(d)["type"], auditlib.loads(d)["outcome"]) for d in denied]
    assert outcomes[-3:] == [("audit.events.read", "denied"), ("audit.events.searched", "denied"),
                             ("audit.verification.run", "denied")]
    for name in READERS:
        c = login(name)
        acct_id = demo[name]["account_id"]
        page = c.call("GET", "/v1/audit/events", params={"limit": 5})
        assert len(page["items"]) == 5 and page["next_cursor"]
        # the read itself is now an event by this reader
        own = c.call("GET", "/v1/audit/events", params={"actor_id": acct_id, "type": "audit.events.read"})
        assert own["items"] and own["items"][-1]["event"]["actor"]["account_id"] == acct_id
        assert own["items"][-1]["event"]["source"] == "audit"
    # a logged-out reader is refused: the session is checked with accounts on every read
    c = login("itstaff1")
    token = c.token
    c.logout()
    c.token = token
    problem(c.get("/v1/audit/events"), 401, "session-ended")


def test_filters_and_pagination(login, intake, stack):
    kind = "test-" + uuid.uuid4().hex[:8]
    oid = uuid.uuid4().hex + "\t\n\\ \u00e9"  # stored as written, whatever the characters
    evs = [event(object={"kind": kind, "id": oid}) for _ in range(7)]
    idx = [r["index"] for r in append(intake, evs)["results"]]
    c = login("permadmin")
    seen, cursor = [], None
    while True:
        params = {"object_kind": kind, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = c.call("GET", "/v1/audit/events", params=params)
        seen += [it["index"] for it in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == idx
    assert [it["index"] for it in c.call("GET", "/v1/audit/events", params={"object_id": oid})["items"]] == idx
    assert c.call("GET", "/v1/audit/events", params={"type": "no.such.type"})["items"] == []
    window = c.call("GET", "/v1/audit/events", params={"object_kind": kind, "from": "2026-01-02T03:04:05Z",
                                                         "to": "2026-01-02T03:04:06Z"})
    assert len(window["items"]) == 7
    assert c.call("GET", "/v1/audit/events", params={"object_kind": kind, "to": "2026-01-02T03:04:05Z"})["items"] == []
    # an ID number typed into a filter by mistake does not reach the log through the read's event
    nid = new_national_id()
    assert c.call("GET", "/v1/audit/events", params={"object_id": nid})["items"] == []
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE canonical LIKE '%{nid}%'") == ["0"]
    problem(c.get("/v1/audit/events", params={"cursor": "bm9wZQ"}), 400, "bad-cursor")
    problem(c.get("/v1/audit/events", params={"from": "yesterday"}), 400, "bad-query-parameter")
    # well-formed times the database cannot hold are refused here, not failed there (a 500)
    problem(c.get("/v1/audit/events", params={"from": "0000-01-01T00:00:00Z"}), 400, "bad-query-parameter")
    problem(c.get("/v1/audit/events", params={"to": "2024-01-01T00:00:00+16:00"}), 400, "bad-query-parameter")
    problem(c.get("/v1/audit/events", params={"from": "2026-01-02T03:04:05." + "1" * 200 + "Z"}), 400,
            "bad-query-parameter")
    # the last index there can be: no page after it (it overflowed into a 500)
    top = base64.urlsafe_b64encode(b"idx:9223372036854775807").decode().rstrip("=")
    problem(c.get("/v1/audit/events", params={"cursor": top}), 400, "bad-cursor")
    problem(c.get("/v1/audit/events", headers={"Accept": "text/csv"}), 406, "not-acceptable")


def test_time_window_is_exact_whatever_order_the_times_arrive_in(login, intake, stack):
    """A time window is turned into a range of indices through each block of 4,096 indices'
    earliest and latest event time (audit.event_blocks, kept by the append in its transaction),
    so that a recent window is not reached by reading the whole log before it. Sources' clocks
    and delays put events on the log out of time order: the bounds must not lose them."""
    kind = "test-" + uuid.uuid4().hex[:8]
    past = [event(object={"kind": kind, "id": "past"}, time="2019-06-01T12:00:00Z") for _ in range(3)]
    future = [event(object={"kind": kind, "id": "future"}, time="2099-06-01T12:00:00Z")]
    now = [event(object={"kind": kind, "id": "now"}, time="2026-01-02T03:04:05Z") for _ in range(2)]
    idx = {name: [r["index"] for r in append(intake, evs)["results"]]
           for name, evs in (("past", past), ("future", future), ("now", now))}
    c = login("permadmin")

    def window(**params):
        return [it["index"] for it in c.call("GET", "/v1/audit/events", params=dict(params, object_kind=kind))["items"]]

    # appended after events of later times, found by a window around their own
    assert window(**{"from": "2019-06-01T00:00:00Z", "to": "2019-06-02T00:00:00Z"}) == idx["past"]
    assert window(to="2019-06-02T00:00:00Z") == idx["past"]
    # appended before events of earlier times, found by a window that starts after those
    assert window(**{"from": "2099-01-01T00:00:00Z"}) == idx["future"]
    assert window(**{"from": "2026-01-02T03:04:05Z", "to": "2026-01-02T03:04:06Z"}) == idx["now"]
    assert window(**{"from": "2019-01-01T00:00:00Z"}) == idx["past"] + idx["future"] + idx["now"]
    # a window no event of the log meets, after all of them and before all of them
    assert c.call("GET", "/v1/audit/events", params={"from": "2100-01-01T00:00:00Z"})["items"] == []
    assert c.call("GET", "/v1/audit/events", params={"to": "1990-01-01T00:00:00Z"})["items"] == []
    # the blocks agree with the log, block by block
    assert sql(stack, "SELECT count(*) FROM (SELECT idx / 4096 AS block, min(time) AS lo, max(time) AS hi"
                      " FROM audit.events GROUP BY 1) l FULL JOIN audit.event_blocks b USING (block)"
                      " WHERE l.lo IS DISTINCT FROM b.min_time OR l.hi IS DISTINCT FROM b.max_time") == ["0"]
    # and cannot be narrowed behind the log's back, which would hide events from the search
    r = psql(stack["BLIGATE_DB_SUPER_URL"], "DELETE FROM audit.event_blocks")
    assert r.returncode != 0 and "append-only" in r.stderr
    r = psql(stack["BLIGATE_DB_SUPER_URL"], "UPDATE audit.event_blocks SET min_time = '2020-01-01'")
    assert r.returncode != 0 and "only ever widened" in r.stderr
    assert window(to="2019-06-02T00:00:00Z") == idx["past"]


def test_a_request_id_holding_an_id_number_is_not_kept(login, stack):
    """A caller's X-Request-Id goes into every log line and event of the request: one holding an
    ID number is replaced (on the log it could never be removed; in an outbox it would stall
    every later event, the audit log refusing the batch)."""
    nid = new_national_id()
    c = login("permadmin")
    r = c.get("/v1/audit/events", params={"limit": 1}, headers={"X-Request-Id": nid})
    assert r.status_code == 200 and r.headers["X-Request-Id"] != nid and nid not in r.headers["X-Request-Id"]
    r = c.get("/v1/accounts", headers={"X-Request-Id": "req-" + nid + "-x"})
    assert r.status_code == 200 and nid not in r.headers["X-Request-Id"]
    # in lower case it is the number all the same: at the gateway, and at a service reached directly
    r = c.get("/v1/accounts", headers={"X-Request-Id": "x-" + nid.lower()})
    assert r.status_code == 200 and nid not in r.headers["X-Request-Id"].upper()
    r = requests.get(stack["BLIGATE_ACCOUNTS_URL"] + "/v1/accounts", headers={"X-Request-Id": "x-" + nid.lower()},
                     timeout=10)
    assert r.status_code == 401 and nid not in r.headers["X-Request-Id"].upper()
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE upper(canonical) LIKE '%{nid}%'") == ["0"]
    for log in ("accounts.log", "audit.log"):
        text = open(os.path.join(stack["BLIGATE_VAR"], "log", log), encoding="utf-8").read().upper()
        assert nid not in text, log
    # an ordinary one is kept, end to end
    r = c.get("/v1/accounts", headers={"X-Request-Id": "case-2026-0042"})
    assert r.headers["X-Request-Id"] == "case-2026-0042"


def test_search_by_national_id_finds_the_subjects_events(login, intake, stack):
    nid, other = new_national_id(), new_national_id()
    masked = nid[:3] + "****" + nid[-3:]
    subj = {"id_hmac": id_hmac(stack, nid), "id_masked": masked}
    about = [event(type="test.subject", subject=subj),
             event(type="test.subjects", subjects=[{"id_hmac": id_hmac(stack, other)}, subj])]
    idx = [r["index"] for r in append(intake, about + [event()])["results"]]
    c = login("ethics1")
    found = c.call("POST", "/v1/audit/events/search", json={"national_id": nid})
    hits = [it for it in found["items"] if it["event"]["type"].startswith("test.")]
    assert [it["index"] for it in hits] == idx[:2]
    # the search itself is on the log, about the same subject (by mask and HMAC only)
    searches = [it for it in found["items"] if it["event"]["type"] == "audit.events.searched"]
    assert searches and searches[-1]["event"]["subject"] == subj
    none = c.call("POST", "/v1/audit/events/search", json={"national_id": new_national_id(), "type": "test.subject"})
    assert none["items"] == []
    problem(c.post("/v1/audit/events/search", json={"national_id": nid[:-1] + str((int(nid[-1]) + 1) % 10)}),
            400, "validation-failed")
    problem(c.post("/v1/audit/events/search", json={"national_id": nid, "extra": 1}), 400, "unknown-field")
    # the number is nowhere: not in the log's table, not in any service's log file
    for n in (nid, other):
        assert sql(stack, f"SELECT count(*) FROM audit.events WHERE canonical LIKE '%{n}%'") == ["0"]
        logs = os.path.join(stack["BLIGATE_VAR"], "log")
        for f in os.listdir(logs):
            if f.endswith(".log") and not f.startswith("postgres"):
                assert n not in open(os.path.join(logs, f), errors="replace").read(), f


def test_export_is_complete_and_checks_against_the_tree_head(login, client, intake):
    append(intake, [event(details={"text": "ünïcödé \"quoted\" \\ back\tslash \u0001"}) for _ in range(3)])
    c = client()
    sth = wait_tree_head(c, 1)
    lines = export(login("director"), tree_size=sth["tree_size"])
    assert [line["index"] for line in lines] == list(range(sth["tree_size"]))
    leaves = []
    for line in lines:
        leaf = auditlib.leaf_hash(auditlib.canonical(line["event"]))
        assert leaf.hex() == line["leaf_hash"]
        leaves.append(leaf)
    assert auditlib.root(leaves).hex() == sth["root_hash"]
    # part of the range, and a filter
    part = export(login("director"), tree_size=sth["tree_size"], from_index=sth["tree_size"] - 2)
    assert [line["index"] for line in part] == [sth["tree_size"] - 2, sth["tree_size"] - 1]
    problem(login("director").get("/v1/audit/events", headers={"Accept": "application/x-ndjson"},
                                  params={"tree_size": sth["tree_size"] + 10 ** 6}), 400, "tree-size-beyond-log")


def run_cli(args):
    binary = os.path.join(os.environ["BLIGATE_BIN_DIR"], "bligate")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))


def test_offline_verifier_accepts_an_honest_export_and_rejects_tampering(login, client, intake, tmp_path):
    append(intake, [event() for _ in range(5)])
    c = client()
    sth = wait_tree_head(c, 6)
    reader = login("permadmin")
    r = reader.get("/v1/audit/events", headers={"Accept": "application/x-ndjson"},
                   params={"tree_size": sth["tree_size"]})
    lines = r.text.splitlines()
    keys = c.call("GET", "/v1/audit/keys", bearer=False)
    (tmp_path / "sth.json").write_text(json.dumps(sth))
    (tmp_path / "keys.json").write_text(json.dumps(keys))

    def verify(export_lines, sth_file="sth.json"):
        (tmp_path / "export.ndjson").write_text("\n".join(export_lines) + "\n")
        return run_cli(["audit", "verify", "--export", str(tmp_path / "export.ndjson"),
                        "--tree-head", str(tmp_path / sth_file), "--keys", str(tmp_path / "keys.json")])

    ok = verify(lines)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert str(sth["tree_size"]) in ok.stdout

    changed = auditlib.loads(lines[3])
    changed["event"]["outcome"] = "tampered"
    swapped = lines[:2] + [lines[3], lines[2]] + lines[4:]
    inserted_ev = auditlib.loads(lines[1])
    inserted_ev["event"]["id"] = str(uuid.uuid4())
    tampered = {
        "changed": lines[:3] + [json.dumps(changed, ensure_ascii=False)] + lines[4:],
        "removed": lines[:4] + lines[5:],
        "reordered": swapped,
        "inserted": lines[:2] + [json.dumps(inserted_ev, ensure_ascii=False)] + lines[2:],
        "truncated": lines[:-1],
    }
    for what, bad in tampered.items():
        res = verify(bad)
        assert res.returncode != 0, what
    # a tree head whose signature does not match (another root), and keys that did not sign it
    forged = dict(sth, root_hash=hashlib.sha256(b"forged").hexdigest())
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    assert verify(lines, "forged.json").returncode != 0
    sig = sth["signature"]
    (tmp_path / "badsig.json").write_text(json.dumps(dict(sth, signature=sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB"))))
    assert verify(lines, "badsig.json").returncode != 0


@pytest.mark.parametrize("field,value", [("timestamp", "2031-12-31T23:59:59Z"), ("key_id", "not-the-signing-key")])
def test_offline_verifier_refuses_a_tree_head_file_stating_another_timestamp_or_key(login, client, intake, tmp_path,
                                                                                    field, value):
    """Review 10: the CLI compared only tree_size and root_hash of the file with the signed payload."""
    append(intake, [event()])
    c = client()
    sth = wait_tree_head(c, 1)
    keys = c.call("GET", "/v1/audit/keys", bearer=False)
    r = login("permadmin").get("/v1/audit/events", headers={"Accept": "application/x-ndjson"},
                               params={"tree_size": sth["tree_size"]})
    (tmp_path / "export.ndjson").write_text(r.text)
    (tmp_path / "keys.json").write_text(json.dumps(keys))

    def verify(head):
        (tmp_path / "sth.json").write_text(json.dumps(head))
        return run_cli(["audit", "verify", "--export", str(tmp_path / "export.ndjson"), "--tree-head",
                        str(tmp_path / "sth.json"), "--keys", str(tmp_path / "keys.json")])

    ok = verify(sth)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert verify({k: v for k, v in sth.items() if k != field}).returncode == 0  # left out: nothing stated
    forged = dict(sth, **{field: value})
    assert not auditlib.verify_tree_head(forged, keys)  # the reference verifier refuses it too
    res = verify(forged)
    assert res.returncode == 1, res.stdout + res.stderr
    assert value in res.stderr and sth[field] in res.stderr, res.stderr
    assert verify(dict(sth, **{field: 1})).returncode == 1  # not a string


def test_reference_verifier_refuses_duplicate_keys_and_non_numbers(client, intake, login):
    """Review 10: json.loads keeps the last of duplicate keys, so an export line stating its
    event's outcome twice hashed to the honest leaf; the tests' loader refuses it, as the CLI does."""
    append(intake, [event(outcome="success")])
    sth = wait_tree_head(client(), 1)
    r = login("permadmin").get("/v1/audit/events", headers={"Accept": "application/x-ndjson"},
                               params={"tree_size": sth["tree_size"], "from_index": sth["tree_size"] - 1})
    line = r.text.splitlines()[-1]
    doc = auditlib.loads(line)
    assert doc["leaf_hash"] == auditlib.leaf_hash(auditlib.canonical(doc["event"])).hex()
    dup = line.replace('"event":{', '"event":{"outcome":"failure",', 1)
    assert dup != line
    assert json.loads(dup) == doc  # what the plain loader makes of it: the honest line
    with pytest.raises(ValueError, match="duplicate key 'outcome'"):
        auditlib.loads(dup)
    for bad in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError):
            auditlib.loads(line.replace('"index":', f'"x":{bad},"index":', 1))


def test_server_verification_recomputes_the_tree(login, intake, client):
    append(intake, [event() for _ in range(3)])
    wait_tree_head(client(), 4)
    res = login("itstaff1").call("POST", "/v1/audit/verifications", json={})
    assert res["verified"] is True and res["first_mismatch"] is None, res
    assert res["events_checked"] == res["tree_size"] and res["tree_heads_checked"] >= 1
    part = login("ethics1").call("POST", "/v1/audit/verifications", json={"tree_size": 2})
    assert part["verified"] is True and part["events_checked"] == 2
    problem(login("ethics1").post("/v1/audit/verifications", json={"tree_size": 10 ** 9}), 400,
            "tree-size-beyond-log")


def _jws_part(jws, i):
    part = jws.split(".")[i]
    return auditlib.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize("column,tampered,restored", [
    ("timestamp", "timestamp - interval '5 years'", "timestamp + interval '5 years'"),
    ("key_id", "key_id || '-x'", "left(key_id, -2)"),
])
def test_served_tree_head_states_the_signed_timestamp_and_key(client, intake, stack, column, tampered, restored):
    """Review 10: the served timestamp and key_id came from tree_heads' columns, which a superuser
    bypassing the append-only trigger can change; they are the signature's own."""
    append(intake, [event()])
    c = client()
    wait_tree_head(c, 1)
    done = -1
    restore_from = [-1]
    try:
        for _ in range(5):  # another service's event may be signed meanwhile: change that head too
            done = int(sql(stack, "SELECT max(tree_size) FROM audit.tree_heads")[0])
            r = psql(stack["BLIGATE_DB_SUPER_URL"], "SET session_replication_role = replica; "
                     f"UPDATE audit.tree_heads SET {column} = {tampered} WHERE tree_size <= {done}"
                     f" AND tree_size > {restore_from[0]}")
            assert r.returncode == 0, r.stderr
            restore_from[0] = done
            served = latest(c)
            if served["tree_size"] <= done:
                break
        assert served["tree_size"] <= done, "no served head among the changed ones"
        shown = ("to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" if column == "timestamp"
                 else column)
        col = sql(stack, f"SELECT {shown} FROM audit.tree_heads WHERE tree_size = {served['tree_size']}")[0]
        assert col != served[column]  # the column was changed ...
        assert served["timestamp"] == _jws_part(served["signature"], 1)["timestamp"]  # ... the head is the signed one
        assert served["key_id"] == _jws_part(served["signature"], 0)["kid"]
    finally:
        if restore_from[0] >= 0:
            r = psql(stack["BLIGATE_DB_SUPER_URL"], "SET session_replication_role = replica; "
                     f"UPDATE audit.tree_heads SET {column} = {restored} WHERE tree_size <= {restore_from[0]}")
            assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("column,tampered,restored", [
    ("timestamp", "timestamp - interval '5 years'", "timestamp + interval '5 years'"),
    ("key_id", "key_id || '-x'", "left(key_id, -2)"),
])
def test_server_verification_checks_a_tree_heads_timestamp_and_key_against_its_signature(
        client, intake, login, stack, column, tampered, restored):
    """Review 10: POST /v1/audit/verifications compared only a head's size and root with its signature."""
    append(intake, [event()])
    size = wait_tree_head(client(), 1)["tree_size"]

    def change(expr):
        r = psql(stack["BLIGATE_DB_SUPER_URL"], "SET session_replication_role = replica; "
                 f"UPDATE audit.tree_heads SET {column} = {expr} WHERE tree_size = {size}")
        assert r.returncode == 0, r.stderr

    c = login("ethics1")
    assert c.call("POST", "/v1/audit/verifications", json={"tree_size": size})["verified"] is True
    change(tampered)
    try:
        res = c.call("POST", "/v1/audit/verifications", json={"tree_size": size})
    finally:
        change(restored)
    assert res["verified"] is False, res
    assert res["first_mismatch"] == {"index": size, "reason": "tree-head-signature"}, res
    assert c.call("POST", "/v1/audit/verifications", json={"tree_size": size})["verified"] is True


def test_accounts_events_arrive_on_the_log(person, client, stack):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    sid = c.login_response["session_id"]
    c.logout()
    ids = sql(stack, f"SELECT event_id FROM accounts.outbox WHERE event->'object'->>'id' = '{sid}'"
                     f" OR event->'object'->>'id' = '{p['id']}' ORDER BY seq")
    assert len(ids) >= 3  # account.created, certificate.registered, auth.login, auth.logout
    deadline = time.monotonic() + 15
    while True:
        got = sql(stack, "SELECT count(*) FROM audit.events WHERE event_id IN (" +
                  ",".join(f"'{i}'" for i in ids) + ")")
        if got == [str(len(ids))]:
            break
        assert time.monotonic() < deadline, f"{got} of {len(ids)} accounts events on the log"
        time.sleep(0.1)
    types = sql(stack, "SELECT type FROM audit.events WHERE event_id IN (" + ",".join(f"'{i}'" for i in ids) +
                ") ORDER BY idx")
    assert {"account.created", "auth.login", "auth.logout"} <= set(types)
    assert sql(stack, "SELECT DISTINCT source FROM audit.events WHERE event_id IN (" +
               ",".join(f"'{i}'" for i in ids) + ")") == ["accounts"]
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE canonical LIKE '%{p['national_id']}%'") == ["0"]


def test_offline_consistency_check_between_two_tree_heads(client, intake, tmp_path):
    c = client()
    old = wait_tree_head(c, 1)
    append(intake, [event() for _ in range(4)])
    new = wait_tree_head(c, old["tree_size"] + 4)
    proof = c.call("GET", "/v1/audit/proofs/consistency", bearer=False,
                   params={"first": old["tree_size"], "second": new["tree_size"]})
    files = {"old": old, "new": new, "proof": proof, "keys": c.call("GET", "/v1/audit/keys", bearer=False)}
    for name, doc in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))

    def check(old_f="old", new_f="new", proof_f="proof"):
        return run_cli(["audit", "verify-consistency", "--old", str(tmp_path / f"{old_f}.json"),
                        "--new", str(tmp_path / f"{new_f}.json"), "--proof", str(tmp_path / f"{proof_f}.json"),
                        "--keys", str(tmp_path / "keys.json")])

    ok = check()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert check("new", "old").returncode != 0  # swapped: first > second
    if proof["consistency_path"]:
        bad = dict(proof, consistency_path=[hashlib.sha256(b"x").hexdigest()] + proof["consistency_path"][1:])
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        assert check(proof_f="bad").returncode != 0
    assert run_cli(["audit", "verify-consistency", "--old", str(tmp_path / "old.json")]).returncode == 2


def test_concurrent_appends_get_distinct_gap_free_indices(intake, stack):
    import concurrent.futures
    # one client per thread: requests sessions are not shared across threads
    token = intake.token

    def send(_):
        import requests
        evs = [event() for _ in range(20)]
        r = requests.post(stack["BLIGATE_AUDIT_URL"] + "/internal/events", json={"events": evs},
                          headers={"Authorization": "Bearer " + token}, timeout=30)
        assert r.status_code == 200, r.text
        return [x["index"] for x in r.json()["results"]]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(send, range(16)))
    got = sorted(i for b in batches for i in b)
    assert len(got) == len(set(got)) == 320
    for b in batches:  # each batch is contiguous: one writer at a time
        assert b == list(range(b[0], b[0] + 20))
    n, lo, hi = sql(stack, "SELECT count(*), min(idx), max(idx) FROM audit.events")[0].split("|")
    assert int(lo) == 0 and int(hi) == int(n) - 1


def test_server_verification_reports_the_first_mismatch(login, intake, client, stack):
    """Tampering that bypasses the trigger (a superuser switching triggers off) is found."""
    idx = append(intake, [event() for _ in range(3)])["results"][1]["index"]
    wait_tree_head(client(), idx + 2)
    orig = sql(stack, f"SELECT canonical, encode(leaf_hash, 'hex') FROM audit.events WHERE idx = {idx}")[0]
    canon, leaf = orig.split("|")
    forged = canon.replace('"outcome":"success"', '"outcome":"failure"')
    forged_leaf = auditlib.leaf_hash(forged.encode()).hex()

    def tamper(text, leaf_hex):
        r = psql(stack["BLIGATE_DB_SUPER_URL"],
                 "SET session_replication_role = replica; "
                 f"UPDATE audit.events SET canonical = $x${text}$x$, leaf_hash = decode('{leaf_hex}', 'hex') "
                 f"WHERE idx = {idx}")
        assert r.returncode == 0, r.stderr

    c = login("ethics1")
    try:
        tamper(forged, leaf)  # the content changed, its stored hash not
        res = c.call("POST", "/v1/audit/verifications", json={})
        assert res["verified"] is False and res["first_mismatch"] == {"index": idx, "reason": "leaf-hash"}, res
        tamper(forged, forged_leaf)  # both changed: the signed roots give it away
        res = c.call("POST", "/v1/audit/verifications", json={})
        assert res["verified"] is False and res["first_mismatch"]["reason"] == "tree-head-root", res
        assert res["first_mismatch"]["index"] > idx
    finally:
        tamper(canon, leaf)
    assert c.call("POST", "/v1/audit/verifications", json={})["verified"] is True


def test_verification_checks_the_search_columns_on_request(login, intake, client, stack):
    """The hashes cover the text, not the columns the searches and oversight select on: an event
    whose subjects or type were changed in the columns alone (a superuser past the triggers) is
    missing from a citizen's subject-access search and still verifies by its hashes; with
    search_columns the verification finds it."""
    nid = new_national_id()
    ev = event(subject={"id_hmac": "ab" * 32, "id_masked": nid[:3] + "****" + nid[-3:]})
    idx = append(intake, [ev, event()])["results"][0]["index"]
    wait_tree_head(client(), idx + 1)

    def set_columns(cols):
        r = psql(stack["BLIGATE_DB_SUPER_URL"],
                 f"SET session_replication_role = replica; UPDATE audit.events SET {cols} WHERE idx = {idx}")
        assert r.returncode == 0, r.stderr

    c = login("ethics1")
    try:
        set_columns("subject_hmacs = '{}', type = 'test.other'")
        assert c.call("POST", "/v1/audit/verifications", json={})["verified"] is True
        res = c.call("POST", "/v1/audit/verifications", json={"search_columns": True})
        assert res["verified"] is False and res["first_mismatch"] == {"index": idx, "reason": "search-columns"}, res
        set_columns(f"subject_hmacs = ARRAY['{'ab' * 32}'], type = 'test.audit', time = time + interval '1 hour'")
        res = c.call("POST", "/v1/audit/verifications", json={"search_columns": True})
        assert res["first_mismatch"] == {"index": idx, "reason": "search-columns"}, res
    finally:
        set_columns(f"subject_hmacs = ARRAY['{'ab' * 32}'], type = 'test.audit',"
                    f" time = '{ev['time']}'::timestamptz")
    assert c.call("POST", "/v1/audit/verifications", json={"search_columns": True})["verified"] is True
