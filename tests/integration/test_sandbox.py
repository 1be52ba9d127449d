"""The BLI sandbox (issue 6): deterministic data for every item, people without records, bad
requests refused, faults on demand, every call counted, and mutual TLS — no client certificate,
or one from another CA, is refused. Every response is checked against openapi/bli-sandbox.yaml."""

import datetime
import os
import socket
import subprocess
import time

import pytest
import requests

import sandboxlib
from conftest import REPO, new_national_id
from bligate_dev.contract import Contract

ITEMS = ["C0101", "B0101", "B0201", "B0301", "P0301", "N0101", "T0101", "B0401", "P0401"]
# services/bli-sandbox/README.md: with the default seed this valid ID has no record at all
NO_RECORD_ID = "A123456814"
CONTRACT = Contract(str(REPO / "openapi" / "build" / "bli-sandbox.yaml"))


def call(stack, method, path, **kw):
    r = sandboxlib.call(stack, method, path, **kw)
    CONTRACT.validate(method, path, r.status_code, r.headers, r.content)
    return r


def ask(stack, nid, item):
    return call(stack, "POST", "/bli/v1/queries", json={"national_id": nid, "item": item})


def without_record(stack):
    """A valid ID the sandbox holds no record of (about one in ten)."""
    for _ in range(200):
        nid = new_national_id()
        if ask(stack, nid, "C0101").status_code == 404:
            return nid
    pytest.fail("no ID without a record among 200")


def test_the_same_answer_every_time_and_different_people_differ(stack):
    a = ask(stack, "A123456789", "C0101")
    assert a.status_code == 200, a.text
    body = a.json()
    assert body["item"] == "C0101" and body["national_id_masked"] == "A12****789"
    assert "A123456789" not in a.text
    again = ask(stack, "A123456789", "C0101").json()
    assert again["record"] == body["record"]
    others = {str(ask(stack, nid, "C0101").json().get("record")) for nid in (new_national_id() for _ in range(8))}
    assert len(others) > 4  # different people, different histories
    periods = body["record"]["periods"]
    assert periods and all(p["employer"] and p["insured_salary"] > 0 for p in periods)
    assert all(datetime.date.fromisoformat(p["insured_from"]) < datetime.date.today() for p in periods)


def test_every_item_has_plausible_data(stack):
    shapes = {"C0101": "periods", "B0101": "benefits", "B0201": "payments", "P0301": "changes", "N0101": "payments",
              "B0401": "payments", "P0401": "claims"}
    for item in ITEMS:
        r = ask(stack, "A123456789", item)
        assert r.status_code == 200, (item, r.text)
        rec = r.json()["record"]
        if item in shapes:
            assert isinstance(rec[shapes[item]], list), (item, rec)
        elif item == "B0301":
            assert isinstance(rec["eligible"], bool) and rec["insured_months_last_3_years"] >= 0
        elif item == "T0101":
            assert isinstance(rec["eligible"], bool) and rec["monthly_amount"] in (0, 8110)
        assert ask(stack, "A123456789", item).json()["record"] == rec


def test_some_people_have_no_record(stack):
    nid = without_record(stack)
    for item in ("C0101", "B0101", "P0401"):
        r = ask(stack, nid, item)
        assert r.status_code == 404 and r.json()["code"] == "no-record"
    for item in ITEMS:  # the documented demo ID, for every item
        r = ask(stack, NO_RECORD_ID, item)
        assert r.status_code == 404 and r.json()["code"] == "no-record", (item, r.text)
        assert NO_RECORD_ID not in r.text


def test_bad_requests_are_refused(stack):
    for body, code in [({"national_id": "A123456788", "item": "C0101"}, "validation-failed"),
                       ({"national_id": "A123456789", "item": "X0001"}, "validation-failed"),
                       ({"national_id": "A123456789"}, "validation-failed"),
                       ({"national_id": "A123456789", "item": "C0101", "x": 1}, "unknown-field")]:
        r = call(stack, "POST", "/bli/v1/queries", json=body)
        assert r.status_code == 400 and r.json()["code"] == code, r.text
    r = call(stack, "POST", "/bli/v1/queries", data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed-json"


def test_faults_and_counters(stack):
    sandboxlib.reset(stack)
    assert sandboxlib.stats(stack)["calls"] == 0
    try:
        f = call(stack, "PUT", "/_sandbox/faults", json={"fail_next": 2, "error_status": 502}).json()
        assert f["fail_next"] == 2 and f["error_status"] == 502
        assert [ask(stack, "A123456789", "C0101").status_code for _ in range(3)] == [502, 502, 200]
        call(stack, "PUT", "/_sandbox/faults", json={"latency_ms": 300})
        r = ask(stack, "A123456789", "B0101")
        assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3
        call(stack, "PUT", "/_sandbox/faults", json={"latency_ms": 0, "timeout_rate": 1, "timeout_ms": 200})
        assert ask(stack, "A123456789", "B0101").status_code == 504
        call(stack, "PUT", "/_sandbox/faults", json={"timeout_rate": 0, "error_rate": 1, "error_status": 500})
        assert ask(stack, "A123456789", "B0101").status_code == 500
        for bad in ({"error_rate": 2}, {"error_status": 404}, {"error_status": 501}, {"fail_next": -1}, {"nope": 1},
                    {"timeout_rate": "1"}):
            assert call(stack, "PUT", "/_sandbox/faults", json=bad).status_code == 400
    finally:
        call(stack, "PUT", "/_sandbox/faults", json={"error_rate": 0, "timeout_rate": 0, "latency_ms": 0,
                                                      "fail_next": 0, "error_status": 503})
    s = call(stack, "GET", "/_sandbox/stats").json()
    assert s["calls"] == 6 and s["by_item"]["C0101"] == 3 and s["by_item"]["B0101"] == 3
    assert s["by_status"] == {"502": 2, "200": 2, "504": 1, "500": 1}
    assert call(stack, "GET", "/_sandbox/faults").json()["error_rate"] == 0


def other_ca_cert(tmp_path):
    """A client certificate from a CA the sandbox does not trust."""
    key, crt, ca_key, ca_crt = (str(tmp_path / n) for n in ("c.key", "c.crt", "ca.key", "ca.crt"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=Some other CA", "-addext", "basicConstraints=critical,CA:TRUE")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-out", str(tmp_path / "c.csr"), "-subj", "/CN=Social Affairs Bureau BLI gateway")
    run("openssl", "x509", "-req", "-in", str(tmp_path / "c.csr"), "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "2", "-out", crt)
    return crt, key


def test_mutual_tls_only(stack, tmp_path):
    url = stack["BLIGATE_BLI_SANDBOX_URL"]
    assert url.startswith("https://")
    body = {"national_id": "A123456789", "item": "C0101"}
    before = sandboxlib.stats(stack)["calls"]
    ca = sandboxlib.tls(stack)["verify"]

    def refused(**kw):
        try:
            r = requests.post(url + "/bli/v1/queries", json=body, verify=ca, timeout=10, **kw)
        except requests.exceptions.SSLError:
            return True  # the handshake itself was refused
        CONTRACT.validate("POST", "/bli/v1/queries", r.status_code, r.headers, r.content)
        return r.status_code == 403 and r.json()["code"] == "client-certificate-required"

    assert refused()
    assert refused(cert=other_ca_cert(tmp_path))
    # plain http to the TLS port gets nothing
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url.replace("https://", "http://") + "/bli/v1/queries", json=body, timeout=10)
    # the refused calls were not counted as queries
    assert sandboxlib.stats(stack)["calls"] == before
    assert ask(stack, "A123456789", "C0101").status_code == 200
    # the dev PKI's agency certificate is for clients only, issued by the agency CA
    agency = sandboxlib.tls(stack)["cert"][0]
    text = subprocess.run(["openssl", "x509", "-in", agency, "-noout", "-text"], capture_output=True, text=True).stdout
    assert "TLS Web Client Authentication" in text and os.path.exists(agency)


def test_bad_requests_are_counted_and_reset_zeroes(stack):
    sandboxlib.reset(stack)
    assert sandboxlib.stats(stack) == {"calls": 0, "by_item": {i: 0 for i in ITEMS}, "by_status": {}}
    call(stack, "POST", "/bli/v1/queries", json={"national_id": "A123456788", "item": "T0101"})
    ask(stack, NO_RECORD_ID, "T0101")
    ask(stack, "A123456789", "T0101")
    s = call(stack, "GET", "/_sandbox/stats").json()
    assert s["calls"] == 3 and s["by_item"]["T0101"] == 3
    assert s["by_status"] == {"400": 1, "404": 1, "200": 1}
    assert call(stack, "POST", "/_sandbox/reset").status_code == 204
    assert call(stack, "GET", "/_sandbox/stats").json()["calls"] == 0


def test_fail_next_counts_down_exactly(stack):
    """fail_next is for tests that must be exact: N calls fail, then the next answers."""
    try:
        assert sandboxlib.faults(stack, fail_next=3, error_status=504)["fail_next"] == 3
        assert ask(stack, "A123456789", "P0401").status_code == 504
        assert sandboxlib.faults(stack)["fail_next"] == 2
        assert [ask(stack, "A123456789", "P0401").status_code for _ in range(3)] == [504, 504, 200]
        # a bad request does not use one up: it never reached the fault stage
        sandboxlib.faults(stack, fail_next=1)
        call(stack, "POST", "/bli/v1/queries", json={"national_id": "A123456789", "item": "Z9999"})
        assert sandboxlib.faults(stack)["fail_next"] == 1
        sandboxlib.reset(stack)  # cancels it
        assert sandboxlib.faults(stack)["fail_next"] == 0
    finally:
        sandboxlib.faults(stack, fail_next=0, error_status=503)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sandbox(tmp_path, **env):
    """A second sandbox, plain HTTP, configured by the environment alone: (process, base URL)."""
    binary = os.path.join(os.environ.get("BLIGATE_BIN_DIR") or str(REPO / "build" / "bin"), "bligate-bli-sandbox")
    port = _free_port()
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASAN_OPTIONS": "detect_leaks=0",
            "BLIGATE_LISTEN_PORT": str(port), **env}
    log = open(tmp_path / f"sandbox-{port}.log", "w")
    p = subprocess.Popen([binary], env=full, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/readyz", timeout=2).status_code == 200:
                return p, base
        except requests.exceptions.ConnectionError:
            pass
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            pytest.fail((tmp_path / f"sandbox-{port}.log").read_text())
        time.sleep(0.05)


def test_faults_from_the_environment_and_the_seed(stack, tmp_path):
    p, base = _sandbox(tmp_path, BLIGATE_SANDBOX_ERROR_RATE="1", BLIGATE_SANDBOX_ERROR_STATUS="502",
                       BLIGATE_SANDBOX_LATENCY_MS="150", BLIGATE_SANDBOX_TIMEOUT_MS="2500")
    q = {"national_id": "A123456789", "item": "C0101"}
    try:
        f = requests.get(base + "/_sandbox/faults", timeout=10)
        CONTRACT.validate("GET", "/_sandbox/faults", f.status_code, f.headers, f.content)
        assert f.json() == {"latency_ms": 150, "error_rate": 1, "error_status": 502, "timeout_rate": 0,
                            "timeout_ms": 2500, "fail_next": 0}
        r = requests.post(base + "/bli/v1/queries", json=q, timeout=10)
        CONTRACT.validate("POST", "/bli/v1/queries", r.status_code, r.headers, r.content)
        assert r.status_code == 502 and r.elapsed.total_seconds() >= 0.15
        requests.put(base + "/_sandbox/faults", json={"error_rate": 0, "latency_ms": 0}, timeout=10)
        # the same default seed as the stack's sandbox: the same data
        mine = requests.post(base + "/bli/v1/queries", json=q, timeout=10).json()["record"]
        assert mine == ask(stack, "A123456789", "C0101").json()["record"]
    finally:
        p.terminate()
        p.wait(timeout=30)
    p, base = _sandbox(tmp_path, BLIGATE_SANDBOX_SEED="another seed")
    try:
        theirs = requests.post(base + "/bli/v1/queries", json=q, timeout=10).json()["record"]
        assert theirs != mine
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_a_stopping_sandbox_answers_the_calls_it_holds(stack, tmp_path):
    """Calls waiting out a latency (up to ten minutes) are answered 503 when the sandbox is
    stopped, which then exits: it used to wait for them and ignore the stop."""
    import concurrent.futures
    p, base = _sandbox(tmp_path, BLIGATE_SANDBOX_LATENCY_MS="600000")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            held = ex.submit(requests.post, base + "/bli/v1/queries", json={"national_id": "A123456789", "item": "C0101"},
                             timeout=120)
            deadline = time.monotonic() + 30
            while requests.get(base + "/_sandbox/stats", timeout=10).json()["calls"] < 1:
                assert time.monotonic() < deadline and not held.done(), "the call did not arrive"
                time.sleep(0.05)
            p.terminate()
            r = held.result(timeout=60)
        assert r.status_code == 503 and r.json()["code"] == "sandbox-fault", r.text
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("env,named", [
    ({"BLIGATE_SANDBOX_ERROR_STATUS": "501"}, "BLIGATE_SANDBOX_ERROR_STATUS"),
    ({"BLIGATE_SANDBOX_ERROR_RATE": "1.5"}, "BLIGATE_SANDBOX_ERROR_RATE"),
    ({"BLIGATE_SANDBOX_TIMEOUT_RATE": "often"}, "BLIGATE_SANDBOX_TIMEOUT_RATE"),
    ({"BLIGATE_SANDBOX_LATENCY_MS": "-1"}, "BLIGATE_SANDBOX_LATENCY_MS"),
    ({"BLIGATE_SANDBOX_TLS_CERT_FILE": "/nonexistent/sandbox.crt", "BLIGATE_SANDBOX_TLS_KEY_FILE": "/nonexistent/k"},
     "BLIGATE_SANDBOX_TLS_CERT_FILE"),
    ({"BLIGATE_SANDBOX_CLIENT_CA_FILE": "/etc/hostname"}, "BLIGATE_SANDBOX_CLIENT_CA_FILE"),
])
def test_bad_configuration_exits_naming_the_variable(stack, env, named):
    binary = os.path.join(os.environ.get("BLIGATE_BIN_DIR") or str(REPO / "build" / "bin"), "bligate-bli-sandbox")
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASAN_OPTIONS": "detect_leaks=0",
            "BLIGATE_LISTEN_PORT": str(_free_port()), **env}
    r = subprocess.run([binary], env=full, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert named in r.stderr


def test_an_expired_agency_certificate_is_refused(stack, tmp_path):
    """Issued by the right CA but no longer valid: the chain check includes the dates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = os.path.join(stack["PKI"], "bli")
    with open(os.path.join(d, "agency-ca.crt"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(d, "agency-ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Social Affairs Bureau (expired)")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt, kf = tmp_path / "expired.crt", tmp_path / "expired.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    before = sandboxlib.stats(stack)["calls"]
    try:
        r = requests.post(stack["BLIGATE_BLI_SANDBOX_URL"] + "/bli/v1/queries", timeout=10,
                          json={"national_id": "A123456789", "item": "C0101"},
                          verify=sandboxlib.tls(stack)["verify"], cert=(str(crt), str(kf)))
        CONTRACT.validate("POST", "/bli/v1/queries", r.status_code, r.headers, r.content)
        assert r.status_code == 403 and r.json()["code"] == "client-certificate-required"
    except requests.exceptions.SSLError:
        pass  # refused in the handshake
    assert sandboxlib.stats(stack)["calls"] == before
