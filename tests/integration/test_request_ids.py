"""One request followed across services (issue 8, operations): the X-Request-Id a client sends
(or the gateway's) comes back on the reply, is in the JSON access log of every service the
request touched — gateway, proxy, accounts, workflow, audit — and is on the audit event; the
national ID is in none of those logs."""

import json
import os

from bli_helpers import approved
from conftest import new_request_id, poll
from workflow_helpers import bases  # noqa: F401


def log_lines(stack, name):
    path = os.path.join(stack["BLIGATE_VAR"], "log", f"{name}.log")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def test_a_query_is_traced_across_services_by_its_request_id(stack, login, bases):
    req, nid = approved(login, bases)
    q1 = login("querier1")
    rid = new_request_id()
    r = q1.post("/v1/bli/queries", json={"request_id": req["id"], "national_id": nid, "item": "C0101"},
                headers={"X-Request-Id": rid})
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-Id"] == rid

    def seen_everywhere():
        where = {}
        for name in ("nginx-access", "bliproxy", "accounts", "workflow", "audit"):
            hits = [line for line in log_lines(stack, name) if rid in line]
            if not hits:
                return None
            where[name] = hits
        return where
    where = poll("the request id in every service's log", seen_everywhere)
    for name, hits in where.items():
        for line in hits:
            assert nid not in line, f"{name} logged the national ID"
            json.loads(line)  # JSON logs
    # the audit event of the query names the same request
    ev = poll("the query's event", lambda: [e for e in login("ethics1").items(
        "/v1/audit/events", params={"type": "bli_query.executed"}) if e["event"].get("request_id") == rid])
    assert ev and ev[0]["event"]["details"]["request_id"] == req["id"]
