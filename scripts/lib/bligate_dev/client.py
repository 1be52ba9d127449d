"""A small bligate API client for scripts and tests (requests.Session underneath).

    c = Client("http://127.0.0.1:8080")
    c.on_response.append(validate_against_contract)   # called with every requests.Response
    c.login("var/demo/querier1.crt", "var/demo/querier1.key")      # or method="cms"
    me = c.get("/v1/auth/me").json()
    c.logout()

Login follows the accounts API: POST /v1/auth/challenges -> {challenge_id, nonce}, then
POST /v1/auth/sessions with {challenge_id, certificate (PEM), signature (base64)} ("raw") or
{challenge_id, cms (base64 DER)} ("cms"). The signed bytes are the nonce string as UTF-8.
"""

import base64

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import signing


class ApiError(Exception):
    """A response with an unexpected status; .response is the requests.Response and
    .problem the parsed problem+json body (or None)."""

    def __init__(self, response, message=None):
        self.response = response
        try:
            self.problem = response.json()
        except ValueError:
            self.problem = None
        code = self.problem.get("code") if isinstance(self.problem, dict) else None
        super().__init__(message or "%s %s -> %d %s" % (
            response.request.method, response.request.path_url.split("?")[0],
            response.status_code, code or response.reason))

    @property
    def code(self):
        return self.problem.get("code") if isinstance(self.problem, dict) else None


def login_body(challenge, cert_path, key_path, method="raw", cert_format="pem"):
    """The POST /v1/auth/sessions body for a challenge ({challenge_id, nonce, ...}).
    method "raw": certificate + signature; "cms": detached CMS SignedData.
    cert_format "pem" or "der" (base64 DER) for the raw method."""
    nonce = challenge["nonce"].encode("utf-8")
    if method == "raw":
        with open(cert_path, "rb") as f:
            pem = f.read().decode("ascii")
        if cert_format == "der":
            der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(
                serialization.Encoding.DER)
            cert = base64.b64encode(der).decode("ascii")
        else:
            cert = pem
        return {"challenge_id": challenge["challenge_id"], "certificate": cert,
                "signature": signing.sign_raw(key_path, nonce)}
    if method == "cms":
        return {"challenge_id": challenge["challenge_id"],
                "cms": signing.sign_cms(cert_path, key_path, nonce)}
    raise ValueError("method must be 'raw' or 'cms'")


class Client:
    """requests.Session bound to a base URL. Every response is passed to each callable in
    `on_response` (in order) before it is returned. After login() the bearer token is sent
    on every request until logout() or `token = None`."""

    def __init__(self, base_url, timeout=30, on_response=None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.on_response = list(on_response or [])
        self.token = None
        self.login_response = None   # the JSON body of the last successful login / refresh

    # -- plumbing
    def url(self, path):
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(self, method, path, bearer=True, **kw):
        """One request; bearer=False leaves the token out. Other keywords go to requests
        (json=, data=, params=, headers=, auth= for HTTP Basic, ...)."""
        headers = dict(kw.pop("headers", None) or {})
        if bearer and self.token and "Authorization" not in headers and "auth" not in kw:
            headers["Authorization"] = "Bearer " + self.token
        kw.setdefault("timeout", self.timeout)
        resp = self.session.request(method, self.url(path), headers=headers, **kw)
        for hook in self.on_response:
            hook(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def expect(self, resp, *statuses):
        """Return resp.json() (or None when there is no body) if resp.status_code is one of
        statuses; raise ApiError otherwise."""
        if resp.status_code not in statuses:
            raise ApiError(resp)
        if not resp.content:
            return None
        return resp.json()

    def call(self, method, path, status=200, **kw):
        """request() + expect(): the parsed body of a response with the given status."""
        statuses = status if isinstance(status, (tuple, list)) else (status,)
        return self.expect(self.request(method, path, **kw), *statuses)

    def items(self, path, params=None, limit=200):
        """Every item of a paginated list, following next_cursor."""
        params = dict(params or {})
        params.setdefault("limit", limit)
        while True:
            page = self.call("GET", path, params=params)
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor

    # -- auth
    def challenge(self):
        return self.call("POST", "/v1/auth/challenges", status=201, bearer=False, json={})

    def login(self, cert_path, key_path, method="raw", cert_format="pem"):
        """Certificate login; stores and returns the access token. Raises ApiError."""
        body = login_body(self.challenge(), cert_path, key_path, method, cert_format)
        data = self.call("POST", "/v1/auth/sessions", status=201, bearer=False, json=body)
        self.login_response = data
        self.token = data["access_token"]
        return self.token

    def refresh(self):
        data = self.call("POST", "/v1/auth/sessions/current/refresh")
        self.login_response = data
        self.token = data["access_token"]
        return self.token

    def logout(self):
        if self.token:
            self.call("DELETE", "/v1/auth/sessions/current", status=204)
            self.token = None

    def me(self):
        return self.call("GET", "/v1/auth/me")

    def client_token(self, client_id, client_secret, scope=None):
        """OAuth2 client credentials (HTTP Basic); returns the access token (not stored)."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        data = self.call("POST", "/v1/auth/tokens", bearer=False, data=form,
                         auth=(client_id, client_secret))
        return data["access_token"]

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
