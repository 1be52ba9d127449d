#!/usr/bin/python3
"""bench/proxy/prep.py: what the proxy benchmark queries with.

  prep.py --var VAR --gateway URL --queriers N --uses U --out FILE

Through the API, as the rules require: N bench queriers (pxq01...) in SA-WEL, each granted every
BLI item by an approved Form 1 (supervisor1 → permadmin → permhead), each with approved Form 2
registrations (50 subjects × 9 items × 3 uses under 社會救助法, approved by supervisor1) until
U uses exist in all. Then each querier logs in once. FILE gets one line per use:
"<access token> <request id> <national id> <item>", shuffled so that concurrent queries touch
different rows; the tokens live 300 s, so the benchmark runs right after.
"""

import argparse
import datetime
import json
import os
import random
import sys
import uuid

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts", "lib"))

from bligate_dev import devpki  # noqa: E402
from bligate_dev.client import Client  # noqa: E402
from bligate_dev.ids import make_national_id  # noqa: E402

ITEMS = ["C0101", "B0101", "B0201", "B0301", "P0301", "N0101", "T0101", "B0401", "P0401"]
ACK = {"pdpa_read": True, "environment_ready": True}
SUBJECTS, MAX_USES = 50, 3


def demo(var):
    with open(os.path.join(var, "demo", "accounts.json"), encoding="utf-8") as f:
        return {a["name"]: a for a in json.load(f)}


def signed_in(gw, acct):
    c = Client(gw, timeout=60)
    c.login(acct["cert"], acct["key"])
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--var", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--queriers", type=int, default=8)
    ap.add_argument("--uses", type=int, default=40000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    var = os.path.abspath(a.var)
    d = demo(var)
    admin, sup, head = (signed_in(a.gateway, d[n]) for n in ("permadmin", "supervisor1", "permhead"))
    unit_id = d["querier1"]["unit_id"]
    basis = next(lb for lb in sup.items("/v1/legal-bases") if lb["code"] == "PUBLIC-ASSISTANCE")
    # the bureau's date (Asia/Taipei): the grants are effective from today
    today = (datetime.datetime.utcnow() + datetime.timedelta(hours=8)).strftime("%Y-%m-%d")
    per_request = SUBJECTS * len(ITEMS) * MAX_USES
    requests_needed = -(-a.uses // per_request)
    lines = []
    serial = 0
    for q in range(1, a.queriers + 1):
        name = "pxq%02d" % q
        nid = make_national_id("C", 1 + q % 2, "%07d" % (8000000 + q))
        acct = admin.call("POST", "/v1/accounts", status=201, json={
            "name": name, "national_id": nid, "unit_id": unit_id, "title": "bench", "roles": ["querier"]})
        prefix = os.path.join(var, "bench", name)
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        devpki.issue_user(os.path.join(var, "pki"), name, nid, prefix)
        with open(prefix + ".crt", encoding="ascii") as f:
            admin.call("POST", "/v1/accounts/%s/certificates" % acct["id"], status=201, json={"certificate": f.read()})
        qc = signed_in(a.gateway, {"cert": prefix + ".crt", "key": prefix + ".key"})
        app = qc.call("POST", "/v1/permission-applications", status=201, json={
            "type": "new", "items": ITEMS, "reason": "benchmark", "acknowledgements": ACK})
        url = "/v1/permission-applications/%s/decisions" % app["id"]
        sup.call("POST", url, json={"decision": "approve"})
        admin.call("POST", url, json={"decision": "approve"})
        head.call("POST", url, json={"decision": "approve", "effective_date": today})
        mine = []
        for _ in range(-(-requests_needed // a.queriers)):
            subjects = []
            for _ in range(SUBJECTS):
                serial += 1
                subjects.append({"name": "測試%05d" % serial, "items": ITEMS,
                                 "national_id": make_national_id("D", 1 + serial % 2, "%07d" % serial)})
            req = qc.call("POST", "/v1/query-requests", status=201, json={
                "legal_basis_id": basis["id"], "article": "第5條之1", "max_uses": MAX_USES,
                "relevance": "效能測試：低收入戶資格審核之家庭成員投保與給付資料查核",
                "case_reference": "BENCH-" + uuid.uuid4().hex[:8], "subjects": subjects})
            sup.call("POST", "/v1/query-requests/%s/decision" % req["id"], json={"decision": "approve"})
            for s in subjects:
                for item in ITEMS:
                    mine.extend([(req["id"], s["national_id"], item)] * MAX_USES)
        token = qc.login(prefix + ".crt", prefix + ".key")
        lines.extend("%s %s %s %s\n" % (token, r, n, i) for r, n, i in mine)
        print("prep: %s ready with %d uses" % (name, len(mine)), file=sys.stderr)
    random.shuffle(lines)
    with open(a.out + ".tmp", "w", encoding="ascii") as f:
        f.writelines(lines)
    os.replace(a.out + ".tmp", a.out)
    print("prep: %d uses in %s" % (len(lines), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
