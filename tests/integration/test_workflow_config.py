"""The workflow service's configuration (issue 4): a bad setting stops it naming the variable;
the usable window of approved requests is configurable (BLIGATE_REQUEST_WINDOW_DAYS), shown
with a second replica of the service on the same database; the runtime role cannot delete or
rewrite what the rules need kept."""

import datetime
import json
import os
import socket
import subprocess
import time

import pytest
import requests

from conftest import new_request_id, problem, start_service
from workflow_helpers import bases, form2, subject  # noqa: F401


def binary():
    return os.path.join(os.environ["BLIGATE_BIN_DIR"], "bligate-workflow")


def full_env(stack, port):
    pg = stack["BLIGATE_PG_PORT"]
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASAN_OPTIONS": "detect_leaks=0",
            "BLIGATE_LISTEN_PORT": str(port), "BLIGATE_LISTEN_ADDR": "127.0.0.1",
            "BLIGATE_DB_URL": f"host=127.0.0.1 port={pg} dbname=bligate user=bligate_workflow",
            "BLIGATE_ACCOUNTS_URL": stack["BLIGATE_ACCOUNTS_URL"], "BLIGATE_AUDIT_URL": stack["BLIGATE_AUDIT_URL"],
            "BLIGATE_CLIENT_ID": "workflow",
            "BLIGATE_CLIENT_SECRET_FILE": os.path.join(stack["BLIGATE_SECRETS_DIR"], "workflow.client-secret"),
            "BLIGATE_ID_HMAC_KEY_FILE": os.path.join(stack["PKI"], "id-hmac.key")}


@pytest.mark.parametrize("name,value", [
    ("BLIGATE_REQUEST_WINDOW_DAYS", "31"),
    ("BLIGATE_REQUEST_WINDOW_DAYS", "0"),
    ("BLIGATE_REQUEST_WINDOW_DAYS", "a week"),
    ("BLIGATE_ACCOUNTS_URL", None),
    ("BLIGATE_ID_HMAC_KEY_FILE", None),
    ("BLIGATE_ID_HMAC_KEY_FILE", "/nonexistent/id-hmac.key"),
    ("BLIGATE_SUBJECT_KEY_FILE", "/nonexistent/subject.key"),
    ("BLIGATE_CLIENT_SECRET_FILE", None),
])
def test_bad_configuration_exits_naming_the_variable(stack, name, value):
    env = full_env(stack, 1)
    if value is None:
        env.pop(name, None)
    else:
        env[name] = value
    r = subprocess.run([binary()], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert name in r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_window_is_configurable(stack, login, bases, client):
    port = free_port()
    env = dict(full_env(stack, port), BLIGATE_REQUEST_WINDOW_DAYS="3")
    base = f"http://127.0.0.1:{port}"
    proc = start_service(binary(), env, base)
    try:
        q1, sup = login("querier1"), login("supervisor1")
        req = q1.call("POST", "/v1/query-requests", status=201, json=form2(bases["PUBLIC-ASSISTANCE"], [subject()]))
        replica = client(base)
        replica.token = sup.token
        got = replica.call("POST", f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"})
        span = (datetime.datetime.strptime(got["valid_until"], "%Y-%m-%dT%H:%M:%SZ")
                - datetime.datetime.strptime(got["valid_from"], "%Y-%m-%dT%H:%M:%SZ"))
        assert span == datetime.timedelta(days=3)
        # the replica shares the database: the gateway's instance sees the decision
        assert q1.call("GET", f"/v1/query-requests/{req['id']}")["state"] == "approved"
        problem(replica.post(f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"}), 409,
                "request-not-pending")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_runtime_role_keeps_what_the_rules_need(stack):
    rt = f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user=bligate_workflow"
    for stmt, why in (("DROP TABLE workflow.outbox", "must be owner"),
                      ("DELETE FROM workflow.query_requests", "permission denied"),
                      ("DELETE FROM workflow.query_request_consumptions", "permission denied"),
                      ("DELETE FROM workflow.outbox", "permission denied"),
                      ("UPDATE workflow.legal_bases SET items = '{C0101}'", "permission denied"),
                      ("UPDATE workflow.query_request_subjects SET name = 'x'", "permission denied"),
                      ("SELECT count(*) FROM accounts.accounts", "permission denied")):
        r = subprocess.run(["psql", rt, "-X", "-At", "-c", stmt], capture_output=True, text=True)
        assert r.returncode != 0 and why in r.stderr, (stmt, r.stderr)
    # the database itself refuses a decision by the querier or the requester
    r = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c",
                        "UPDATE workflow.query_requests SET decided_by = querier_id WHERE false;"
                        " SELECT conname FROM pg_constraint WHERE conrelid = 'workflow.query_requests'::regclass"
                        " AND pg_get_constraintdef(oid) LIKE '%decided_by <> querier_id%'"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr


def global_ipv4():
    """This machine's first global IPv4 address (not loopback), or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


@pytest.mark.parametrize("trusted,believed", [("{net}", True), ("{ip}/32, 10.0.0.0/8", True),
                                              ("10.0.0.0/8", False), ("", False)])
def test_forwarded_for_is_believed_only_from_a_trusted_range(stack, tmp_path, trusted, believed):
    """A replica listening on a non-loopback address, reached from that address: the client
    named in X-Forwarded-For is what it records (its access log; audit events and the login
    throttle use the same address) only when the peer is in BLIGATE_TRUSTED_PROXIES."""
    ip = global_ipv4()
    if not ip:
        pytest.skip("no global IPv4 address on this machine")
    net = ".".join(ip.split(".")[:3]) + ".0/24"
    with socket.socket() as s:
        s.bind((ip, 0))
        port = s.getsockname()[1]
    env = dict(full_env(stack, port), BLIGATE_LISTEN_ADDR=ip, BLIGATE_LOG_LEVEL="info",
               BLIGATE_TRUSTED_PROXIES=trusted.format(net=net, ip=ip))
    log = tmp_path / "workflow.log"
    base = f"http://{ip}:{port}"
    proc = start_service(binary(), env, base, log)
    try:
        rid = new_request_id("xff")
        r = requests.get(base + "/v1/legal-bases", timeout=5,
                         headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": rid})
        assert r.status_code == 401
        deadline = time.monotonic() + 10
        while rid not in log.read_text():
            assert time.monotonic() < deadline, "no access log line for the request"
            time.sleep(0.05)
        line = next(json.loads(x) for x in log.read_text().splitlines() if rid in x and '"request"' in x)
        assert line["client"] == ("203.0.113.9" if believed else ip), line
    finally:
        proc.terminate()
        proc.wait(timeout=30)
