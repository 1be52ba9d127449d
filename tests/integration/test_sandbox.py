"""The BLI sandbox (issue 6): deterministic data for every item, people without records, bad
requests refused, faults on demand, every call counted, and mutual TLS — no client certificate,
or one from another CA, is refused. Every response is checked against openapi/bli-sandbox.yaml."""

import datetime
import os
import subprocess

import pytest
import requests

import sandboxlib
from conftest import REPO, new_national_id
from bligate_dev.contract import Contract

ITEMS = ["C0101", "B0101", "B0201", "B0301", "P0301", "N0101", "T0101", "B0401", "P0401"]
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
        for bad in ({"error_rate": 2}, {"error_status": 404}, {"fail_next": -1}, {"nope": 1}):
            assert call(stack, "PUT", "/_sandbox/faults", json=bad).status_code == 400
    finally:
        call(stack, "PUT", "/_sandbox/faults", json={"error_rate": 0, "timeout_rate": 0, "latency_ms": 0,
                                                      "fail_next": 0, "error_status": 503})
    s = call(stack, "GET", "/_sandbox/stats").json()
    assert s["calls"] == 6 and s["by_item"]["C0101"] == 3 and s["by_item"]["B0101"] == 3
    assert s["by_status"]["5xx"] == 4 and s["by_status"]["2xx"] == 2
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
