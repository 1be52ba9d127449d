"""Operational rows do not pile up for ever: shipped outbox rows go after
BLIGATE_OUTBOX_RETENTION_DAYS (30), sessions BLIGATE_SESSION_RETENTION_DAYS (90) after their
absolute expiry — while an event not yet on the audit log is never deleted and the runtime role
still cannot delete outbox rows itself. Time moves with the services' test clocks."""

import re
import subprocess

import pytest

import requests

from conftest import poll
from test_audit import role_url, sql

DAY = 86400


def outbox_row(stack, event_id):
    return sql(stack, f"SELECT shipped_at IS NOT NULL FROM accounts.outbox WHERE event->>'id' = '{event_id}'")


def login_event_id(stack, session_id):
    rows = sql(stack, "SELECT event->>'id' FROM accounts.outbox WHERE event->>'type' = 'auth.login'"
                      f" AND event->'object'->>'id' = '{session_id}'")
    assert len(rows) == 1, rows
    return rows[0]


def counter(stack, name, labels=""):
    """A counter on accounts' /metrics."""
    text = requests.get(stack["BLIGATE_ACCOUNTS_URL"] + "/metrics", timeout=10).text
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    assert m, text
    return int(m.group(1))


def purges(stack):
    """How many purge runs accounts' outbox shipper has made."""
    return counter(stack, "bligate_outbox_purges_total", '{service="accounts"}')


def test_shipped_rows_go_after_retention(client, person, stack, clock):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    eid = login_event_id(stack, c.login_response["session_id"])
    poll("the login event shipped", lambda: outbox_row(stack, eid) == ["t"])
    # 29 days on the shipper purges (hourly, on its clock) but keeps the row
    runs = purges(stack)
    clock(29 * DAY)
    poll("a purge run 29 days on", lambda: purges(stack) > runs)
    assert outbox_row(stack, eid) == ["t"]
    # 31 days on it goes (the oldest first, a thousand a run), and the audit log still has it
    clock(31 * DAY)
    poll("the shipped row past retention deleted", lambda: outbox_row(stack, eid) == [], seconds=120)
    assert sql(stack, f"SELECT count(*) FROM audit.events WHERE event_id = '{eid}'") == ["1"]


def test_purge_keeps_unshipped_rows_and_the_role_cannot_delete(stack):
    # an unshipped row, invisible to the shipper (never committed), and a purge far in the future
    out = sql(stack, "BEGIN;"
                     " INSERT INTO accounts.outbox (event_id, event) VALUES"
                     " ('00000000-0000-4000-8000-00000000beef', '{\"id\": \"00000000-0000-4000-8000-00000000beef\"}');"
                     " SELECT accounts.outbox_purge(now() + interval '100 years', 1000000) >= 0;"
                     " SELECT count(*) FROM accounts.outbox WHERE event_id = '00000000-0000-4000-8000-00000000beef';"
                     " ROLLBACK;")
    assert out[-2:] == ["1", "ROLLBACK"], out  # still there: only shipped rows are purged
    # the runtime role deletes only through the function
    r = subprocess.run(["psql", role_url(stack, "bligate_accounts"), "-X", "-At", "-c",
                        "DELETE FROM accounts.outbox WHERE shipped_at IS NOT NULL"], capture_output=True, text=True)
    assert r.returncode != 0 and "permission denied" in r.stderr
    for svc in ("workflow", "bliproxy"):
        r = subprocess.run(["psql", role_url(stack, f"bligate_{svc}"), "-X", "-At", "-c",
                            f"SELECT {svc}.outbox_purge('-infinity', 1)"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "0", (svc, r.stderr)


@pytest.mark.parametrize("svc", ["accounts", "workflow", "bliproxy"])
def test_purge_is_not_held_up_by_rows_it_may_not_delete_yet(stack, svc):
    # 1,500 rows shipped on a clock that was ahead (not past retention yet), then one shipped
    # long ago: the purge reaches it, where it used to look at the 1,000 oldest rows only
    out = sql(stack, "BEGIN;"
                     f" INSERT INTO {svc}.outbox (event_id, event, shipped_at)"
                     "  SELECT gen_random_uuid(), '{}', now() + interval '1 day' FROM generate_series(1, 1500);"
                     f" INSERT INTO {svc}.outbox (event_id, event, shipped_at) VALUES"
                     "  ('00000000-0000-4000-8000-0000000000aa', '{}', now() - interval '1 year');"
                     f" SELECT {svc}.outbox_purge(now() - interval '30 days', 1000) >= 1;"
                     f" SELECT count(*) FROM {svc}.outbox WHERE event_id = '00000000-0000-4000-8000-0000000000aa'"
                     "  OR shipped_at = now() + interval '1 day';"
                     " ROLLBACK;")
    assert out[-3:] == ["t", "1500", "ROLLBACK"], out  # the old row went, the others stayed


def test_sessions_go_long_after_their_expiry(client, person, stack, clock):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    sid = c.login_response["session_id"]
    c.logout()

    def count():
        return sql(stack, f"SELECT count(*) FROM accounts.sessions WHERE id = '{sid}'")

    assert count() == ["1"]
    # past the absolute expiry, within the retention: the hourly purge (on accounts' clock) keeps it
    runs = counter(stack, "bligate_sessions_purges_total")
    clock(80 * DAY)
    poll("a sessions purge 80 days on", lambda: counter(stack, "bligate_sessions_purges_total") > runs)
    assert count() == ["1"]
    # past the retention: gone, however many other sessions went before it
    clock(92 * DAY)
    poll("the session deleted", lambda: count() == ["0"])
    assert counter(stack, "bligate_sessions_purged_total") >= 1
