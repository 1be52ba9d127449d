"""The proxy's consume (POST /internal/query-requests/{id}/consume) in two round trips: an
unlocked read that refuses, then one statement that re-checks the request under a share lock
and takes the use, records the consumption and its event, or does none of it. These tests hold
the consume between its round trips (a writer's open transaction on the request row), race
consumers for the last use, and read the event back from the audit log."""

import concurrent.futures
import os
import subprocess
import time
import uuid

import pytest

from bli_helpers import wait_on_log
from conftest import new_national_id, problem
from workflow_helpers import bases, form2, proxy, race_consume, sql, subject  # noqa: F401


def approved(login, bases, nid, items=("C0101",), max_uses=1):
    q1, sup = login("querier1"), login("supervisor1")
    r = q1.post("/v1/query-requests", json=form2(bases["PUBLIC-ASSISTANCE"], [subject(list(items), nid)],
                                                 max_uses=max_uses))
    assert r.status_code == 201, r.text
    req = r.json()
    d = sup.post(f"/v1/query-requests/{req['id']}/decision", json={"decision": "approve"})
    assert d.status_code == 200, d.text
    return req


def wait_for(what, check, seconds=15.0):
    """Bounded polling for a state another process reaches asynchronously."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Writer:
    """A concurrent writer's open transaction (psql as the database owner): its UPDATE of the
    request row is not yet visible to the consume's unlocked first read, and the row stays
    locked until commit() -- the window between the consume's two round trips, held open."""

    def __init__(self, stack, statement):
        self.app = "wf-consume-test-" + uuid.uuid4().hex[:8]
        self.stack = stack
        self.p = subprocess.Popen(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                  env=dict(os.environ, PGAPPNAME=self.app))
        self.p.stdin.write(f"BEGIN;\n{statement};\n")
        self.p.stdin.flush()
        wait_for("the writer's transaction is open", lambda: self.p.poll() is not None or sql(
            stack, f"SELECT 1 FROM pg_stat_activity WHERE application_name = '{self.app}'"
                   " AND state = 'idle in transaction'"))
        assert self.p.poll() is None, "the writer's statement failed"

    def commit(self):
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=15) == 0

    def abort(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


CHANGES = {
    # a cancel (qr_cancel) commits between the round trips
    "cancelled": ("state = 'cancelled', cancelled_by = '{querier1}', cancelled_at = now(), updated_at = now()", 409,
                  "request-not-approved"),
    # the request names another querier by then
    "querier": ("querier_id = '{querier2}'", 403, "not-request-querier"),
    # its window has closed by then
    "expired": ("valid_from = now() - interval '2 days', valid_until = now() - interval '1 minute'", 409,
                "request-expired"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_request_changed_between_the_round_trips_is_not_consumed(change, login, bases, proxy, demo, stack):
    nid = new_national_id()
    req = approved(login, bases, nid)
    querier = demo["querier1"]["account_id"]
    setting, status, code = CHANGES[change]
    writer = Writer(stack, "UPDATE workflow.query_requests SET "
                    + setting.format(querier1=querier, querier2=demo["querier2"]["account_id"]) + f" WHERE id = '{req['id']}'")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            pending = ex.submit(proxy.consume, req["id"], querier, "C0101", national_id=nid)
            # the first round trip saw the request as it was (approved, this querier) and let the
            # consume through; the second waits on the writer's row lock
            wait_for("the consume waits on the request row", lambda: pending.done() or sql(
                stack, "SELECT 1 FROM pg_stat_activity WHERE usename = 'bligate_workflow'"
                       " AND wait_event_type = 'Lock' AND query LIKE '%query_request_uses%'"))
            assert not pending.done(), pending.result().text
            writer.commit()
            got = pending.result(timeout=30)
    finally:
        writer.abort()
    problem(got, status, code)
    # nothing was written: no use taken, no consumption, no event
    assert sql(stack, f"SELECT used FROM workflow.query_request_uses WHERE request_id = '{req['id']}'") == ["0"]
    assert sql(stack, "SELECT count(*) FROM workflow.query_request_consumptions"
                      f" WHERE request_id = '{req['id']}'") == ["0"]
    assert sql(stack, "SELECT count(*) FROM workflow.outbox WHERE event->>'type' = 'query_request.use_consumed'"
                      f" AND event->'object'->>'id' = '{req['id']}'") == ["0"]


def test_racing_for_the_only_use_one_wins_and_one_event_is_logged(login, bases, proxy, demo, stack):
    nid = new_national_id()
    req = approved(login, bases, nid, max_uses=1)
    querier = demo["querier1"]["account_id"]
    n = 8
    results = race_consume(proxy, stack, req["id"], querier, nid, n)
    assert sorted(r.status_code for r in results) == [200] + [409] * (n - 1), [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"uses-exhausted"}
    won = next(r.json() for r in results if r.status_code == 200)
    assert (won["used"], won["max_uses"], won["remaining"]) == (1, 1, 0)
    assert sql(stack, f"SELECT used, max_uses FROM workflow.query_request_uses WHERE request_id = '{req['id']}'") \
        == ["1|1"]
    assert sql(stack, "SELECT id FROM workflow.query_request_consumptions"
                      f" WHERE request_id = '{req['id']}'") == [won["consumption_id"]]
    # exactly one event reaches the audit log, carrying the use's numbers
    lines = wait_on_log(login, type="query_request.use_consumed", object_id=req["id"])
    assert len(lines) == 1, lines
    d = lines[0]["event"]["details"]
    assert d["consumption_id"] == won["consumption_id"] and (d["used"], d["max_uses"]) == (1, 1)


def test_the_consumed_event_shows_used_and_max_uses(login, bases, proxy, demo, stack):
    nid = new_national_id()
    req = approved(login, bases, nid, items=("C0101", "B0101"), max_uses=3)
    querier = demo["querier1"]["account_id"]
    got = []
    for item in ("B0101", "B0101", "C0101"):
        r = proxy.consume(req["id"], querier, item, national_id=nid)
        assert r.status_code == 200, r.text
        got.append(r.json())
    assert [(g["used"], g["max_uses"], g["remaining"]) for g in got] == [(1, 3, 2), (2, 3, 1), (1, 3, 2)]
    lines = wait_on_log(login, type="query_request.use_consumed", object_id=req["id"],
                        until=lambda line: line["event"]["details"]["consumption_id"] == got[2]["consumption_id"])
    by_id = {line["event"]["details"]["consumption_id"]: line["event"] for line in lines}
    assert set(by_id) == {g["consumption_id"] for g in got}
    for g in got:
        ev = by_id[g["consumption_id"]]
        assert ev["details"]["used"] == g["used"] and ev["details"]["max_uses"] == 3
        assert ev["details"]["item"] == g["item"] and ev["details"]["querier_id"] == querier
        assert ev["subject"]["id_masked"] == g["subject"]["national_id_masked"] and nid not in str(ev)
        assert ev["purpose"]["registration_no"] == req["registration_no"]
    # the outbox wakes its shipper in-process now: no NOTIFY trigger is left on it
    assert sql(stack, "SELECT tgname FROM pg_trigger WHERE tgrelid = 'workflow.outbox'::regclass"
                      " AND NOT tgisinternal") == []
