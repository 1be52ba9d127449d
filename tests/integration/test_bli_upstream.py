"""The proxy's upstream client against the sandbox's faults (issue 6): retries on 502/503/504 and
timeouts, then 502/504 with the use given back and the failure on the log; the circuit breaker
opens (503 without a call) and closes after its pause (on the proxy's test clock); mutual TLS
(the sandbox refuses a proxy without the agency certificate); against a stand-in for BLI, no
redirect followed, no answer over the size cap taken, no call beyond the cap on concurrent calls.
The sandbox counts every call."""

import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import threading

import pytest
import requests

import sandboxlib
from bli_helpers import (NoUpstreamCall, approved, bliproxy_env, calls, log_events, poll, proxy_token,  # noqa: F401
                         service_clock, wait_on_log)
from conftest import problem, start_service
from workflow_helpers import bases, sql  # noqa: F401


def query(c, request_id, nid, item="C0101"):
    return c.post("/v1/bli/queries", json={"request_id": request_id, "national_id": nid, "item": item})


@pytest.fixture
def faults(stack):
    """faults(**settings) on the sandbox; all cleared afterwards."""
    def set_(**kw):
        return sandboxlib.faults(stack, **kw)
    yield set_
    sandboxlib.faults(stack, fail_next=0, latency_ms=0, error_rate=0, timeout_rate=0)


def test_a_failed_attempt_is_retried(login, bases, stack, faults):
    req, nid = approved(login, bases)
    q1 = login("querier1")
    faults(fail_next=1, error_status=503)
    before = calls(stack)
    r = query(q1, req["id"], nid)
    assert r.status_code == 201, r.text
    assert calls(stack) == before + 2


def test_failures_give_the_use_back_and_are_recorded(login, bases, stack, faults):
    req, nid = approved(login, bases)
    q1 = login("querier1")
    # BLI errors on every attempt: three attempts (two retries), then 502
    faults(fail_next=3, error_status=502)
    before = calls(stack)
    body = problem(query(q1, req["id"], nid), 502, "upstream-failed")
    assert calls(stack) == before + 3 and "given back" in body["detail"]
    # a 500 is not retried
    faults(fail_next=1, error_status=500)
    before = calls(stack)
    problem(query(q1, req["id"], nid), 502, "upstream-failed")
    assert calls(stack) == before + 1
    # the use came back each time: the one use of the request is still there
    r = query(q1, req["id"], nid)
    assert r.status_code == 201, r.text
    def mine():
        found = [e["event"] for e in log_events(login, type="bli_query.failed")
                 if e["event"]["details"]["request_id"] == req["id"]]
        return found if len(found) >= 2 else None
    mine = poll("both failures on the log", mine)
    assert {e["details"]["code"] for e in mine} == {"upstream-failed"}
    assert all(e["details"]["released"] for e in mine)


def test_timeouts_end_in_504(login, bases, stack, faults):
    req, nid = approved(login, bases)
    q1 = login("querier1")
    # slower than the proxy's per-attempt timeout (BLIGATE_BLI_TIMEOUT_MS=1000 in the test stack)
    faults(latency_ms=2500)
    before = calls(stack)
    problem(query(q1, req["id"], nid), 504, "upstream-timeout")
    assert calls(stack) == before + 3
    faults(latency_ms=0)
    assert query(q1, req["id"], nid).status_code == 201


def test_the_breaker_opens_and_closes(login, bases, stack, faults, service_clock):
    req, nid = approved(login, bases, items=("C0101", "B0101", "B0201"))
    q1 = login("querier1")
    # a success first: the breaker counts failures in a row from here
    assert query(q1, req["id"], nid, item="B0201").status_code == 201
    # five failed attempts in a row open the circuit: three in the first query, two in the second,
    # whose third attempt is not made
    faults(fail_next=3, error_status=503)
    problem(query(q1, req["id"], nid), 502, "upstream-failed")
    faults(fail_next=2, error_status=503)
    before = calls(stack)
    problem(query(q1, req["id"], nid), 503, "upstream-circuit-open")
    assert calls(stack) == before + 2
    metrics = requests.get(stack["BLIGATE_BLIPROXY_URL"] + "/metrics", timeout=10).text
    assert "bligate_upstream_breaker_state 1" in metrics
    # while open: refused without a call, the use given back
    with NoUpstreamCall(stack):
        problem(query(q1, req["id"], nid, item="B0101"), 503, "upstream-circuit-open")
    # after the pause (30 s on the proxy's clock) one trial call goes out; it succeeds and closes it
    service_clock("bliproxy", 31)
    before = calls(stack)
    r = query(q1, req["id"], nid)
    assert r.status_code == 201, r.text
    assert calls(stack) == before + 1
    assert query(q1, req["id"], nid, item="B0101").status_code == 201
    metrics = requests.get(stack["BLIGATE_BLIPROXY_URL"] + "/metrics", timeout=10).text
    assert "bligate_upstream_breaker_state 0" in metrics


def test_bli_limiting_the_agency_opens_the_breaker(login, bases, stack, faults, service_clock):
    """429 is BLI asking the agency to call less: not retried at once, counted against the
    breaker like an outage, so the proxy stops calling for the breaker's pause."""
    req, nid = approved(login, bases, items=("C0101", "B0101"))
    q1 = login("querier1")
    assert query(q1, req["id"], nid, item="B0101").status_code == 201
    faults(fail_next=5, error_status=429)
    for _ in range(5):
        before = calls(stack)
        body = problem(query(q1, req["id"], nid), 502, "upstream-failed")
        assert calls(stack) == before + 1 and "given back" in body["detail"]
    with NoUpstreamCall(stack):
        problem(query(q1, req["id"], nid), 503, "upstream-circuit-open")
    metrics = requests.get(stack["BLIGATE_BLIPROXY_URL"] + "/metrics", timeout=10).text
    assert "bligate_upstream_breaker_state 1" in metrics
    service_clock("bliproxy", 31)
    assert query(q1, req["id"], nid).status_code == 201
    metrics = requests.get(stack["BLIGATE_BLIPROXY_URL"] + "/metrics", timeout=10).text
    assert "bligate_upstream_breaker_state 0" in metrics


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_sandbox_wants_the_agency_certificate(stack):
    env = bliproxy_env(stack)
    url = env["BLIGATE_BLI_URL"] + "/bli/v1/queries"
    assert url.startswith("https://")
    body = {"national_id": "A123456789", "item": "C0101"}
    ca = env["BLIGATE_BLI_CA_FILE"]
    try:  # refused: in the handshake, or with 403 before anything is looked at
        r = requests.post(url, json=body, verify=ca, timeout=10)
        assert r.status_code == 403 and r.json()["code"] == "client-certificate-required"
    except requests.exceptions.SSLError:
        pass
    ok = requests.post(url, json=body, verify=ca, timeout=10,
                       cert=(env["BLIGATE_BLI_CLIENT_CERT_FILE"], env["BLIGATE_BLI_CLIENT_KEY_FILE"]))
    assert ok.status_code == 200 and ok.json()["item"] == "C0101"


@contextlib.contextmanager
def second_proxy(stack, tmp_path, drop=(), **settings):
    """Another bliproxy process, configured like the stack's (less the variables in `drop`, with
    `settings` changed), on a port of its own: yields its base URL and its Popen."""
    env = bliproxy_env(stack)
    for k in drop:
        env.pop(k)
    port = free_port()
    env.update(BLIGATE_LISTEN_PORT=str(port), **settings)
    binary = os.path.join(os.environ.get("BLIGATE_BIN_DIR", ""), "bligate-bliproxy")
    base = f"http://127.0.0.1:{port}"
    p = start_service(binary, env, base, tmp_path / f"bliproxy-{port}.log")
    try:
        yield base, p
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait(timeout=30)


def uses(stack, request_id):
    return sql(stack, f"SELECT used FROM workflow.query_request_uses WHERE request_id = '{request_id}'")


def settle(client, stack):
    """The proxy's sweep of the uses it owes, run at once (POST /internal/results/purge)."""
    pc = client(stack["BLIGATE_BLIPROXY_URL"])
    pc.token = proxy_token(client, stack)
    pc.call("POST", "/internal/results/purge", json={})


def test_a_release_that_did_not_get_through_is_given_back_later(login, bases, stack, faults, client):
    """BLI fails and workflow cannot give the use back at that moment: the use is owed, and the
    sweep gives it back once workflow can — it was lost for good ("not given back yet")."""
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    faults(fail_next=1, error_status=500)
    sql(stack, "REVOKE UPDATE ON workflow.query_request_consumptions FROM bligate_workflow")
    try:
        body = problem(query(q1, req["id"], nid), 502, "upstream-failed")
        assert "not given back yet" in body["detail"]
    finally:
        sql(stack, "GRANT UPDATE ON workflow.query_request_consumptions TO bligate_workflow")
    assert uses(stack, req["id"]) == ["1"]
    assert sql(stack, f"SELECT count(*) FROM bliproxy.releases_owed WHERE request_id = '{req['id']}'") == ["1"]
    settle(client, stack)
    assert uses(stack, req["id"]) == ["0"]
    assert sql(stack, f"SELECT count(*) FROM bliproxy.releases_owed WHERE request_id = '{req['id']}'") == ["0"]
    assert sql(stack, f"SELECT state, released FROM bliproxy.queries WHERE request_id = '{req['id']}'") == ["failed|t"]
    assert query(q1, req["id"], nid).status_code == 201  # the use is there again


def test_the_sweep_does_not_settle_a_use_before_its_query_has_failed(login, bases, stack, faults, client):
    """The sweep may run between a failed release (the use owed) and the failure's record: it
    leaves the use owed until the record says failed, so the record ends up saying the use was
    given back (it said "not released" for good, against the use given back)."""
    from test_workflow_consume import Writer
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    # BLI answers 500 after half a second; the release then cannot get through
    faults(fail_next=1, error_status=500, latency_ms=500)
    sql(stack, "REVOKE UPDATE ON workflow.query_request_consumptions FROM bligate_workflow")
    writer = None
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            pending = ex.submit(query, q1, req["id"], nid)
            poll("the query's record", lambda: sql(stack, "SELECT 1 FROM bliproxy.queries"
                                                          f" WHERE request_id = '{req['id']}'"))
            # the record held: the failure's update waits, with the use owed by then
            writer = Writer(stack, f"SELECT 1 FROM bliproxy.queries WHERE request_id = '{req['id']}' FOR UPDATE")
            poll("the use owed", lambda: sql(stack, "SELECT 1 FROM bliproxy.releases_owed"
                                                    f" WHERE request_id = '{req['id']}'"))
            sql(stack, "GRANT UPDATE ON workflow.query_request_consumptions TO bligate_workflow")
            settle(client, stack)  # the sweep, while the query has not failed yet
            writer.commit()
            problem(pending.result(timeout=30), 502, "upstream-failed")
    finally:
        sql(stack, "GRANT UPDATE ON workflow.query_request_consumptions TO bligate_workflow")
        if writer:
            writer.abort()
    settle(client, stack)
    assert uses(stack, req["id"]) == ["0"]
    assert sql(stack, f"SELECT count(*) FROM bliproxy.releases_owed WHERE request_id = '{req['id']}'") == ["0"]
    assert sql(stack, f"SELECT state, released FROM bliproxy.queries WHERE request_id = '{req['id']}'") == ["failed|t"]


def test_a_use_taken_after_the_proxy_stopped_waiting_is_given_back(login, bases, stack, client):
    """workflow takes the use after the proxy's call to it timed out (the request row was locked
    for longer): the proxy named the use when it asked, owes it, and the sweep gives it back."""
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    hold = subprocess.Popen(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-q", "-c",
                             f"BEGIN; SELECT 1 FROM workflow.query_requests WHERE id = '{req['id']}' FOR UPDATE;"
                             " SELECT pg_sleep(7); COMMIT;"], stdout=subprocess.DEVNULL)
    try:
        poll("the request row locked", lambda: sql(stack, "SELECT count(*) FROM pg_locks l JOIN pg_class c"
                                                          " ON c.oid = l.relation WHERE c.relname = 'query_requests'"
                                                          " AND l.mode = 'RowShareLock' AND l.granted") != ["0"])
        with NoUpstreamCall(stack):
            problem(query(q1, req["id"], nid), 503, "dependency-unavailable")
    finally:
        hold.wait(timeout=30)
    # once the lock went, workflow took the use nobody was waiting for
    poll("the late consume", lambda: uses(stack, req["id"]) == ["1"])
    assert sql(stack, f"SELECT reason FROM bliproxy.releases_owed WHERE request_id = '{req['id']}'") == [
        "consume-unanswered"]
    settle(client, stack)
    assert uses(stack, req["id"]) == ["0"]
    assert query(q1, req["id"], nid).status_code == 201


@pytest.mark.parametrize("settings", [
    {"BLIGATE_BLI_TIMEOUT_MS": "120000", "BLIGATE_BLI_RETRIES": "2"},              # 3 x 2 min
    {"BLIGATE_BLI_TIMEOUT_MS": "80000", "BLIGATE_BLI_RETRIES": "2", "BLIGATE_BLI_BACKOFF_MS": "5000"},  # 4 + 22 s
])
def test_settings_that_outlast_the_interrupted_sweep_are_refused(stack, tmp_path, settings):
    """A query still asking BLI when the sweep counts it as interrupted (pending 5 minutes) would
    have its use given back mid-call and taken again: settings that allow that do not start."""
    env = dict(bliproxy_env(stack), BLIGATE_LISTEN_PORT=str(free_port()), ASAN_OPTIONS="detect_leaks=0", **settings)
    binary = os.path.join(os.environ.get("BLIGATE_BIN_DIR", ""), "bligate-bliproxy")
    r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "BLIGATE_BLI_TIMEOUT_MS" in r.stderr, (r.returncode, r.stderr)


def test_a_proxy_without_its_certificate_is_refused(login, bases, stack, tmp_path):
    """A second proxy, configured like the first but without the agency certificate: the
    sandbox refuses the TLS handshake, the query fails with 502 and its use is given back."""
    with second_proxy(stack, tmp_path, drop=("BLIGATE_BLI_CLIENT_CERT_FILE", "BLIGATE_BLI_CLIENT_KEY_FILE"),
                      BLIGATE_PURGE_INTERVAL_S="86400", BLIGATE_BLI_RETRIES="0") as (base, _):
        req, nid = approved(login, bases)
        q1 = login("querier1")
        before = calls(stack)
        r = requests.post(base + "/v1/bli/queries", json={"request_id": req["id"], "national_id": nid, "item": "C0101"},
                          headers={"Authorization": "Bearer " + q1.token}, timeout=30)
        problem(r, 502, "upstream-failed")
        assert calls(stack) == before  # refused in the handshake, before any request
        # the use came back: the proxy with the certificate runs the query
        assert query(q1, req["id"], nid).status_code == 201


def test_an_interrupted_query_is_finished_and_its_use_given_back(login, bases, stack, faults, tmp_path):
    """A proxy killed while BLI is being asked leaves its record pending, the use taken. A proxy
    whose sweep runs after the record has been pending five minutes (its test clock moved on)
    marks it failed with code interrupted, gives the use back and logs the failure."""
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    records = lambda: q1.items("/v1/bli/queries", params={"request_id": req["id"]})  # noqa: E731
    faults(latency_ms=60000)
    before = calls(stack)
    with second_proxy(stack, tmp_path, BLIGATE_PURGE_INTERVAL_S="86400", BLIGATE_BLI_TIMEOUT_MS="90000",
                      BLIGATE_BLI_RETRIES="0") as (base, p):
        def ask():
            with contextlib.suppress(requests.exceptions.ConnectionError):  # the proxy dies
                requests.post(base + "/v1/bli/queries", json={"request_id": req["id"], "national_id": nid,
                                                              "item": "C0101"},
                              headers={"Authorization": "Bearer " + q1.token}, timeout=90)
        asked = threading.Thread(target=ask, daemon=True)
        asked.start()
        poll("the sandbox to be asked", lambda: calls(stack) == before + 1)
        p.kill()
    asked.join(timeout=30)
    faults(latency_ms=0)
    [rec] = records()
    assert rec["state"] == "pending"
    # the use is still taken: no second query while the first is pending
    problem(query(q1, req["id"], nid), 409, "uses-exhausted")
    with second_proxy(stack, tmp_path, BLIGATE_PURGE_INTERVAL_S="1") as (base, _):
        # the sweep runs now and every second; only records pending five minutes are finished
        r = requests.post(base + "/internal/test/clock", json={"offset_seconds": 400}, timeout=10)
        assert r.status_code == 200, r.text
        done = poll("the sweep to finish the record", lambda: [x for x in records() if x["state"] == "failed"])
    assert done[0]["id"] == rec["id"] and done[0]["error_code"] == "interrupted"
    # its event was appended before BLI was asked; shipped again with the failure, it is on the
    # log once
    assert len(wait_on_log(login, type="bli_query.executed", object_id=rec["id"])) == 1
    [failed] = wait_on_log(login, type="bli_query.failed", object_id=rec["id"],
                           until=lambda e: e["event"]["details"]["code"] == "interrupted"
                           and e["event"]["details"]["released"] is True)
    # the sweep's doing, the querier named in the details (EVENTS.md)
    assert failed["event"]["actor"] == {"client_id": "bliproxy"}
    assert failed["event"]["details"]["querier_id"] == q1.me()["account"]["id"]
    # the use came back: the query runs
    assert query(q1, req["id"], nid).status_code == 201


def test_no_database_connection_is_held_across_the_bli_call(login, bases, stack, faults, tmp_path):
    """A proxy whose pool has two connections, two queries waiting on a slow BLI: a list of the
    querier's records still gets a connection (it used to wait for one and answer 503, the
    queries holding theirs from the record's insert to the result)."""
    reqs = [approved(login, bases) for _ in range(2)]
    q1 = login("querier1")
    with second_proxy(stack, tmp_path, BLIGATE_DB_POOL="2", BLIGATE_BLI_TIMEOUT_MS="8000") as (base, _):
        faults(latency_ms=5000)
        replies = {}

        def post(i):
            req, nid = reqs[i]
            replies[i] = requests.post(base + "/v1/bli/queries", json={"request_id": req["id"], "national_id": nid,
                                                                         "item": "C0101"},
                                       headers={"Authorization": "Bearer " + q1.token}, timeout=60)
        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        ids = ",".join(f"'{r['id']}'" for r, _ in reqs)
        poll("both queries to be with BLI", lambda: sql(
            stack, f"SELECT count(*) FROM bliproxy.queries WHERE request_id IN ({ids}) AND state = 'pending'") == ["2"])
        listed = requests.get(base + "/v1/bli/queries", headers={"Authorization": "Bearer " + q1.token}, timeout=60)
        assert listed.status_code == 200, listed.text
        for t in threads:
            t.join(timeout=60)
        assert [replies[i].status_code for i in range(2)] == [201, 201], [replies[i].text for i in range(2)]


class FakeBli:
    """A plain-HTTP stand-in for BLI on a port of its own, answering as `mode` says: "redirect"
    (302 to a path of its own, which counts if anyone follows), "big" (a well-formed answer of
    4 KiB), "hold" (a well-formed answer once `release` is set), "other" (a well-formed answer
    about another person). Every request is counted."""

    def __init__(self, mode):
        import http.server
        self.mode, self.hits, self.release = mode, [], threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                fake.hits.append(self.path)
                asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["national_id"]
                if fake.mode == "redirect" and self.path != "/elsewhere":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{fake.port}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fake.mode == "hold":
                    fake.release.wait(30)
                record = {"periods": [], "note": "x" * (4096 if fake.mode == "big" else 10)}
                # "other": an answer about someone else (BLI mixing up its replies)
                whom = "Z199****999" if fake.mode == "other" else asked[:3] + "****" + asked[-3:]
                body = json.dumps({"item": "C0101", "national_id_masked": whom, "record": record}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def proxy_to_fake(stack, tmp_path, mode, **settings):
    fake = FakeBli(mode)
    try:
        with second_proxy(stack, tmp_path, drop=("BLIGATE_BLI_CLIENT_CERT_FILE", "BLIGATE_BLI_CLIENT_KEY_FILE",
                                                 "BLIGATE_BLI_CA_FILE"),
                          BLIGATE_BLI_URL=f"http://127.0.0.1:{fake.port}", BLIGATE_PURGE_INTERVAL_S="86400",
                          BLIGATE_BLI_RETRIES="0", **settings) as (base, _):
            yield base, fake
    finally:
        fake.close()


def ask(base, c, request_id, nid):
    return requests.post(base + "/v1/bli/queries", json={"request_id": request_id, "national_id": nid, "item": "C0101"},
                         headers={"Authorization": "Bearer " + c.token}, timeout=60)


def test_a_redirect_is_not_followed(login, bases, stack, tmp_path):
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    with proxy_to_fake(stack, tmp_path, "redirect") as (base, fake):
        body = problem(ask(base, q1, req["id"], nid), 502, "upstream-bad-response")
        assert fake.hits == ["/bli/v1/queries"] and "given back" in body["detail"]
    assert uses(stack, req["id"]) == ["0"]


def test_an_answer_over_the_size_cap_is_refused(login, bases, stack, tmp_path):
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    with proxy_to_fake(stack, tmp_path, "big", BLIGATE_BLI_MAX_RESPONSE="2048") as (base, fake):
        body = problem(ask(base, q1, req["id"], nid), 502, "upstream-bad-response")
        assert len(fake.hits) == 1 and "given back" in body["detail"]
    assert uses(stack, req["id"]) == ["0"]
    # the record says so, and holds nothing of the answer
    assert sql(stack, f"SELECT state, sealed IS NULL FROM bliproxy.queries WHERE request_id = '{req['id']}'") == [
        "failed|t"]


def test_calls_beyond_the_cap_are_refused_without_calling(login, bases, stack, tmp_path):
    first, nid1 = approved(login, bases)
    second, nid2 = approved(login, bases)
    q1 = login("querier1")
    # the held call must not time out meanwhile, however slow the machine
    with proxy_to_fake(stack, tmp_path, "hold", BLIGATE_BLI_MAX_CONCURRENT="1", BLIGATE_BLI_TIMEOUT_MS="30000") as (
            base, fake):
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            held = ex.submit(ask, base, q1, first["id"], nid1)
            poll("the first call to reach BLI", lambda: len(fake.hits) == 1)
            body = problem(ask(base, q1, second["id"], nid2), 503, "upstream-busy")
            assert len(fake.hits) == 1 and "given back" in body["detail"]
            fake.release.set()
            r = held.result(timeout=60)
        assert r.status_code == 201, r.text
        assert r.json()["data"]["note"] == "x" * 10
    assert uses(stack, second["id"]) == ["0"]


def test_an_answer_about_someone_else_is_not_used(login, bases, stack, tmp_path):
    req, nid = approved(login, bases, max_uses=1)
    q1 = login("querier1")
    with proxy_to_fake(stack, tmp_path, "other") as (base, fake):
        body = problem(ask(base, q1, req["id"], nid), 502, "upstream-bad-response")
        assert len(fake.hits) == 1 and "given back" in body["detail"]
    assert uses(stack, req["id"]) == ["0"]
    assert sql(stack, f"SELECT state, sealed IS NULL FROM bliproxy.queries WHERE request_id = '{req['id']}'") == [
        "failed|t"]
