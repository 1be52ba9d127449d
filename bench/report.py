#!/usr/bin/python3
"""bench/report.py: the bookkeeping side of bench/run.

  report.py rss --var VAR --phase NAME >> rss.jsonl
      One JSON line per process group of the stack: every service whose pid is in
      VAR/run/<svc>.pid (VmRSS, VmHWM, Pss, threads), nginx (master + workers) and PostgreSQL
      (postmaster + backends), the last two as sums, for context.

  report.py summary --dir RAWDIR --out FILE.md [--machine machine.txt]
      Reads RAWDIR/results.tsv (written by bench/run: kind, label, parameter, raw output
      file), the wrk and loginbench outputs it names and RAWDIR/rss.jsonl, and prints the
      Markdown summary (also written to FILE.md).
"""

import argparse
import json
import os
import re
import sys

TARGET_RATIO = 0.20          # /v1/auth/me direct vs nginx static
TARGET_LOGINS = 1000.0       # logins/s
TARGET_RSS_MIB = 30.0        # per service, idle


# ------------------------------------------------------------------ /proc

def _status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def _kib(v):
    return int(v.split()[0]) if v else 0


def _pss(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(ppid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == ppid:
            kids.append(int(d))
    return kids


def _read_pid(path):
    try:
        with open(path) as f:
            pid = int(f.readline().strip())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists("/proc/%d" % pid) else None


def _one(pid):
    st = _status(pid)
    if st is None:
        return None
    return {"pid": pid, "rss_kib": _kib(st.get("VmRSS")), "hwm_kib": _kib(st.get("VmHWM")),
            "pss_kib": _pss(pid), "threads": int(st.get("Threads", "0"))}


def _group(pid):
    pids = [pid] + _children(pid)
    items = [x for x in (_one(p) for p in pids) if x]
    return {"pid": pid, "processes": len(items),
            "rss_kib": sum(x["rss_kib"] for x in items),
            "pss_kib": sum(x["pss_kib"] for x in items),
            "hwm_kib": max((x["hwm_kib"] for x in items), default=0),
            "threads": sum(x["threads"] for x in items)}


def _ticks(pid, children_reaped=False):
    """utime + stime of a process (all its threads), plus the reaped children's when asked."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    rest = stat[stat.rfind(")") + 2:].split()
    t = int(rest[11]) + int(rest[12])          # utime, stime (fields 14, 15)
    if children_reaped:
        t += int(rest[13]) + int(rest[14])     # cutime, cstime (fields 16, 17)
    return t


def _machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    return sum(v) - v[3] - v[4]


def cmd_cpu(a):
    run = os.path.join(a.var, "run")
    groups = {}
    for name in sorted(os.listdir(run)) if os.path.isdir(run) else []:
        if not name.endswith(".pid"):
            continue
        pid = _read_pid(os.path.join(run, name))
        if pid is None:
            continue
        svc = name[:-4]
        if svc == "nginx":
            groups[svc] = _ticks(pid, True) + sum(_ticks(k) for k in _children(pid))
        else:
            groups[svc] = _ticks(pid)
    pg = _read_pid(os.path.join(a.var, "pg", "postmaster.pid"))
    if pg:
        groups["postgres"] = _ticks(pg, True) + sum(_ticks(k) for k in _children(pg))
    print(json.dumps({"hz": os.sysconf("SC_CLK_TCK"), "machine_busy": _machine_busy(),
                      "ncpu": os.cpu_count(), "groups": groups}))


def cmd_rss(a):
    run = os.path.join(a.var, "run")
    rows = []
    for name in sorted(os.listdir(run)) if os.path.isdir(run) else []:
        if not name.endswith(".pid"):
            continue
        svc = name[:-4]
        pid = _read_pid(os.path.join(run, name))
        if pid is None:
            continue
        if svc == "nginx":
            rows.append(dict(_group(pid), name="nginx", kind="context"))
        else:
            one = _one(pid)
            if one:
                rows.append(dict(one, name=svc, kind="service", processes=1))
    pg = _read_pid(os.path.join(a.var, "pg", "postmaster.pid"))
    if pg:
        rows.append(dict(_group(pg), name="postgres", kind="context"))
    for r in rows:
        r["phase"] = a.phase
        print(json.dumps(r))


# ------------------------------------------------------------------ parsing

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def parse_wrk(path):
    r = {"rps": None, "p50": None, "p90": None, "p99": None, "non2xx": 0, "errors": 0,
         "requests": None}
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("90", "p90"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.0+)?%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"(\d+) requests in", text)
    if m:
        r["requests"] = int(m.group(1))
    return r


def parse_login(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("RESULT "):
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                return {"rate": float(kv["rate"]), "p50": float(kv["p50_ms"]),
                        "p90": float(kv["p90_ms"]), "p99": float(kv["p99_ms"]),
                        "max": float(kv["max_ms"]), "logins": int(kv["logins"]),
                        "failures": int(kv["failures"]), "accounts": int(kv["accounts"]),
                        "attempts_all": int(kv.get("attempts_all", kv["logins"]))}
    return None


def cpu_per_op(dirpath, name, ops):
    """CPU per operation (µs) of each stack group and of the load generator, from the
    snapshots bench/run took around the measurement, and how busy the rest of the machine was
    (cores). None when the snapshots are missing."""
    try:
        with open(os.path.join(dirpath, name + ".cpu0")) as f:
            c0 = json.load(f)
        with open(os.path.join(dirpath, name + ".cpu1")) as f:
            c1 = json.load(f)
    except (OSError, ValueError):
        return None
    elapsed = gen = None
    try:
        with open(os.path.join(dirpath, name + ".time")) as f:
            e, u, sy = f.read().split()[-3:]
        elapsed, gen = float(e), float(u) + float(sy)
    except (OSError, ValueError):
        pass
    hz = float(c1["hz"])
    per = {}
    for g, t1 in c1["groups"].items():
        t0 = c0["groups"].get(g, 0)
        per[g] = (t1 - t0) / hz
    busy = (c1["machine_busy"] - c0["machine_busy"]) / hz
    out = {"ops": ops, "elapsed": elapsed}
    if ops:
        out["us"] = {g: v / ops * 1e6 for g, v in per.items()}
        out["gen_us"] = gen / ops * 1e6 if gen is not None else None
    if elapsed:
        ours = sum(per.values()) + (gen or 0)
        out["busy_cores"] = busy / elapsed
        out["other_cores"] = max(0.0, (busy - ours) / elapsed)
    return out


def cmd_busy(a):
    import time
    b0 = _machine_busy()
    time.sleep(a.seconds)
    print("%.2f" % ((_machine_busy() - b0) / os.sysconf("SC_CLK_TCK") / a.seconds))


# ------------------------------------------------------------------ summary

def _f(x, fmt="%.0f"):
    return "n/a" if x is None else fmt % x


def _mib(kib):
    return kib / 1024.0


def cmd_summary(a):
    rows = []
    with open(os.path.join(a.dir, "results.tsv")) as f:
        for line in f:
            if line.strip():
                rows.append(line.rstrip("\n").split("\t"))
    wrk, login = [], []
    for kind, label, param, raw in rows:
        path = raw if os.path.isabs(raw) else os.path.join(a.dir, raw)
        if kind == "wrk":
            r = parse_wrk(path)
            r["cpu"] = cpu_per_op(a.dir, raw, r["requests"])
            wrk.append((label, int(param), r))
        elif kind == "login":
            r = parse_login(path)
            if r:
                r["cpu"] = cpu_per_op(a.dir, raw, r["attempts_all"])
            login.append((label, int(param), r))
    rss = []
    rss_path = os.path.join(a.dir, "rss.jsonl")
    if os.path.exists(rss_path):
        with open(rss_path) as f:
            rss = [json.loads(x) for x in f if x.strip()]

    out = []
    w = out.append
    w("# bligate benchmark: accounts service")
    w("")
    if a.machine and os.path.exists(a.machine):
        with open(a.machine) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    w("- " + line)
        w("")

    static = {c: r for (l, c, r) in wrk if l == "nginx-static"}
    best_static = max((r["rps"] or 0 for r in static.values()), default=0)
    if wrk:
        w("## HTTP throughput (wrk, %s)" % (a.wrk_desc or "2 threads"))
        w("")
        w("| target | connections | req/s | p50 ms | p90 ms | p99 ms | vs nginx static | non-2xx | socket errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"nginx-static": "nginx static file `/bench/static.json`",
             "me-direct": "`GET /v1/auth/me` on accounts (direct)",
             "me-gateway": "`GET /v1/auth/me` through the gateway"}
    for label, conns, r in wrk:
        base = static.get(conns, {}).get("rps")
        ratio = (r["rps"] / base) if (r["rps"] and base) else None
        w("| %s | %d | %s | %s | %s | %s | %s | %d | %d |" % (
            names.get(label, label), conns, _f(r["rps"]), _f(r["p50"], "%.2f"),
            _f(r["p90"], "%.2f"), _f(r["p99"], "%.2f"),
            "—" if label == "nginx-static" else _f(ratio * 100 if ratio else None, "%.0f %%"),
            r["non2xx"], r["errors"]))
    if wrk:
        w("")

    verdicts = []
    me = [(c, r) for (l, c, r) in wrk if l == "me-direct"]
    if me and best_static:
        c, r = max(me, key=lambda x: x[1]["rps"] or 0)
        bad = any(x["non2xx"] or x["errors"] for _, x in me)
        ratio = (r["rps"] or 0) / best_static
        verdicts.append("`/v1/auth/me` direct, best %s req/s (%d connections, p50 %s ms, p99 %s ms) "
                        "= **%.0f %%** of nginx's best static %s req/s (target ≥ %.0f %%): %s%s" % (
                            _f(r["rps"]), c, _f(r["p50"], "%.2f"), _f(r["p99"], "%.2f"),
                            ratio * 100, _f(best_static), TARGET_RATIO * 100,
                            "**met**" if ratio >= TARGET_RATIO else "**missed**",
                            " (some replies were not 2xx or had socket errors: not valid)" if bad else ""))

    if login:
        w("## Certificate logins (bench/loginbench: challenge + ECDSA signature + session, end to end)")
        w("")
        w("| target | threads | accounts | logins/s | p50 ms | p90 ms | p99 ms | max ms | failures |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lnames = {"login-direct": "accounts (direct)", "login-gateway": "through the gateway"}
    for label, threads, r in login:
        if r is None:
            w("| %s | %d | — | no result | | | | | |" % (lnames.get(label, label), threads))
            continue
        w("| %s | %d | %d | %s | %.2f | %.2f | %.2f | %.2f | %d |" % (
            lnames.get(label, label), threads, r["accounts"], _f(r["rate"]), r["p50"], r["p90"],
            r["p99"], r["max"], r["failures"]))
    if login:
        w("")
    for label in ("login-direct", "login-gateway"):
        runs = [(t, r) for (l, t, r) in login if l == label and r]
        if not runs:
            continue
        t, r = max(runs, key=lambda x: x[1]["rate"])
        verdicts.append("logins %s, best **%.0f/s** (%d threads, p50 %.2f ms, p99 %.2f ms; "
                        "target ≥ %.0f/s): %s%s" % (
                            lnames[label], r["rate"], t, r["p50"], r["p99"], TARGET_LOGINS,
                            "**met**" if r["rate"] >= TARGET_LOGINS else "**missed**",
                            " (%d failed logins)" % r["failures"] if r["failures"] else ""))

    cpu_rows = [(names.get(l, l), "%d conn." % c, r) for l, c, r in wrk] + \
        [(lnames.get(l, l) + " logins", "%d thr." % t, r) for l, t, r in login if r]
    if any(r.get("cpu") for _, _, r in cpu_rows):
        groups = sorted({g for _, _, r in cpu_rows if r.get("cpu") and "us" in r["cpu"]
                         for g in r["cpu"]["us"]})
        w("## Where the CPU goes (µs of CPU per request or per login)")
        w("")
        w("From /proc: the processes' user + system time over the measurement divided by the "
          "requests (logins) made; the load generator's from /usr/bin/time. The ceiling column "
          "is what %d cores could serve if only the stack used them. \"other\" is CPU used by "
          "processes outside the benchmark during the row (cores): when it is not near 0 the row "
          "is disturbed." % (os.cpu_count() or 1))
        w("")
        w("| row | | %s | stack total | load generator | ceiling /s | machine busy | other |" %
          " | ".join(groups))
        w("|---|---|%s---:|---:|---:|---:|---:|" % ("---:|" * len(groups)))
        for name, param, r in cpu_rows:
            c = r.get("cpu")
            if not c or "us" not in c:
                continue
            tot = sum(c["us"].get(g, 0) for g in groups)
            w("| %s | %s | %s | %.0f | %s | %s | %s | %s |" % (
                name, param, " | ".join("%.0f" % c["us"].get(g, 0) for g in groups), tot,
                _f(c.get("gen_us")), _f((os.cpu_count() or 1) * 1e6 / tot if tot else None),
                _f(c.get("busy_cores"), "%.2f"), _f(c.get("other_cores"), "%.2f")))
        w("")

    if rss:
        w("## Memory")
        w("")
        w("Services: VmRSS of the process; nginx and PostgreSQL: sums over master and "
          "workers/backends (RSS double-counts their shared memory, PSS does not).")
        w("")
        w("| process | phase | processes | threads | RSS MiB | PSS MiB | peak RSS (VmHWM) MiB |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for x in rss:
            w("| %s | %s | %d | %d | %.1f | %.1f | %.1f |" % (
                x["name"], x["phase"], x.get("processes", 1), x["threads"], _mib(x["rss_kib"]),
                _mib(x["pss_kib"]), _mib(x["hwm_kib"])))
        w("")
        last = {}
        for x in rss:
            if x["kind"] == "service":
                last[x["name"]] = x
        for name, x in sorted(last.items()):
            mib = _mib(x["rss_kib"])
            verdicts.append("%s idle RSS after the load **%.1f MiB** (peak %.1f MiB; target < %.0f MiB): %s" % (
                name, mib, _mib(x["hwm_kib"]), TARGET_RSS_MIB,
                "**met**" if mib < TARGET_RSS_MIB else "**missed**"))

    w("## Verdict")
    w("")
    for v in verdicts:
        w("- " + v)
    w("")
    text = "\n".join(out)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.out)
    sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rss")
    p.add_argument("--var", required=True)
    p.add_argument("--phase", required=True)
    p.set_defaults(fn=cmd_rss)
    p = sub.add_parser("busy")
    p.add_argument("--seconds", type=float, default=2.0)
    p.set_defaults(fn=cmd_busy)
    p = sub.add_parser("cpu")
    p.add_argument("--var", required=True)
    p.set_defaults(fn=cmd_cpu)
    p = sub.add_parser("summary")
    p.add_argument("--dir", required=True)
    p.add_argument("--out")
    p.add_argument("--machine")
    p.add_argument("--wrk-desc")
    p.set_defaults(fn=cmd_summary)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
