"""Stateless services (DESIGN.md §1; issue 8): a second stack with two replicas of every service
behind the gateway (BLIGATE_REPLICAS=2). Concurrent queries of the same uses through both proxy
and workflow replicas: each use is taken exactly once, every executed query has exactly one
event, and the audit log — appended to by both audit replicas — stays gap-free and verifies
against its signed tree head."""

import collections
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

import auditlib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))
from bligate_dev.client import Client  # noqa: E402
from bligate_dev.stackenv import load as load_env  # noqa: E402
from conftest import new_national_id  # noqa: E402
from workflow_helpers import form2, subject  # noqa: E402

SERVICES = ("accounts", "workflow", "bliproxy", "audit")


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    var = str(tmp_path_factory.mktemp("replicas") / "var")
    env = dict(os.environ, BLIGATE_VAR=var, BLIGATE_PORT_BASE="auto", BLIGATE_REPLICAS="2")
    env.pop("BLIGATE_SERVICES", None)
    stack = os.path.join(REPO, "scripts", "stack")
    r = subprocess.run([stack, "start"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield load_env(os.path.join(var, "stack.env"))
    finally:
        subprocess.run([stack, "stop"], env=env, capture_output=True, text=True, timeout=180)


def signed_in(env, name):
    with open(env["BLIGATE_DEMO_ACCOUNTS"], encoding="utf-8") as f:
        a = {x["name"]: x for x in json.load(f)}[name]
    c = Client(env["BLIGATE_GATEWAY_URL"], timeout=30)
    c.login(a["cert"], a["key"])
    return c


def test_two_replicas_take_each_use_once_and_log_without_gaps(replicated):
    env = replicated
    for s in SERVICES:  # every replica is up
        for url in (env[f"BLIGATE_{s.upper()}_URL"], env[f"BLIGATE_{s.upper()}_URL_2"]):
            assert requests.get(url + "/readyz", timeout=5).status_code == 200
    sup, q1 = signed_in(env, "supervisor1"), None
    q1 = signed_in(env, "querier1")
    basis = next(lb for lb in q1.items("/v1/legal-bases") if lb["code"] == "PUBLIC-ASSISTANCE")
    subjects = [subject(["C0101", "B0101", "B0201"], new_national_id()) for _ in range(10)]
    req = q1.call("POST", "/v1/query-requests", status=201, json=form2(basis, subjects, max_uses=2))
    sup.call("POST", f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"})
    uses = [(s["national_id"], item) for s in subjects for item in s["items"]] * 2  # 60 uses
    attempts = uses * 2  # every use asked for twice, at once
    token = q1.token

    def ask(use):
        nid, item = use
        r = requests.post(env["BLIGATE_GATEWAY_URL"] + "/v1/bli/queries",
                          json={"request_id": req["id"], "national_id": nid, "item": item},
                          headers={"Authorization": "Bearer " + token}, timeout=60)
        return r.status_code, (r.json().get("id") if r.status_code == 201 else r.json().get("code"))

    # halfway through, the second replicas of workflow, the proxy and audit are told to stop
    # (SIGTERM, as an orchestrator does): in-flight requests finish, new ones go to the others
    stopped = []

    def stop_second_replicas():
        for s in ("workflow", "bliproxy", "audit"):
            with open(os.path.join(env["BLIGATE_VAR"], "run", f"{s}-2.pid")) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
            stopped.append((s, pid))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ask, a) for a in attempts]
        for i, f in enumerate(futures):
            if i == len(futures) // 3:
                f.result()
                stop_second_replicas()
        results = [f.result() for f in futures]
    counts = collections.Counter(st for st, _ in results)
    assert counts == {201: len(uses), 409: len(uses)}, counts
    assert {code for st, code in results if st == 409} == {"uses-exhausted"}
    query_ids = {qid for st, qid in results if st == 201}
    assert len(query_ids) == len(uses)
    # the stopped replicas finished and exited; both replicas did part of the work
    for s, pid in stopped:
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}"):
            assert time.monotonic() < deadline, f"{s}-2 did not exit"
            time.sleep(0.1)
        log = open(os.path.join(env["BLIGATE_VAR"], "log", f"{s}-2.log")).read()
        assert '"finishing in-flight requests"' in log or "finishing in-flight requests" in log
        assert '"level":"info","msg":"request"' in log, f"{s}-2 served nothing"
    # the log: every executed query once, gap-free indices, the root of the signed tree head
    ethics = signed_in(env, "ethics1")
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(x) for x in ethics.get("/v1/audit/events", headers={"Accept": "application/x-ndjson"})
                 .text.splitlines()]
        executed = [x for x in lines if x["event"]["type"] == "bli_query.executed"
                    and x["event"]["details"]["request_id"] == req["id"]]
        consumed = [x for x in lines if x["event"]["type"] == "query_request.use_consumed"
                    and x["event"]["object"]["id"] == req["id"]]
        if len(executed) >= len(uses) and len(consumed) >= len(uses):
            break
        assert time.monotonic() < deadline, (len(executed), len(consumed))
        time.sleep(0.2)
    assert sorted(x["event"]["object"]["id"] for x in executed) == sorted(query_ids)
    assert len(consumed) == len(uses)
    assert [x["index"] for x in lines] == list(range(len(lines)))
    assert len({x["event"]["id"] for x in lines}) == len(lines)
    head = ethics.call("GET", "/v1/audit/tree-heads/latest", bearer=False)
    while head["tree_size"] < len(lines):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        head = ethics.call("GET", "/v1/audit/tree-heads/latest", bearer=False)
    size = head["tree_size"]
    upto = [json.loads(x) for x in ethics.get("/v1/audit/events", params={"tree_size": size},
                                              headers={"Accept": "application/x-ndjson"}).text.splitlines()]
    assert [x["index"] for x in upto] == list(range(size))
    leaves = [auditlib.leaf_hash(auditlib.canonical(x["event"])) for x in upto]
    assert auditlib.root(leaves).hex() == head["root_hash"]
    assert auditlib.verify_tree_head(head, ethics.call("GET", "/v1/audit/keys", bearer=False))
