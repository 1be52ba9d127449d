"""Approval webhooks (issue 8): the permission administrator subscribes a receiver to event
types; matching events of the log arrive as CloudEvents 1.0, signed (Standard Webhooks) — the
signature checked here by an independent implementation, Node's crypto — retried after the
receiver fails (on the audit service's test clock) and not delivered again after success; every
attempt is visible. Refusals: other roles, bad URLs, unknown event types."""

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import poll, problem
from workflow_helpers import ACK

NODE_VERIFY = r"""
const crypto = require('crypto');
const m = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const key = Buffer.from(m.secret.slice('whsec_'.length), 'base64');
const mac = crypto.createHmac('sha256', key).update(`${m.id}.${m.ts}.${m.body}`).digest('base64');
const ok = m.sig.split(' ').some(s => s === 'v1,' + mac);
process.stdout.write(ok ? 'valid' : 'invalid');
"""


def node_verifies(secret, headers, body):
    msg = {"secret": secret, "id": headers["webhook-id"], "ts": headers["webhook-timestamp"],
           "sig": headers["webhook-signature"], "body": body}
    r = subprocess.run(["node", "-e", NODE_VERIFY], input=json.dumps(msg), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout == "valid"


class Receiver:
    """A city system's endpoint: records every request; fails the first `fail` with 500."""

    def __init__(self):
        self.requests, self.fail = [], 0
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with outer.lock:
                    outer.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    failing = outer.fail > 0
                    outer.fail -= failing
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/bligate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, etype):
        with self.lock:
            return [r for r in self.requests if json.loads(r["body"])["type"] == "tw.gov.bligate." + etype]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def audit_clock(stack):
    def move(seconds):
        r = requests.post(stack["BLIGATE_AUDIT_URL"] + "/internal/test/clock", json={"offset_seconds": int(seconds)},
                          timeout=10)
        assert r.status_code == 200, r.text
    yield move
    move(0)


def apply_for(person_client):
    return person_client.call("POST", "/v1/permission-applications", status=201, json={
        "type": "new", "items": ["C0101"], "reason": "辦理社會救助業務", "acknowledgements": ACK})


def signed_in(client, who):
    c = client()
    c.login(who["cert"], who["key"])
    return c


def test_subscribe_deliver_sign_retry_once(admin, person, client, receiver, audit_clock, login):
    hook = admin.call("POST", "/v1/webhooks", status=201, json={
        "url": receiver.url, "event_types": ["permission_application.submitted", "permission_application.decided"],
        "description": "公文系統 approvals"})
    secret = hook.pop("secret")
    assert secret.startswith("whsec_") and hook["status"] == "active"
    assert admin.call("GET", f"/v1/webhooks/{hook['id']}") == hook  # the secret is never shown again
    # the receiver fails the first attempt
    receiver.fail = 1
    p = person()
    app = apply_for(signed_in(client, p))
    first = poll("the first attempt", lambda: receiver.of_type("permission_application.submitted"))
    assert len(first) == 1
    # the failed attempt is on record with its status, and a retry is scheduled
    def delivery():
        items = admin.call("GET", f"/v1/webhooks/{hook['id']}/deliveries")["items"]
        mine = [d for d in items if d["event_type"] == "permission_application.submitted"]
        return mine[0] if mine and mine[0]["attempts"] >= 1 else None
    d = poll("the recorded attempt", delivery)
    assert d["state"] == "pending" and d["attempt_log"][0]["status_code"] == 500 and d["next_attempt_at"]
    # 30 s later (the audit service's clock) it is tried again and acknowledged
    audit_clock(31)
    both = poll("the retry", lambda: (lambda x: x if len(x) >= 2 else None)(
        receiver.of_type("permission_application.submitted")))
    done = poll("the delivery recorded", lambda: (lambda d: d if d["state"] == "delivered" else None)(delivery()))
    assert done["attempts"] == 2 and done["delivered_at"] and done["next_attempt_at"] is None
    assert [a["status_code"] for a in done["attempt_log"]] == [500, 204]
    # the same message both times: a receiver de-duplicates by webhook-id
    assert both[0]["headers"]["webhook-id"] == both[1]["headers"]["webhook-id"]
    req = both[1]
    assert req["headers"]["content-type"] == "application/cloudevents+json"
    ce = json.loads(req["body"])
    assert ce["specversion"] == "1.0" and ce["type"] == "tw.gov.bligate.permission_application.submitted"
    assert ce["id"] == req["headers"]["webhook-id"] and ce["subject"] == f"permission_application/{app['id']}"
    assert ce["data"]["object"]["id"] == app["id"] and ce["data"]["actor"]["account_id"] == p["id"]
    assert isinstance(ce["bligateindex"], int) and ce["source"] == "/bligate/accounts"
    assert p["national_id"] not in req["body"]
    # the signature verifies with Node's crypto, and not with another secret or a changed body
    assert node_verifies(secret, req["headers"], req["body"])
    assert not node_verifies("whsec_" + "A" * 44, req["headers"], req["body"])
    assert not node_verifies(secret, req["headers"], req["body"].replace(app["id"], app["id"][::-1]))
    assert abs(int(req["headers"]["webhook-timestamp"]) - (time.time() + 31)) < 120
    # a later event arrives; the delivered one is not sent again
    login("supervisor1").call("POST", f"/v1/permission-applications/{app['id']}/decisions",
                              json={"decision": "approve"})
    poll("the decision", lambda: receiver.of_type("permission_application.decided"))
    assert len(receiver.of_type("permission_application.submitted")) == 2
    # events of other types are not sent
    with receiver.lock:
        assert all(json.loads(r["body"])["type"].startswith("tw.gov.bligate.permission_application.")
                   for r in receiver.requests)
    # disabled: nothing more
    r = admin.delete(f"/v1/webhooks/{hook['id']}")
    assert r.status_code == 204
    assert admin.call("GET", f"/v1/webhooks/{hook['id']}")["status"] == "disabled"
    assert admin.delete(f"/v1/webhooks/{hook['id']}").status_code == 204


def test_an_event_of_another_service_s_type_is_not_passed_on(admin, person, client, receiver, stack):
    """Any client that may append events (the proxy, say) can put one shaped like an approval on
    the log; a webhook sends the city's systems only those the owning service wrote, signed."""
    import uuid
    hook = admin.call("POST", "/v1/webhooks", status=201, json={
        "url": receiver.url, "event_types": ["permission_application.submitted"]})
    secret = open(os.path.join(stack["BLIGATE_SECRETS_DIR"], "bliproxy.client-secret")).read().strip()
    intake = client(stack["BLIGATE_AUDIT_URL"])
    intake.token = client().client_token("bliproxy", secret)
    forged = str(uuid.uuid4())
    intake.call("POST", "/internal/events", json={"events": [{
        "id": str(uuid.uuid4()), "type": "permission_application.submitted", "time": "2026-01-02T03:04:05Z",
        "outcome": "success", "object": {"kind": "permission_application", "id": forged}, "details": {}}]})
    # a real one, after it on the log: once it is delivered, the forged one was passed over
    p = person()
    app = apply_for(signed_in(client, p))
    got = poll("the real event", lambda: receiver.of_type("permission_application.submitted"))
    assert [json.loads(r["body"])["data"]["object"]["id"] for r in got] == [app["id"]]
    admin.delete(f"/v1/webhooks/{hook['id']}")


def test_webhook_refusals(admin, login, client):
    body = {"url": "https://approvals.example.gov.tw/hooks", "event_types": ["query_request.submitted"]}
    for name in ("querier1", "supervisor1", "ethics1"):
        problem(login(name).post("/v1/webhooks", json=body), 403, "forbidden")
        problem(login(name).get("/v1/webhooks"), 403, "forbidden")
    problem(client().post("/v1/webhooks", json=body), 401, "unauthenticated")
    for bad in ("ftp://x.example/hooks", "https://user:pw@x.example/hooks", "https://x.example/a b"):
        problem(admin.post("/v1/webhooks", json=dict(body, url=bad)), 400, "validation-failed")
    problem(admin.post("/v1/webhooks", json=dict(body, event_types=["bli_query.executed"])), 400, "validation-failed")
    problem(admin.post("/v1/webhooks", json=dict(body, event_types=[])), 400, "validation-failed")
    problem(admin.post("/v1/webhooks", json=dict(body, secret="mine")), 400, "unknown-field")
    problem(admin.get("/v1/webhooks/00000000-0000-4000-8000-000000000000"), 404, "not-found")
    problem(admin.get("/v1/webhooks/00000000-0000-4000-8000-000000000000/deliveries"), 404, "not-found")
    # a subscription is on the log
    hook = admin.call("POST", "/v1/webhooks", status=201, json=body)
    listed = admin.call("GET", "/v1/webhooks")["items"]
    assert hook["id"] in {h["id"] for h in listed} and all("secret" not in h for h in listed)
    ev = poll("the subscription's event", lambda: list(login("ethics1").items(
        "/v1/audit/events", params={"type": "webhook.created", "object_id": hook["id"]})))
    assert ev[0]["event"]["details"]["url"] == body["url"] and "secret" not in json.dumps(ev[0])
