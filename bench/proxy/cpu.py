#!/usr/bin/python3
"""bench/proxy/cpu.py: where a benchmark run's CPU went, per process, per query.

  cpu.py snap --var VAR --out FILE     CPU ticks of every process of the stack, now
  cpu.py report A B                    the difference as a Markdown table (ms per query)

Processes: each service (replicas included), nginx (master and workers), wrk, and PostgreSQL's
backends grouped by the role they serve (pg_stat_activity), the server's own processes as
"postgres (server)". Backends that ended between the snapshots are not counted. Alongside, the
rows PostgreSQL read by sequential scans in the bligate schemas: on the query path every read
should be an index lookup, so a growing figure means a plan that scans a table. And what the
database wrote per query (pg_walinspect over the WAL between the snapshots): records, index
entries, commits and bytes — the work each row, index and transaction on the path costs.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

SCHEMAS = ("accounts", "workflow", "bliproxy", "audit")
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, threads included
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(task) as f:
            out += [int(p) for p in f.read().split()]
    return out


def psql(url, sql):
    return subprocess.run(["psql", url, "-XAtq", "-c", sql], check=True, capture_output=True,
                          text=True).stdout.splitlines()


def snap(args):
    env = {}
    with open(os.path.join(args.var, "stack.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v.strip("'")
    url = env["BLIGATE_DB_SUPER_URL"]
    groups = {}

    def add(name, pid):
        t = ticks(pid)
        if t is not None:
            groups.setdefault(name, {})[str(pid)] = t

    run = os.path.join(args.var, "run")
    for path in glob.glob(os.path.join(run, "*.pid")):
        name = os.path.basename(path)[:-4]
        with open(path) as f:
            pid = int(f.read().split()[0])
        if name == "nginx":
            for p in [pid] + children(pid):
                add("nginx", p)
        else:
            add(name.rsplit("-", 1)[0] if name[-2:-1] == "-" and name[-1].isdigit() else name, pid)
    roles = {}
    for row in psql(url, "SELECT pid, coalesce(usename, '') FROM pg_stat_activity"):
        pid, role = row.split("|", 1)
        roles[int(pid)] = role
    pgdata = psql(url, "SHOW data_directory")[0]
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            postmaster = int(f.readline())
    except OSError:
        postmaster = None
    if postmaster:
        add("postgres (server)", postmaster)
        for p in children(postmaster):
            role = roles.get(p, "")
            add(f"postgres: {role}" if role.startswith("bligate") else "postgres (server)", p)
    for p in subprocess.run(["pgrep", "-x", "wrk"], capture_output=True, text=True).stdout.split():
        add("wrk", int(p))
    scans = psql(url, "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables WHERE schemaname IN "
                      f"({', '.join(repr(s) for s in SCHEMAS)})")
    queries = psql(url, "SELECT count(*) FROM bliproxy.queries")
    lsn = psql(url, "SELECT pg_current_wal_lsn()")[0]
    with open(args.out, "w") as f:
        json.dump({"groups": groups, "seq_rows": int(scans[0]), "queries": int(queries[0]), "lsn": lsn, "url": url}, f)


def wal(a, b, n):
    """WAL written between two snapshots, per query; None where pg_walinspect is not to be had."""
    try:
        psql(b["url"], "CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        rows = psql(b["url"], f"SELECT \"resource_manager/record_type\", count, combined_size"
                              f" FROM pg_get_wal_stats('{a['lsn']}', '{b['lsn']}', true)")
    except (subprocess.CalledProcessError, KeyError):
        return None
    total = {"records": 0, "bytes": 0, "index": 0, "commits": 0}
    for row in rows:
        kind, count, size = row.split("|")
        total["records"] += int(count)
        total["bytes"] += int(size)
        if kind.startswith(("Btree/INSERT_LEAF", "Btree/INSERT_POST", "Gin/")):
            total["index"] += int(count)
        if kind == "Transaction/COMMIT":
            total["commits"] += int(count)
    return {k: v / n for k, v in total.items()}


def report(args):
    with open(args.a) as f:
        a = json.load(f)
    with open(args.b) as f:
        b = json.load(f)
    n = max(b["queries"] - a["queries"], 1)
    rows = []
    for name, pids in b["groups"].items():
        before = a["groups"].get(name, {})
        used = sum(t - before[pid] for pid, t in pids.items() if pid in before)
        rows.append((used * TICK_MS / n, name))
    rows.sort(reverse=True)
    total = sum(ms for ms, _ in rows)
    print("| process | CPU per query (ms) | share |")
    print("|---|---|---|")
    for ms, name in rows:
        if ms >= 0.005:
            print(f"| {name} | {ms:.2f} | {100 * ms / total:.0f} % |")
    print(f"| **all** ({n} queries) | **{total:.2f}** | |")
    print()
    print(f"Rows read by sequential scans in the bligate schemas: {(b['seq_rows'] - a['seq_rows']) / n:.1f} per query.")
    w = wal(a, b, n)
    if w:
        print()
        print(f"WAL per query: {w['records']:.1f} records ({w['index']:.1f} index entries, {w['commits']:.1f} commits),"
              f" {w['bytes'] / 1024:.1f} KiB.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snap")
    s.add_argument("--var", required=True)
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("a")
    r.add_argument("b")
    args = ap.parse_args()
    {"snap": snap, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
