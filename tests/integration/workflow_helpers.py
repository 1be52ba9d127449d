"""Helpers shared by the workflow tests (issue 4): legal bases by code, Form 2 bodies, the
proxy's client token for consume/release, people in any unit (D-FENGSHAN has no demo
account), grants through the Form 1 chain, and the workflow outbox."""

import concurrent.futures
import datetime
import json
import os
import subprocess
import threading
import uuid

import pytest
import requests

from conftest import devpki, new_national_id

ACK = {"pdpa_read": True, "environment_ready": True}
RELEVANCE = "辦理低收入戶資格複查，需查核申請人家庭成員之投保與給付資料"


def today(offset_days=0):
    # the bureau's date (Asia/Taipei)
    return (datetime.datetime.utcnow() + datetime.timedelta(hours=8, days=offset_days)).strftime("%Y-%m-%d")


@pytest.fixture(scope="session")
def units(stack):
    with open(os.path.join(os.path.dirname(stack["BLIGATE_DEMO_ACCOUNTS"]), "units.json"), encoding="utf-8") as f:
        return {code: u["id"] for code, u in json.load(f).items()}


@pytest.fixture
def bases(login):
    c = login("querier1")
    return {lb["code"]: lb for lb in c.items("/v1/legal-bases")}


def subject(items=("C0101",), nid=None, name="王小明"):
    return {"name": name, "national_id": nid or new_national_id(), "items": list(items)}


def form2(basis, subjects, **kw):
    body = {"legal_basis_id": basis["id"], "article": "第5條之1", "relevance": RELEVANCE,
            "case_reference": "高市社助字第" + uuid.uuid4().hex[:8] + "號", "subjects": subjects}
    body.update(kw)
    return body


def querier_unit(stack, account_id):
    """An account's unit now (a made-up one for an unknown account)."""
    found = sql(stack, f"SELECT unit_id FROM accounts.accounts WHERE id = '{account_id}'")
    return found[0] if found else "00000000-0000-4000-8000-000000000000"


def secret(stack, name):
    with open(f"{stack['BLIGATE_SECRETS_DIR']}/{name}.client-secret") as f:
        return f.read().strip()


@pytest.fixture
def proxy(stack, client):
    """The proxy's view of workflow: consume/release with bliproxy's client token (a fresh
    token per call, so a moved clock is followed)."""
    class Proxy:
        def __init__(self):
            self.c = client(stack["BLIGATE_WORKFLOW_URL"])
            self.tokens = client()
            self.stack = stack

        def token(self, name="bliproxy"):
            return self.tokens.client_token(name, secret(stack, name))

        def consume(self, request_id, querier_id, item, subject_id=None, national_id=None, token=None,
                    unit_id=None):
            """unit_id: the querier's unit now (by default looked up as the proxy's accounts
            check would tell it)."""
            body = {"querier_id": querier_id, "querier_unit_id": unit_id or querier_unit(self.stack, querier_id),
                    "item": item}
            if subject_id:
                body["subject_id"] = subject_id
            if national_id:
                body["national_id"] = national_id
            return self.c.post(f"/internal/query-requests/{request_id}/consume", json=body,
                               headers={"Authorization": "Bearer " + (token or self.token())})

        def release(self, request_id, consumption_id, reason=None, token=None):
            body = {"consumption_id": consumption_id}
            if reason:
                body["reason"] = reason
            return self.c.post(f"/internal/query-requests/{request_id}/release", json=body,
                               headers={"Authorization": "Bearer " + (token or self.token())})
    return Proxy()


@pytest.fixture
def person_in(stack, admin, tmp_path, client):
    """person_in(unit_id, roles) → a new account in any unit with a registered certificate, and
    a signed-in client for it: {"id", "name", "unit_id", "cert", "key", "c"}."""
    def make(unit_id, roles=("querier",)):
        name = "wf-" + uuid.uuid4().hex[:8]
        nid = new_national_id()
        acc = admin.call("POST", "/v1/accounts", status=201, json={
            "name": name, "national_id": nid, "unit_id": unit_id, "title": "科員", "roles": list(roles)})
        files = devpki.issue_user(stack["PKI"], name, nid, str(tmp_path / name))
        admin.call("POST", f"/v1/accounts/{acc['id']}/certificates", status=201,
                   json={"certificate": open(files["cert"], encoding="ascii").read()})
        c = client()
        c.login(files["cert"], files["key"])
        return {"id": acc["id"], "name": name, "unit_id": unit_id, "cert": files["cert"], "key": files["key"],
                "c": c}
    return make


def grant(login, admin, who, items, first_decider):
    """Grants items to `who` the way the rules say: a Form 1 application approved by
    `first_decider` (the unit's supervisor, or the Director for a supervisor), the permission
    administrator and the head of the Secretariat."""
    app = who["c"].call("POST", "/v1/permission-applications", status=201, json={
        "type": "new", "items": list(items), "reason": "辦理社會救助業務", "acknowledgements": ACK})
    url = f"/v1/permission-applications/{app['id']}/decisions"
    login(first_decider).call("POST", url, json={"decision": "approve"})
    admin.call("POST", url, json={"decision": "approve"})
    login("permhead").call("POST", url, json={"decision": "approve", "effective_date": today()})


def sql(stack, query):
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c", query], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def events_about(stack, object_id):
    rows = sql(stack, "SELECT event::text FROM workflow.outbox WHERE event->'object'->>'id' = '%s' ORDER BY seq"
               % object_id)
    return [json.loads(r) for r in rows]


def audit_source(stack, event_id, timeout=15.0):
    """The source the audit log recorded the event under, once the shipper has delivered it
    (bounded polling for an asynchronous effect); None if it never arrived."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        rows = sql(stack, "SELECT source FROM audit.events WHERE event_id = '%s'" % event_id)
        if rows or time.monotonic() > deadline:
            return rows[0] if rows else None
        time.sleep(0.1)


def race_consume(proxy, stack, request_id, querier, nid, n, item="C0101"):
    """n callers take a use of (request, nid, item) at the same instant, each on its own
    connection with the proxy's token; every reply is checked against the contract."""
    token = proxy.token()
    unit = querier_unit(stack, querier)
    barrier = threading.Barrier(n)
    url = f"{stack['BLIGATE_WORKFLOW_URL']}/internal/query-requests/{request_id}/consume"

    def take(_):
        with requests.Session() as s:
            barrier.wait()
            return s.post(url, json={"querier_id": querier, "querier_unit_id": unit, "national_id": nid, "item": item},
                          headers={"Authorization": "Bearer " + token}, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        results = list(ex.map(take, range(n)))
    for r in results:
        for check in proxy.c.on_response:
            check(r)
    return results
