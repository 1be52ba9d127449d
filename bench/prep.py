#!/usr/bin/python3
"""bench/prep.py: the Python side of bench/run (accounts and tokens for the benchmarks).

  prep.py accounts --var VAR --gateway URL --count N --out FILE
      Logs in as the demo permission administrator (permadmin), creates N bench accounts
      (bench001..., querier in SA-WEL) through the API, issues each a MOICA-shaped certificate
      with devpki.issue_user into VAR/bench/certs/, registers it, and writes FILE with one
      "<cert> <key>" line per account (the input of loginbench). Idempotent: existing
      bench accounts and registered certificates are reused.

  prep.py token --var VAR --url URL [--name querier1]
      Logs in as a demo account at URL and prints the access token (300 s).
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))

from bligate_dev import devpki  # noqa: E402
from bligate_dev.client import Client  # noqa: E402
from bligate_dev.ids import make_national_id  # noqa: E402


def demo_account(var, name):
    with open(os.path.join(var, "demo", "accounts.json"), encoding="utf-8") as f:
        for a in json.load(f):
            if a["name"] == name:
                return a
    raise SystemExit("prep: demo account %s not in %s/demo/accounts.json" % (name, var))


def cmd_accounts(a):
    var = os.path.abspath(a.var)
    pki = os.path.join(var, "pki")
    certs = os.path.join(var, "bench", "certs")
    os.makedirs(certs, exist_ok=True)
    admin = demo_account(var, "permadmin")
    unit_id = demo_account(var, "querier1")["unit_id"]
    c = Client(a.gateway, timeout=30)
    c.login(admin["cert"], admin["key"])
    existing = {x["name"]: x for x in c.items("/v1/accounts", params={"unit_id": unit_id})}
    lines = []
    for i in range(1, a.count + 1):
        name = "bench%03d" % i
        # Synthetic IDs with valid check digits, apart from the demo ones (letter E).
        nid = make_national_id("B", 1 + i % 2, "%07d" % (9000000 + i))
        prefix = os.path.join(certs, name)
        acct = existing.get(name)
        if acct is None:
            acct = c.call("POST", "/v1/accounts", status=201, json={
                "name": name, "national_id": nid, "unit_id": unit_id, "title": "bench",
                "roles": ["querier"]})
        if not (os.path.exists(prefix + ".crt") and os.path.exists(prefix + ".key")):
            devpki.issue_user(pki, name, nid, prefix)
        fp = devpki.cert_info(prefix + ".crt")["fingerprint_sha256"]
        registered = {x.get("fingerprint_sha256", "").lower()
                      for x in c.items("/v1/accounts/%s/certificates" % acct["id"])
                      if x.get("status") == "active"}
        if fp not in registered:
            with open(prefix + ".crt", encoding="ascii") as f:
                c.call("POST", "/v1/accounts/%s/certificates" % acct["id"], status=201,
                       json={"certificate": f.read()})
        lines.append("%s.crt %s.key\n" % (prefix, prefix))
    c.logout()
    c.close()
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("# cert key, written by bench/prep.py\n")
        f.writelines(lines)
    os.replace(tmp, a.out)
    print("prep: %d bench accounts ready (%s)" % (len(lines), a.out), file=sys.stderr)


def cmd_token(a):
    acct = demo_account(os.path.abspath(a.var), a.name)
    c = Client(a.url, timeout=30)
    print(c.login(acct["cert"], acct["key"]))
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("accounts")
    p.add_argument("--var", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_accounts)
    p = sub.add_parser("token")
    p.add_argument("--var", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--name", default="querier1")
    p.set_defaults(fn=cmd_token)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
