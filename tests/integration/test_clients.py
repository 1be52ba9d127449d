"""Service identities (issue 2): OAuth2 client credentials, scopes, the internal session
check, the JWKS, and the internal API never reachable through the gateway."""

import base64
import json

import requests

from conftest import problem


def secret(stack, name):
    with open(f"{stack['BLIGATE_SECRETS_DIR']}/{name}.client-secret") as f:
        return f.read().strip()


def test_client_credentials_and_internal_session_check(client, stack, person):
    c = client()
    tok = c.client_token("workflow", secret(stack, "workflow"), scope="sessions:read")
    claims = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
    assert claims["sub"] == "client:workflow" and claims["scope"] == "sessions:read" and "sid" not in claims
    p = person()
    user = client()
    user.login(p["cert"], p["key"])
    sid = user.login_response["session_id"]
    internal = client(stack["BLIGATE_ACCOUNTS_URL"])
    s = internal.call("GET", f"/internal/sessions/{sid}", headers={"Authorization": "Bearer " + tok})
    assert s["live"] is True and s["account_id"] == p["id"] and s["reason"] is None
    user.logout()
    s = internal.call("GET", f"/internal/sessions/{sid}", headers={"Authorization": "Bearer " + tok})
    assert s["live"] is False and s["reason"] == "ended"
    # a user token is not a service token
    user.login(p["cert"], p["key"])
    problem(internal.get(f"/internal/sessions/{sid}", headers={"Authorization": "Bearer " + user.token}), 403,
            "forbidden")
    # a client without the scope
    weak = c.client_token("accounts", secret(stack, "accounts"))
    problem(internal.get(f"/internal/sessions/{sid}", headers={"Authorization": "Bearer " + weak}), 403, "forbidden")
    # a client token is not a staff token
    problem(c.get("/v1/auth/me", headers={"Authorization": "Bearer " + tok}), 403, "forbidden")


def test_client_credential_refusals(client, stack):
    c = client()
    form = {"grant_type": "client_credentials"}
    problem(c.post("/v1/auth/tokens", data=form, auth=("workflow", "wrong-secret-wrong"), bearer=False), 401,
            "invalid-client")
    problem(c.post("/v1/auth/tokens", data=form, bearer=False), 401, "invalid-client")
    problem(c.post("/v1/auth/tokens", data={"grant_type": "password"}, auth=("workflow", secret(stack, "workflow")),
                   bearer=False), 400, "unsupported-grant-type")
    problem(c.post("/v1/auth/tokens", data={**form, "scope": "sessions:read audit:admin"},
                   auth=("workflow", secret(stack, "workflow")), bearer=False), 400, "invalid-scope")
    # form fields instead of HTTP Basic
    ok = c.call("POST", "/v1/auth/tokens", bearer=False,
                data={**form, "client_id": "workflow", "client_secret": secret(stack, "workflow")})
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 300


def test_jwks(client):
    keys = client().call("GET", "/.well-known/jwks.json", bearer=False)["keys"]
    assert len(keys) >= 1
    for k in keys:
        assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256" and k["kid"]
        assert len(base64.urlsafe_b64decode(k["x"] + "=")) == 32
        assert len(base64.urlsafe_b64decode(k["y"] + "=")) == 32


def test_internal_api_is_not_routed_by_the_gateway(stack):
    r = requests.get(stack["BLIGATE_GATEWAY_URL"] + "/internal/sessions/00000000-0000-4000-8000-000000000000",
                     timeout=10)
    assert r.status_code == 404
    r = requests.post(stack["BLIGATE_GATEWAY_URL"] + "/internal/test/clock", json={"offset_seconds": 1}, timeout=10)
    assert r.status_code == 404


def test_health_and_metrics(stack):
    base = stack["BLIGATE_ACCOUNTS_URL"]
    assert requests.get(base + "/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(base + "/readyz", timeout=10).json() == {"status": "ready"}
    m = requests.get(base + "/metrics", timeout=10).text
    assert "bligate_http_requests_total{" in m and "bligate_revocation_ok 1" in m


def test_request_id_is_echoed(client):
    r = client().get("/v1/auth/me", headers={"X-Request-Id": "trace-abc.123"})
    assert r.headers["X-Request-Id"] == "trace-abc.123"
    assert r.json()["request_id"] == "trace-abc.123"
