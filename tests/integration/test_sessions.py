"""Sessions (rule 3; issue 2): idle timeout, absolute lifetime, refresh, logout, and a new
login ending the older session. Time moves with the service's test clock, never a sleep."""

import concurrent.futures
import subprocess

from conftest import problem


def test_refresh_issues_a_new_token_for_the_same_session(client, person):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    sid, old = c.login_response["session_id"], c.token
    c.refresh()
    assert c.token != old
    assert c.login_response["session_id"] == sid
    assert c.me()["session"]["id"] == sid


def test_logout_ends_the_session(client, person):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    token = c.token
    c.logout()
    c.token = token
    problem(c.get("/v1/auth/me"), 401, "session-ended")
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "session-ended")


def test_second_login_ends_the_first_session(client, person):
    p = person()
    first, second = client(), client()
    first.login(p["cert"], p["key"])
    second.login(p["cert"], p["key"])
    body = problem(first.get("/v1/auth/me"), 401, "session-ended")
    assert "superseded" in body["detail"]
    assert second.me()["account"]["id"] == p["id"]


def test_concurrent_logins_of_one_account_leave_one_live_session(client, person, stack):
    """Logins of one account racing each other all succeed, each ending the one before it: at
    the end exactly one session is live, and it is one of theirs."""
    p = person()
    clients = [client() for _ in range(8)]

    def go(c):
        c.login(p["cert"], p["key"])
        return c.login_response["session_id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        sids = list(pool.map(go, clients))
    assert len(set(sids)) == 8
    out = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c",
                          f"SELECT id FROM accounts.sessions WHERE account_id = '{p['id']}' AND ended_at IS NULL"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert len(out) == 1 and out[0] in sids
    live = [c for c, sid in zip(clients, sids) if sid == out[0]]
    assert live[0].me()["session"]["id"] == out[0]
    for c, sid in zip(clients, sids):
        if sid != out[0]:
            problem(c.get("/v1/auth/me"), 401, "session-ended")


def test_access_token_expires_after_five_minutes_and_refresh_renews_it(client, person, clock):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    clock(301)
    problem(c.get("/v1/auth/me"), 401, "token-expired")
    c.refresh()  # the session is not idle yet: 301 s < 600 s
    assert c.me()["account"]["id"] == p["id"]


def test_idle_timeout_locks_the_session(client, person, clock):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    clock(601)
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "session-idle-expired")
    # and it stays ended
    clock(0)
    problem(c.get("/v1/auth/me"), 401, "session-ended")


def test_activity_keeps_the_session_alive_until_its_absolute_lifetime(client, person, clock):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    offset = 0
    # stay active every 290 s: never idle, tokens renewed, until 8 hours have passed
    while offset + 290 < 8 * 3600:
        offset += 290
        clock(offset)
        c.refresh()
    me = c.me()
    assert me["session"]["expires_at"] > me["session"]["last_seen_at"]
    clock(8 * 3600 + 1)
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "session-ended")


def test_tokens_are_refused_without_a_session_or_when_tampered(client, person):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    head, claims, sig = c.token.split(".")
    c.token = head + "." + claims + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    problem(c.get("/v1/auth/me"), 401, "token-invalid")
    c.token = "not.a.token"
    problem(c.get("/v1/auth/me"), 401, "token-invalid")
    c.token = None
    problem(c.get("/v1/auth/me"), 401, "unauthenticated")


def test_concurrent_logins_of_one_account_leave_one_live_session(client, person):
    """Ten logins at once: all succeed, and exactly one session (the last) stays live."""
    import concurrent.futures
    p = person()
    clients = [client() for _ in range(10)]
    bodies = []
    for c in clients:
        from conftest import sign_in_body
        bodies.append(sign_in_body(c.challenge(), p["cert"], p["key"]))
    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        codes = list(ex.map(lambda cb: cb[0].post("/v1/auth/sessions", json=cb[1], bearer=False), zip(clients, bodies)))
    assert [r.status_code for r in codes] == [201] * 10, [r.text for r in codes if r.status_code != 201]
    live = 0
    for c, r in zip(clients, codes):
        c.token = r.json()["access_token"]
        live += c.get("/v1/auth/me").status_code == 200
    assert live == 1
