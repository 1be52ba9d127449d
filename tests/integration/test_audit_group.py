"""Group commit of the audit intake: many shippers and proxies appending at once are appended
together, yet each caller gets exactly its own events back, in its order, every event once,
the log without gaps — and one caller's conflicting event refuses only that caller."""

import concurrent.futures
import threading

from test_audit import append, event, intake, sql  # noqa: F401


def test_concurrent_batches_each_get_their_own_results(intake, stack):
    start = int(sql(stack, "SELECT tree_size FROM audit.log_state")[0])
    batches = [[event(details={"caller": c, "n": i}) for i in range(1 + c % 4)] for c in range(40)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda b: append(intake, b), batches))
    seen = {}
    for batch, reply in zip(batches, replies):
        assert [r["id"] for r in reply["results"]] == [e["id"] for e in batch]
        assert all(r["status"] == "appended" for r in reply["results"])
        idx = [r["index"] for r in reply["results"]]
        assert idx == sorted(idx)  # a caller's events keep their order
        for e, i in zip(batch, idx):
            seen[i] = e["id"]
    total = sum(len(b) for b in batches)
    assert len(seen) == total
    rows = sql(stack, f"SELECT idx, event_id FROM audit.events WHERE idx >= {start} ORDER BY idx")
    on_log = {int(r.split("|")[0]): r.split("|")[1] for r in rows}
    assert all(on_log[i] == eid for i, eid in seen.items())
    assert sorted(on_log) == list(range(start, start + len(on_log)))  # no gaps


def test_a_conflict_refuses_only_its_caller(intake, stack):
    first = event()
    append(intake, [first])
    changed = dict(first, details={"n": 2})
    go = threading.Barrier(12)
    batches = [[event()] for _ in range(11)] + [[event(), changed]]

    def send(batch):
        go.wait(timeout=30)
        return intake.post("/internal/events", json={"events": batch})

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(send, batches))
    for batch, r in zip(batches[:-1], replies[:-1]):
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["status"] == "appended"
    bad = replies[-1]
    assert bad.status_code == 409 and bad.json()["code"] == "event-id-conflict"
    # nothing of the refused caller's batch is on the log
    innocent = batches[-1][0]["id"]
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE event_id = '{innocent}'") == ["0"]
