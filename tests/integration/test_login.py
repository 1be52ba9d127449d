"""Certificate login (rules 2 and 3; issue 2): raw signatures and CMS, and every refusal with
its own code. Real certificates, real CRL, real PostgreSQL, through the nginx gateway."""

import base64
import datetime
import os
import shutil
import uuid

import pytest
import requests

from conftest import devpki, problem, sign_in_body, signing


def test_demo_login_raw_and_cms(client, demo):
    for method in ("raw", "cms"):
        c = client()
        c.login(demo["querier1"]["cert"], demo["querier1"]["key"], method=method)
        body = c.login_response
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["account"]["name"] == "querier1"
        assert body["account"]["id"] == demo["querier1"]["account_id"]
        me = c.me()
        assert me["account"]["id"] == demo["querier1"]["account_id"]
        assert me["roles"] == ["querier"]
        assert me["session"]["id"] == body["session_id"]
        assert me["unit"]["id"] == demo["querier1"]["unit_id"]


def test_login_with_base64_der_certificate_and_rsa_key(client, person):
    p = person(key_type="rsa")
    c = client()
    ch = c.challenge()
    body = sign_in_body(ch, p["cert"], p["key"])
    pem = body["certificate"]
    der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
    body["certificate"] = base64.b64encode(der).decode()
    r = c.post("/v1/auth/sessions", json=body, bearer=False)
    assert r.status_code == 201, r.text
    assert r.json()["account"]["id"] == p["id"]


def test_challenge_shape(client):
    c = client()
    ch = c.challenge()
    raw = base64.urlsafe_b64decode(ch["nonce"] + "=")
    assert len(raw) == 32
    exp = datetime.datetime.strptime(ch["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    left = (exp - datetime.datetime.utcnow()).total_seconds()
    assert 50 <= left <= 61
    assert ch["nonce"] != c.challenge()["nonce"]


def attempt(c, cert, key, method="raw", challenge=None, tamper=None):
    ch = challenge or c.challenge()
    body = sign_in_body(ch, cert, key, method)
    if tamper:
        tamper(body)
    return c.post("/v1/auth/sessions", json=body, bearer=False)


def test_unknown_challenge(client, demo):
    c = client()
    q = demo["querier1"]
    ch = {"challenge_id": "00000000-0000-4000-8000-000000000000", "nonce": "bm9uY2U"}
    problem(attempt(c, q["cert"], q["key"], challenge=ch), 400, "challenge-unknown")


def test_replayed_challenge(client, person):
    p = person()
    c = client()
    ch = c.challenge()
    assert attempt(c, p["cert"], p["key"], challenge=ch).status_code == 201
    problem(attempt(c, p["cert"], p["key"], challenge=ch), 400, "challenge-used")


def test_expired_challenge(client, person, clock):
    p = person()
    c = client()
    ch = c.challenge()
    clock(61)
    problem(attempt(c, p["cert"], p["key"], challenge=ch), 400, "challenge-expired")


def test_signature_over_another_nonce(client, person):
    p = person()
    c = client()
    ch = c.challenge()

    def other(body):
        body["signature"] = signing.sign_raw(p["key"], b"another nonce entirely")
    problem(attempt(c, p["cert"], p["key"], challenge=ch, tamper=other), 401, "signature-invalid")


def test_cms_over_another_nonce(client, person):
    p = person()
    c = client()

    def other(body):
        body["cms"] = signing.sign_cms(p["cert"], p["key"], b"another nonce entirely")
    problem(attempt(c, p["cert"], p["key"], method="cms", tamper=other), 401, "signature-invalid")


def test_signature_by_another_key(client, person):
    p, q = person(), person()
    c = client()

    def other(body):
        body["signature"] = signing.sign_raw(q["key"], body_nonce[0].encode())
    ch = c.challenge()
    body_nonce = [ch["nonce"]]
    problem(attempt(c, p["cert"], p["key"], challenge=ch, tamper=other), 401, "signature-invalid")


def test_untrusted_ca(client, stack, tmp_path):
    f = devpki.issue_user(stack["PKI"], "outsider", "A123456789", str(tmp_path / "outsider"), issuer="untrusted")
    problem(attempt(client(), f["cert"], f["key"]), 401, "certificate-untrusted")


def test_expired_certificate(client, person):
    p = person(register=False, not_after=datetime.timedelta(days=-1))
    problem(attempt(client(), p["cert"], p["key"]), 401, "certificate-expired")


def test_not_yet_valid_certificate(client, person):
    p = person(register=False, not_before=datetime.timedelta(days=2), not_after=datetime.timedelta(days=400))
    problem(attempt(client(), p["cert"], p["key"]), 401, "certificate-expired")


def test_revoked_demo_account(client, demo):
    r = demo["revoked1"]
    problem(attempt(client(), r["cert"], r["key"]), 401, "certificate-revoked")


def test_certificate_revoked_after_registration(client, person, stack):
    p = person()
    assert attempt(client(), p["cert"], p["key"], method="cms").status_code == 201
    c = client()
    c.login(p["cert"], p["key"])
    devpki.revoke(stack["PKI"], p["serial"])  # a new CRL: the service reloads it on its next check
    problem(attempt(client(), p["cert"], p["key"], method="cms"), 401, "certificate-revoked")
    # the session it opened before: the next refresh verifies the certificate again and ends it
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "certificate-revoked")
    problem(c.get("/v1/auth/me"), 401, "session-ended")


def test_a_stranger_cannot_lock_a_certificate(client, person):
    """Certificates are public: failures with someone's certificate but not their key (a bad
    signature, an unknown challenge) count against the sender's address, not the certificate,
    else anyone could lock the holder out of rule 3's login for 15 minutes."""
    p = person()
    pem = open(p["cert"], encoding="ascii").read()
    c = client()
    for _ in range(5):
        ch = c.challenge()
        problem(c.post("/v1/auth/sessions", bearer=False, json={
            "challenge_id": ch["challenge_id"], "certificate": pem,
            "signature": base64.b64encode(b"x" * 64).decode()}), 401, "signature-invalid")
        problem(c.post("/v1/auth/sessions", bearer=False, json={
            "challenge_id": str(uuid.uuid4()), "certificate": pem, "signature": "AAAA"}), 400, "challenge-unknown")
    assert attempt(client(), p["cert"], p["key"]).status_code == 201


def test_a_certificate_expired_since_the_login_ends_its_session_at_refresh(client, person, clock):
    p = person(not_after=datetime.timedelta(minutes=3))
    c = client()
    c.login(p["cert"], p["key"])
    clock(4 * 60)
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "certificate-expired")
    body = problem(c.get("/v1/auth/me"), 401, "session-ended")
    assert "certificate_invalid" in body["detail"]  # expired, not revoked


def test_refresh_fails_closed_without_revocation_data(client, person, stack):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    crl, saved = _move_crl(stack)
    try:
        os.remove(crl)
        problem(c.post("/v1/auth/sessions/current/refresh"), 503, "revocation-unavailable")
    finally:
        shutil.move(saved, crl)
    # not ended for that: with the CRL back, the session goes on
    assert c.call("POST", "/v1/auth/sessions/current/refresh")["session_id"] == c.login_response["session_id"]


def test_key_usage_without_digital_signature(client, person):
    p = person(register=False, key_usage="keyEncipherment")
    problem(attempt(client(), p["cert"], p["key"]), 401, "certificate-key-usage")


def test_unregistered_certificate(client, person):
    p = person(register=False)
    problem(attempt(client(), p["cert"], p["key"]), 401, "certificate-not-registered")


def test_inactive_account(client, person, admin):
    p = person()
    assert attempt(client(), p["cert"], p["key"]).status_code == 201
    admin.call("POST", f"/v1/accounts/{p['id']}/deactivate", json={"reason": "left the bureau"})
    problem(attempt(client(), p["cert"], p["key"]), 403, "account-inactive")


def test_disabled_certificate(client, person, admin):
    p = person()
    c = client()
    c.login(p["cert"], p["key"])
    certs = c.call("GET", f"/v1/accounts/{p['id']}/certificates")["items"]
    # disabled by the permission administrator (a card reported lost): the session it opened
    # ends with it, where it could refresh and go on for the rest of the working day
    admin.call("DELETE", f"/v1/accounts/{p['id']}/certificates/{certs[0]['id']}", status=204)
    problem(c.get("/v1/auth/me"), 401, "session-ended")
    problem(c.post("/v1/auth/sessions/current/refresh"), 401, "session-ended")
    problem(attempt(client(), p["cert"], p["key"]), 401, "certificate-not-registered")
    assert admin.call("GET", f"/v1/accounts/{p['id']}/certificates")["items"][0]["status"] == "disabled"
    # disabling it again changes nothing and ends nothing more
    admin.call("DELETE", f"/v1/accounts/{p['id']}/certificates/{certs[0]['id']}", status=204)


def _move_crl(stack):
    crl = os.path.join(stack["PKI"], "crl.pem")
    saved = crl + ".saved"
    shutil.copy2(crl, saved)
    return crl, saved


def test_crl_removed_fails_closed(client, person, stack):
    p = person()
    crl, saved = _move_crl(stack)
    try:
        os.remove(crl)
        problem(attempt(client(), p["cert"], p["key"]), 503, "revocation-unavailable")
    finally:
        shutil.move(saved, crl)
    assert attempt(client(), p["cert"], p["key"]).status_code == 201


def test_stale_crl_fails_closed(client, person, stack):
    p = person()
    crl, saved = _move_crl(stack)
    try:
        devpki.write_crl(stack["PKI"], next_update=datetime.timedelta(seconds=-60),
                         this_update=datetime.timedelta(days=-2))
        problem(attempt(client(), p["cert"], p["key"]), 503, "revocation-unavailable")
    finally:
        shutil.move(saved, crl)
        os.utime(crl)  # a new mtime, so the service reloads the good list
    assert attempt(client(), p["cert"], p["key"]).status_code == 201


def test_five_failures_lock_the_certificate(client, person):
    p = person(register=False)
    c = client()
    for _ in range(5):
        problem(attempt(c, p["cert"], p["key"]), 401, "certificate-not-registered")
    r = attempt(c, p["cert"], p["key"])
    problem(r, 429, "rate-limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 900


def test_failures_from_one_address_are_throttled(stack, person, contract):
    """100 failures from one office address lock that address, not others. Sent to the
    accounts service directly with X-Forwarded-For, as the gateway would forward them."""
    url = stack["BLIGATE_ACCOUNTS_URL"]
    import random
    host = random.randrange(1, 250)
    office = {"X-Forwarded-For": f"198.51.100.{host}"}
    s = requests.Session()
    bad = {"challenge_id": "00000000-0000-4000-8000-000000000001", "certificate": "x", "signature": "eA=="}
    for _ in range(100):
        r = s.post(url + "/v1/auth/sessions", json=bad, headers=office, timeout=10)
        assert r.status_code == 400 and r.json()["code"] == "challenge-unknown"
    r = s.post(url + "/v1/auth/sessions", json=bad, headers=office, timeout=10)
    problem(r, 429, "rate-limited")
    assert int(r.headers["Retry-After"]) >= 1
    contract["public"].validate("POST", "/v1/auth/sessions", r.status_code, r.headers, r.content)
    other = s.post(url + "/v1/auth/sessions", json=bad, headers={"X-Forwarded-For": f"198.51.100.{host + 1}"}, timeout=10)
    assert other.json()["code"] == "challenge-unknown"


@pytest.mark.parametrize("body,field", [
    ({"challenge_id": "not-a-uuid", "certificate": "x", "signature": "eA=="}, "challenge_id"),
    ({"challenge_id": "00000000-0000-4000-8000-000000000000", "certificate": "x"}, "signature"),
    ({"challenge_id": "00000000-0000-4000-8000-000000000000"}, "cms"),
])
def test_login_body_validation(client, body, field):
    b = problem(client().post("/v1/auth/sessions", json=body, bearer=False), 400, "validation-failed")
    assert any(e["field"] == field for e in b["errors"]), b
