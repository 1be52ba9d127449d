"""Helpers of the BLI proxy tests (issue 6): an approved registration ready to query, the
sandbox's call counter, one service's clock, the proxy's own client token, the audit log's
view of an event."""

import os
import time

import pytest
import requests

import sandboxlib
from conftest import new_national_id, poll
from workflow_helpers import form2, secret, subject


def approved(login, bases, querier="querier1", supervisor="supervisor1", items=("C0101",), nid=None, **kw):
    """A Form 2 registration of `querier` for one new subject, approved by `supervisor`:
    (request, national_id)."""
    nid = nid or new_national_id()
    req = login(querier).call("POST", "/v1/query-requests", status=201,
                              json=form2(bases["PUBLIC-ASSISTANCE"], [subject(list(items), nid)], **kw))
    login(supervisor).call("POST", f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"})
    return req, nid


def calls(stack):
    """How many queries the sandbox has received so far."""
    return sandboxlib.stats(stack)["calls"]


class NoUpstreamCall:
    """with NoUpstreamCall(stack): ... asserts the block made no call to the sandbox."""

    def __init__(self, stack):
        self.stack = stack

    def __enter__(self):
        self.before = calls(self.stack)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            assert calls(self.stack) == self.before, "the proxy called BLI although it should have refused"


def set_clock(stack, service, seconds):
    url = stack[f"BLIGATE_{service.upper()}_URL"] + "/internal/test/clock"
    r = requests.post(url, json={"offset_seconds": int(seconds)}, timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture
def service_clock(stack):
    """service_clock(service, seconds): moves one service's clock only (e.g. accounts, so a
    session goes idle while the proxy still accepts the token); all put back afterwards."""
    moved = set()

    def move(service, seconds):
        moved.add(service)
        set_clock(stack, service, seconds)
    yield move
    for s in moved:
        set_clock(stack, s, 0)


def proxy_token(client, stack):
    return client().client_token("bliproxy", secret(stack, "bliproxy"))


def log_events(login, **params):
    """Events on the audit log matching the filters (read by the Ethics Office)."""
    return list(login("ethics1").items("/v1/audit/events", params=params))


def wait_on_log(login, seconds=20, until=None, **params):
    """Polls (bounded) until events matching the filters, and `until(line)` for one of them if
    given, are on the log: the shippers deliver asynchronously."""
    deadline = time.monotonic() + seconds
    while True:
        got = log_events(login, **params)
        if got and (until is None or any(until(line) for line in got)):
            return got
        assert time.monotonic() < deadline, f"no event {params} on the log"
        time.sleep(0.1)


def bliproxy_env(stack):
    """The running proxy's environment (to start a second one with a setting changed)."""
    with open(os.path.join(stack["BLIGATE_VAR"], "run", "bliproxy.pid")) as f:
        pid = int(f.read().strip())
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read().split(b"\0")
    return dict(kv.decode().split("=", 1) for kv in raw if b"=" in kv)
