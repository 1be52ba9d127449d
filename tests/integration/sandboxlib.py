"""The BLI sandbox's control endpoints for the tests (it speaks only mutual TLS: the dev PKI's
agency certificate, and its CA to trust the sandbox)."""

import os

import requests


def tls(stack):
    d = os.path.join(stack["PKI"], "bli")
    return {"verify": os.path.join(d, "bli-ca.crt"),
            "cert": (os.path.join(d, "agency.crt"), os.path.join(d, "agency.key"))}


def call(stack, method, path, **kw):
    return requests.request(method, stack["BLIGATE_BLI_SANDBOX_URL"] + path, timeout=30, **tls(stack), **kw)


def stats(stack):
    r = call(stack, "GET", "/_sandbox/stats")
    assert r.status_code == 200, r.text
    return r.json()


def faults(stack, **settings):
    r = call(stack, "PUT", "/_sandbox/faults", json=settings)
    assert r.status_code == 200, r.text
    return r.json()


def reset(stack):
    assert call(stack, "POST", "/_sandbox/reset").status_code == 204
