"""Helpers of the oversight tests (issue 7): events seeded straight onto the log through the audit
service's intake, each delivered by the client of the service that owns its type (accounts,
workflow, bliproxy) exactly as services/bliproxy/EVENTS.md and the services' code write them;
the bureau's calendar; and the metrics gauges."""

import datetime
import hashlib
import hmac
import os
import re
import uuid

import pytest
import requests

from conftest import new_national_id  # noqa: F401

TPE = datetime.timezone(datetime.timedelta(hours=8))


def secret(stack, name):
    with open(os.path.join(stack["BLIGATE_SECRETS_DIR"], f"{name}.client-secret")) as f:
        return f.read().strip()


def id_hmac(stack, nid):
    with open(os.path.join(stack["PKI"], "id-hmac.key")) as f:
        key = bytes.fromhex(f.read().strip())
    return hmac.new(key, nid.encode(), hashlib.sha256).hexdigest()


def masked(nid):
    return nid[:3] + "****" + nid[-3:]


def utc(local):
    """A naive Asia/Taipei wall-clock datetime → RFC 3339 UTC."""
    return local.replace(tzinfo=TPE).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def taipei_now():
    return datetime.datetime.now(datetime.timezone.utc).astimezone(TPE).replace(tzinfo=None)


class Feeder:
    """Appends events to the log as the service `source` would (its client token, scope
    events:append), returning each event's index."""

    def __init__(self, client, stack, source):
        self.stack, self.source = stack, source
        self.c = client(stack["BLIGATE_AUDIT_URL"])
        self.tokens = client()

    def send(self, *events):
        self.c.token = self.tokens.client_token(self.source, secret(self.stack, self.source))
        out = self.c.call("POST", "/internal/events", json={"events": list(events)})
        assert out["appended"] == len(events), out
        return [r["index"] for r in out["results"]]


@pytest.fixture
def feed(client, stack):
    """feed["bliproxy"].send(ev, ...) → indices."""
    return {s: Feeder(client, stack, s) for s in ("accounts", "workflow", "bliproxy")}


class People:
    """Citizens of a test: national ID, HMAC, mask."""

    def __init__(self, stack):
        self.stack = stack

    def new(self):
        nid = new_national_id()
        return {"nid": nid, "id_hmac": id_hmac(self.stack, nid), "id_masked": masked(nid)}


def _ev(type_, time, kind, oid, actor=None, details=None, subject=None, purpose=None, outcome="success"):
    ev = {"id": str(uuid.uuid4()), "type": type_, "time": time, "outcome": outcome,
          "object": {"kind": kind, "id": oid}, "details": details or {}}
    if actor:
        ev["actor"] = actor
    if subject:
        ev["subject"] = {"id_hmac": subject["id_hmac"], "id_masked": subject["id_masked"]}
    if purpose:
        ev["purpose"] = purpose
    return ev


def purpose(basis, registration_no, article="第5條", case="高市社助字第1號"):
    return {"form": "F2", "registration_no": registration_no,
            "legal_basis": {"id": basis["id"], "code": basis["code"], "law_name": basis["law_name"]},
            "article": article, "case_reference": case}


def submitted(time, request_id, querier, unit, subjects, registration_no):
    return _ev("query_request.submitted", time, "query_request", request_id, actor={"account_id": querier},
               details={"querier_id": querier, "requester_id": querier, "unit_id": unit, "items": ["C0101"],
                        "subject_count": len(subjects), "max_uses": 1, "decider_role": "supervisor",
                        "registration_no": registration_no})


def decided(time, request_id, decision, registration_no, supervisor):
    return _ev("query_request.decided", time, "query_request", request_id, actor={"account_id": supervisor},
               details={"decision": decision, "registration_no": registration_no, "decider_role": "supervisor"})


def consumed(time, request_id, cid, querier, item, subject, why):
    return _ev("query_request.use_consumed", time, "query_request", request_id, actor={"client_id": "bliproxy"},
               subject=subject, purpose=why,
               details={"consumption_id": cid, "querier_id": querier, "item": item, "used": 1, "max_uses": 1})


def released(time, request_id, cid, querier, item, subject):
    return _ev("query_request.use_released", time, "query_request", request_id, actor={"client_id": "bliproxy"},
               subject=subject, details={"consumption_id": cid, "querier_id": querier, "item": item,
                                         "reason": "upstream-failed"})


def executed(time, request_id, cid, querier, unit, item, subject, why, query_id=None):
    return _ev("bli_query.executed", time, "bli_query", query_id or str(uuid.uuid4()),
               actor={"account_id": querier, "session_id": str(uuid.uuid4()), "unit_id": unit},
               subject=subject, purpose=why,
               details={"request_id": request_id, "consumption_id": cid, "item": item, "querier_id": querier,
                        "unit_id": unit, "registration_no": why["registration_no"], "retention_until": "2030-01-01"})


def failed(time, request_id, cid, querier, item, subject, query_id):
    return _ev("bli_query.failed", time, "bli_query", query_id,
               actor={"account_id": querier, "session_id": str(uuid.uuid4())}, subject=subject, outcome="failure",
               details={"request_id": request_id, "consumption_id": cid, "item": item, "querier_id": querier,
                        "code": "upstream-failed", "released": True})


def viewed(time, request_id, query_id, viewer, unit, role, item, subject):
    return _ev("bli_query.viewed", time, "bli_query", query_id,
               actor={"account_id": viewer, "session_id": str(uuid.uuid4()), "unit_id": unit}, subject=subject,
               details={"request_id": request_id, "item": item, "viewer_id": viewer, "viewer_role": role})


def grants_changed(time, account, granted, effective_date, revoked=None, app_type="new"):
    d = {"application_id": str(uuid.uuid4()), "type": app_type, "granted_items": granted,
         "effective_date": effective_date}
    if revoked is not None:
        d["revoked_items"] = revoked
    return _ev("grants.changed", time, "account", account, actor={"account_id": str(uuid.uuid4())}, details=d)


def account_updated(time, account, changes, change_of_duties=None):
    d = {"changes": changes}
    if change_of_duties:
        d["change_of_duties"] = change_of_duties
    return _ev("account.updated", time, "account", account, actor={"account_id": str(uuid.uuid4())}, details=d)


def gauge(stack, name):
    """The value of a gauge on the audit service's /metrics."""
    text = requests.get(stack["BLIGATE_AUDIT_URL"] + "/metrics", timeout=10).text
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    assert m, f"{name} is not on /metrics"
    return int(m.group(1))
