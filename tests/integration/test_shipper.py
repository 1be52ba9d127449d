"""The outbox shipper (issue 5): accounts' events reach the audit log without loss while the
audit service is down and restarted, and when accounts itself restarts in between; re-sent
events are acknowledged, not appended twice; the backlog is a metric; order is kept."""

import os
import pathlib
import re
import subprocess

import pytest
import requests

from bligate_dev.contract import Contract
from conftest import poll

REPO = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = Contract(str(REPO / "openapi" / "build" / "internal.yaml"))


def sql(stack, query):
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def stack_cmd(stack, *args):
    env = dict(os.environ, BLIGATE_VAR=stack["BLIGATE_VAR"])
    r = subprocess.run([str(REPO / "scripts" / "stack"), *args], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def backlog(client, stack, contract=None):
    # /metrics is in the internal contract; the client fixture checks against the public one
    r = requests.get(stack["BLIGATE_ACCOUNTS_URL"] + "/metrics", timeout=10)
    CONTRACT.validate("GET", "/metrics", r.status_code, r.headers, r.content)
    text = r.text
    m = re.search(r'^bligate_outbox_backlog\{service="accounts"\} (-?\d+)$', text, re.M)
    assert m, text
    return int(m.group(1))


def outbox_since(stack, seq):
    return [tuple(r.split("|")) for r in sql(stack, f"SELECT seq, event_id, shipped_at IS NOT NULL FROM accounts.outbox"
                                                    f" WHERE seq > {seq} ORDER BY seq")]


def last_seq(stack):
    return int(sql(stack, "SELECT coalesce(max(seq), 0) FROM accounts.outbox")[0])


def on_log(stack, ids):
    """event_id → (count on the log, smallest index)"""
    if not ids:
        return {}
    rows = sql(stack, "SELECT event_id, count(*), min(idx) FROM audit.events WHERE event_id IN (" +
               ",".join(f"'{i}'" for i in ids) + ") GROUP BY event_id")
    return {r.split("|")[0]: (int(r.split("|")[1]), int(r.split("|")[2])) for r in rows}


def all_delivered_once(stack, ids):
    got = on_log(stack, ids)
    return len(got) == len(ids) and all(n == 1 for n, _ in got.values())


def make_activity(person, admin, client):
    """Logins, logouts and account changes: each writes accounts outbox rows."""
    for _ in range(3):
        p = person()
        c = client()
        c.login(p["cert"], p["key"])
        c.logout()
        admin.call("PATCH", f"/v1/accounts/{p['id']}", json={"title": "組長"})


def test_nothing_is_lost_while_audit_is_down(stack, client, person, admin):
    start = last_seq(stack)
    stack_cmd(stack, "stop-service", "audit")
    try:
        make_activity(person, admin, client)  # accounts keeps working without audit
        rows = outbox_since(stack, start)
        assert len(rows) >= 12 and not any(shipped == "t" for _, _, shipped in rows)
        poll("the backlog metric to show the waiting events", lambda: backlog(client, stack) >= len(rows))
        assert on_log(stack, [i for _, i, _ in rows]) == {}
    finally:
        stack_cmd(stack, "start-service", "audit")
    ids = [i for _, i, _ in rows]
    poll("every event on the log exactly once", lambda: all_delivered_once(stack, ids))
    poll("the backlog to drain", lambda: backlog(client, stack) == 0)
    # in the order accounts wrote them
    got = on_log(stack, ids)
    assert [got[i][1] for i in ids] == sorted(got[i][1] for i in ids)
    assert all(s == "t" for _, _, s in outbox_since(stack, start)[:len(rows)])


def test_nothing_is_lost_across_a_restart_of_accounts_either(stack, client, person, admin):
    start = last_seq(stack)
    stack_cmd(stack, "stop-service", "audit")
    try:
        make_activity(person, admin, client)
        rows = outbox_since(stack, start)
        # accounts goes down with its backlog unshipped, and comes back before audit does
        stack_cmd(stack, "restart-service", "accounts")
        assert not any(s == "t" for _, _, s in outbox_since(stack, start)[:len(rows)])
    finally:
        stack_cmd(stack, "start-service", "audit")
    ids = [i for _, i, _ in rows]
    poll("every event on the log exactly once", lambda: all_delivered_once(stack, ids))


def test_resent_events_are_appended_once(stack, client, person, admin):
    make_activity(person, admin, client)
    poll("the backlog to drain", lambda: backlog(client, stack) == 0)
    rows = outbox_since(stack, last_seq(stack) - 8)
    ids = [i for _, i, _ in rows]
    before = on_log(stack, ids)
    assert all(n == 1 for n, _ in before.values()) and len(before) == len(ids)
    # as after a crash between audit's acknowledgement and the outbox update: sent again
    sql(stack, "UPDATE accounts.outbox SET shipped_at = NULL WHERE event_id IN (" +
        ",".join(f"'{i}'" for i in ids) + ")")
    poll("the re-sent rows to be acknowledged",
         lambda: sql(stack, "SELECT count(*) FROM accounts.outbox WHERE shipped_at IS NULL AND event_id IN (" +
                     ",".join(f"'{i}'" for i in ids) + ")") == ["0"])
    assert on_log(stack, ids) == before  # same indices, one copy each


def flush(stack, timeout_ms):
    """Runs the synchronous path (tests/tools/test_shipper_flush.c) with the accounts identity."""
    var = stack["BLIGATE_VAR"]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",
               BLIGATE_DB_URL=f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user=bligate_accounts",
               BLIGATE_AUDIT_URL=stack["BLIGATE_AUDIT_URL"], BLIGATE_ACCOUNTS_URL=stack["BLIGATE_ACCOUNTS_URL"],
               BLIGATE_CLIENT_ID="accounts", BLIGATE_CLIENT_SECRET_FILE=f"{var}/secrets/accounts.client-secret")
    r = subprocess.run([os.path.join(os.environ["BLIGATE_BIN_DIR"], "bligate-test-shipper-flush"), str(timeout_ms)],
                       env=env, capture_output=True, text=True, timeout=timeout_ms / 1000 + 60)
    assert r.returncode in (0, 1), r.stderr
    import json
    return r.returncode, json.loads(r.stdout.splitlines()[-1])  # after the shipper's own log lines


def test_flush_waits_until_the_event_is_on_the_log(stack):
    rc, out = flush(stack, 10000)
    assert rc == 0 and out["flushed"] is True, out
    # when it returns, the event is on the log already (no waiting here)
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE event_id = '{out['event_id']}'") == ["1"]


def test_flush_fails_closed_while_audit_is_down(stack):
    stack_cmd(stack, "stop-service", "audit")
    try:
        rc, out = flush(stack, 1500)
        assert rc == 1 and out["flushed"] is False and out["ms"] >= 1500, out
        assert sql(stack, f"SELECT shipped_at IS NULL FROM accounts.outbox WHERE event_id = '{out['event_id']}'") == ["t"]
    finally:
        stack_cmd(stack, "start-service", "audit")
    # not lost: the accounts service's own shipper delivers it once audit is back
    poll("the event to arrive", lambda: all_delivered_once(stack, [out["event_id"]]))


def forged(kind, **extra):
    import datetime
    import uuid
    ev = {"id": str(uuid.uuid4()), "type": f"accounts.shipper_test_{kind}",
          "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "outcome": "success", "details": {}}
    ev.update(extra)
    return ev


def derived_refusal_id(schema, seq, event_id):
    """The id the shipper gives the outbox.event_refused event of a row (shared/src/shipper.c)."""
    import hashlib
    import uuid
    b = bytearray(hashlib.sha256(f"bligate outbox refusal {schema} {seq} {event_id}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def test_a_refused_refusal_holds_the_outbox_until_someone_looks(stack, client):
    """Audit refuses the refusal too (its id is on the log with other content, which only a
    forgery could have put there): the row is not marked shipped, nothing behind it overtakes
    it, and the shipper keeps trying, backing off — until an operator deals with the row."""
    import json
    secret = open(os.path.join(stack["BLIGATE_SECRETS_DIR"], "accounts.client-secret")).read().strip()
    intake = client(stack["BLIGATE_AUDIT_URL"])
    intake.token = client().client_token("accounts", secret)
    bad, behind = forged("malformed", bogus=1), forged("behind")
    seq, seq2 = (int(x) for x in sql(stack, "SELECT nextval('accounts.outbox_seq_seq') FROM generate_series(1, 2)"))
    squatter = forged("squatter", id=derived_refusal_id("accounts", seq, bad["id"]))
    intake.call("POST", "/internal/events", json={"events": [squatter]})
    failures = metric(stack, "bligate_outbox_failures_total")
    sql(stack, "INSERT INTO accounts.outbox (seq, event_id, event) VALUES"
               f" ({seq}, '{bad['id']}', $j${json.dumps(bad)}$j$::jsonb),"
               f" ({seq2}, '{behind['id']}', $j${json.dumps(behind)}$j$::jsonb)")
    try:
        # tried, refused, its refusal refused — and tried again after a pause
        poll("two rounds of the refused row (or its marking as shipped)", lambda: metric(
            stack, "bligate_outbox_failures_total") >= failures + 2 or
            sql(stack, f"SELECT shipped_at IS NOT NULL FROM accounts.outbox WHERE seq = {seq}") == ["t"],
            seconds=60)
        rows = {r[0]: r for r in outbox_since(stack, seq - 1)}
        assert (rows[str(seq)], rows[str(seq2)]) == ((str(seq), bad["id"], "f"), (str(seq2), behind["id"], "f"))
        assert on_log(stack, [bad["id"], behind["id"]]) == {}
        assert sql(stack, f"SELECT type FROM audit.events WHERE event_id = '{squatter['id']}'") == [squatter["type"]]
    finally:
        # the operator's decision (here: the row goes); the rest then flows again
        sql(stack, f"DELETE FROM accounts.outbox WHERE seq = {seq}")
    poll("the event behind it on the log", lambda: len(on_log(stack, [behind["id"]])) == 1, seconds=60)


def metric(stack, name):
    r = requests.get(stack["BLIGATE_ACCOUNTS_URL"] + "/metrics", timeout=10)
    m = re.search(rf'^{name}\{{service="accounts"\}} (\d+)$', r.text, re.M)
    assert m, r.text
    return int(m.group(1))


def test_an_event_audit_refuses_for_good_is_recorded_and_does_not_hold_up_the_rest(stack):
    import json
    from bligate_dev.ids import make_national_id
    nid = make_national_id("A", "1", "2345678")
    good1, good2 = forged("before"), forged("after")
    malformed = forged("malformed", bogus=1)          # 400 validation-failed
    with_id = forged("with_id", details={"note": nid})  # 422 national-id-in-event
    refused_before = metric(stack, "bligate_outbox_refused_total")
    # one transaction, so one batch: the refusal of two of its events must not stop the other two
    values = ",".join(f"('{e['id']}', $j${json.dumps(e)}$j$::jsonb)" for e in (good1, malformed, with_id, good2))
    sql(stack, f"INSERT INTO accounts.outbox (event_id, event) VALUES {values}")
    poll("the events after the refused ones to reach the log", lambda: len(on_log(stack, [good1["id"], good2["id"]])) == 2,
         seconds=60)
    assert on_log(stack, [malformed["id"], with_id["id"]]) == {}

    rows = {r.split("|")[0]: r.split("|")[1:] for r in sql(
        stack, "SELECT event_id, seq, shipped_at IS NOT NULL, coalesce(refusal, ''), encode(sha256(convert_to(event::text,"
               " 'UTF8')), 'hex') FROM accounts.outbox WHERE event_id IN "
               f"('{good1['id']}', '{malformed['id']}', '{with_id['id']}', '{good2['id']}')")}
    assert rows[good1["id"]][1:3] == ["t", ""] and rows[good2["id"]][1:3] == ["t", ""]
    assert rows[malformed["id"]][1:3] == ["t", "validation-failed"]
    assert rows[with_id["id"]][1:3] == ["t", "national-id-in-event"]

    # each refusal is on the log in the refused event's place, naming it and what audit said
    logged = sql(stack, "SELECT idx, object_id, source, canonical FROM audit.events WHERE type = 'outbox.event_refused'"
                        f" AND object_id IN ('{malformed['id']}', '{with_id['id']}') ORDER BY idx")
    assert len(logged) == 2, logged
    order = on_log(stack, [good1["id"], good2["id"]])
    for line, ev, status in zip(logged, (malformed, with_id), (400, 422)):
        idx, obj, source, canonical = line.split("|", 3)
        assert obj == ev["id"] and source == "accounts"
        assert order[good1["id"]][1] < int(idx) < order[good2["id"]][1]  # the outbox's order kept
        assert nid not in canonical  # nothing of the refused content goes out
        d = json.loads(canonical)["details"]
        seq, _, code, digest = rows[ev["id"]]
        assert d == {"outbox": "accounts", "seq": int(seq), "refusal": code, "status": status,
                     "event_sha256": digest, "event_type": ev["type"]}
    assert metric(stack, "bligate_outbox_refused_total") == refused_before + 2

    # the purge keeps refused rows whatever their age (the evidence), and deletes the others
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                         input="BEGIN;\nSELECT accounts.outbox_purge(now() + interval '1 day', 1000000) > 0;\n"
                               "SELECT event_id FROM accounts.outbox WHERE event_id IN "
                               f"('{good1['id']}', '{malformed['id']}', '{with_id['id']}', '{good2['id']}') ORDER BY seq;\n"
                               "ROLLBACK;\n", check=True, capture_output=True, text=True).stdout.split()
    assert out == ["t", malformed["id"], with_id["id"]], out
