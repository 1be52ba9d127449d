"""Integration-test harness: a real stack (PostgreSQL, the service binaries, nginx) started by
ctest's fixture (`scripts/stack start` with BLIGATE_VAR pointing at the build's testvar), real
certificates from the development PKI, and every response checked against openapi/."""

import datetime
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time
import uuid

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "lib"))

from bligate_dev import devpki, ids, signing, stackenv  # noqa: E402
from bligate_dev.client import ApiError, Client, login_body  # noqa: E402
from bligate_dev.contract import Contract  # noqa: E402


def _var():
    var = os.environ.get("BLIGATE_VAR")
    if not var:
        pytest.exit("BLIGATE_VAR is not set: run through ctest (make test), or start a stack with "
                    "BLIGATE_TEST_CLOCK=1 scripts/stack start and export BLIGATE_VAR", returncode=2)
    return var


@pytest.fixture(scope="session")
def stack():
    env = stackenv.load(os.path.join(_var(), "stack.env"))
    env["PKI"] = env.get("BLIGATE_PKI_DIR") or os.path.join(env["BLIGATE_VAR"], "pki")
    return env


@pytest.fixture(scope="session")
def contract():
    public = Contract(str(REPO / "openapi" / "build" / "openapi.yaml"))
    internal = Contract(str(REPO / "openapi" / "build" / "internal.yaml"))
    return {"public": public, "internal": internal}


def _checker(contract, which):
    def check(resp):
        req = resp.request
        path = req.path_url.split("?", 1)[0]
        c = contract["internal" if path.startswith("/internal/") else which]
        c.validate(req.method, path, resp.status_code, resp.headers, resp.content)
    return check


@pytest.fixture
def client(stack, contract):
    """A fresh, signed-out client talking to the gateway; responses are checked."""
    clients = []

    def make(base=None):
        c = Client(base or stack["BLIGATE_GATEWAY_URL"], on_response=[_checker(contract, "public")])
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="session")
def demo(stack):
    with open(stack["BLIGATE_DEMO_ACCOUNTS"], encoding="utf-8") as f:
        return {a["name"]: a for a in json.load(f)}


@pytest.fixture
def login(client, demo):
    """login("querier1") → a client signed in as that demo account."""
    def do(name, method="raw"):
        c = client()
        c.login(demo[name]["cert"], demo[name]["key"], method=method)
        return c
    return do


@pytest.fixture
def admin(login):
    return login("permadmin")


@pytest.fixture
def clock(stack):
    """Moves the accounts service's clock (BLIGATE_TEST_CLOCK=1) and puts it back afterwards;
    returns accounts' reply. The workflow, proxy and audit clocks move with it when they run:
    request windows, retention and the oversight due dates follow the same time as the tokens
    accounts issues (a service whose clock lagged would see them as not yet valid)."""
    urls = [stack["BLIGATE_ACCOUNTS_URL"] + "/internal/test/clock"]
    running = stack.get("BLIGATE_SERVICES", "").split()
    for svc in ("workflow", "bliproxy", "audit"):
        if svc in running:
            urls.append(stack[f"BLIGATE_{svc.upper()}_URL"] + "/internal/test/clock")
    # the other replicas of a BLIGATE_REPLICAS stack keep the same time
    for svc in ("accounts", "workflow", "bliproxy", "audit"):
        for k in (2, 3):
            if svc in running and stack.get(f"BLIGATE_{svc.upper()}_URL_{k}"):
                urls.append(stack[f"BLIGATE_{svc.upper()}_URL_{k}"] + "/internal/test/clock")

    def set_offset(seconds):
        replies = []
        for url in urls:
            r = requests.post(url, json={"offset_seconds": int(seconds)}, timeout=10)
            assert r.status_code == 200, r.text
            replies.append(r.json())
        return replies[0]

    yield set_offset
    set_offset(0)


@pytest.fixture
def long_crl(stack):
    """A revocation list valid for 150 days, so logins work with the clock moved months on (into
    next year, say); the stack's own list comes back afterwards."""
    crl = os.path.join(stack["PKI"], "crl.pem")
    saved = crl + ".long-crl-saved"
    shutil.copy2(crl, saved)
    devpki.write_crl(stack["PKI"], next_update=datetime.timedelta(days=150))
    yield
    shutil.move(saved, crl)
    os.utime(crl)


def new_request_id(prefix="t"):
    """A random X-Request-Id that cannot hold something shaped like a national ID (a letter, 1 or
    2, eight digits: the gateway and the services replace such an id, in either case): hex in
    runs of eight. Plain random hex holds one in about one run of forty."""
    h = uuid.uuid4().hex
    return prefix + "-" + "-".join(h[i:i + 8] for i in range(0, 32, 8))


def new_national_id():
    letter = random.choice("ABCDEFGHJKLMNPQRSTUVXYWZIO")
    return ids.make_national_id(letter, random.choice("12"), "".join(random.choice("0123456789") for _ in range(7)))


@pytest.fixture
def person(stack, admin, demo, tmp_path):
    """person(unit_code="SA-WEL", roles=[...]) → a new account with a registered certificate:
    {"id", "name", "national_id", "cert", "key", "unit_id"}. Each test gets new people, so
    tests never depend on each other's sessions or lockouts."""
    units = {a["unit_code"]: a["unit_id"] for a in demo.values()}

    def make(unit_code="SA-WEL", roles=("querier",), register=True, **cert_kw):
        name = "tester-" + uuid.uuid4().hex[:8]
        nid = new_national_id()
        body = {"name": name, "national_id": nid, "unit_id": units[unit_code], "title": "科員",
                "roles": list(roles)}
        acc = admin.call("POST", "/v1/accounts", status=201, json=body)
        files = devpki.issue_user(stack["PKI"], name, nid, str(tmp_path / name), **cert_kw)
        if register:
            pem = open(files["cert"], encoding="ascii").read()
            admin.call("POST", f"/v1/accounts/{acc['id']}/certificates", status=201, json={"certificate": pem})
        return {"id": acc["id"], "name": name, "national_id": nid, "cert": files["cert"], "key": files["key"],
                "unit_id": acc["unit_id"], "serial": files["serial"]}
    return make


def problem(resp, status, code):
    """Asserts a problem+json reply with this status and code; returns its body."""
    assert resp.status_code == status, f"expected {status} {code}, got {resp.status_code}: {resp.text}"
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers["Content-Type"]
    body = resp.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def sign_in_body(challenge, cert, key, method="raw"):
    return login_body(challenge, cert, key, method)


__all__ = ["ApiError", "devpki", "signing", "problem", "sign_in_body", "new_national_id"]


def start_service(binary, env, base, log=None):
    """One more service process (binary, with env), returned once it answers /readyz at base;
    its output goes to log (a path) when given. Stopped here if it does not become ready."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([binary], env=env, stdout=out, stderr=subprocess.STDOUT)
    if log:
        out.close()
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"{binary} exited" + (": " + pathlib.Path(log).read_text() if log else "")
        try:
            if requests.get(base + "/readyz", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if time.monotonic() >= deadline:
            proc.terminate()
            proc.wait(timeout=30)
            raise AssertionError(f"{binary} did not become ready")
        time.sleep(0.1)


def poll(what, fn, seconds=30):
    """fn() until it returns something true (bounded): for effects that happen asynchronously
    (shippers, deliveries). Fails naming `what` when the time is up."""
    deadline = time.monotonic() + seconds
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
