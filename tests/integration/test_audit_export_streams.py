"""The NDJSON export holds no database connection while it waits on its reader: an audit replica
on the same database with a pool of two connections streams more exports than it has
connections, each paused by a reader that does not read; the replica's intake (every service's
audit append: without it the whole system fails closed) and a page of the log still answer. The
exports then complete, each exactly the events below the tree size fixed when it started --
over more than one chunk of rows, and whatever was appended meanwhile."""

import os
import re
import socket
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

import auditlib
from conftest import start_service
from oversight_helpers import secret

POOL = 2  # the least BLIGATE_DB_POOL takes
STREAMS = POOL + 2
PAD = 100_000  # characters of padding in each large event
SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def replica(stack, tmp_path):
    """A second audit service (as scripts/stack configures one) with BLIGATE_DB_POOL=2: its URL."""
    port = free_port()
    pki = stack["PKI"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "BLIGATE_LISTEN_ADDR": "127.0.0.1", "BLIGATE_LISTEN_PORT": str(port), "BLIGATE_DB_POOL": str(POOL),
           "BLIGATE_DB_URL": f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user=bligate_audit",
           "BLIGATE_ACCOUNTS_URL": stack["BLIGATE_ACCOUNTS_URL"],
           "BLIGATE_JWKS_URL": stack["BLIGATE_ACCOUNTS_URL"] + "/.well-known/jwks.json",
           "BLIGATE_CLIENT_ID": "audit",
           "BLIGATE_CLIENT_SECRET_FILE": os.path.join(stack["BLIGATE_SECRETS_DIR"], "audit.client-secret"),
           "BLIGATE_AUDIT_KEY_FILE": os.path.join(pki, "audit-signing.key"),
           "BLIGATE_ID_HMAC_KEY_FILE": os.path.join(pki, "id-hmac.key")}
    previous = os.path.join(pki, "audit-previous-keys.pem")
    if os.path.exists(previous) and os.path.getsize(previous):
        env["BLIGATE_AUDIT_PREVIOUS_KEYS_FILE"] = previous
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "audit-replica.log"
    proc = start_service(os.path.join(os.environ["BLIGATE_BIN_DIR"], "bligate-audit"), env, base, str(log))
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert not SANITIZER.search(text), text[-4000:]


class SlowReader(HTTPAdapter):
    """A receive buffer of 4 KiB: once the service's own socket buffer is full, its writes wait
    on this reader."""

    def init_poolmanager(self, *args, **kw):
        kw["socket_options"] = HTTPConnection.default_socket_options + [
            (socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
        super().init_poolmanager(*args, **kw)


def open_export(base, token, params):
    s = requests.Session()
    s.mount("http://", SlowReader())
    r = s.get(base + "/v1/audit/events", params=params, stream=True, timeout=60,
              headers={"Accept": "application/x-ndjson", "Authorization": "Bearer " + token})
    return s, r


def large_total():
    """More than the buffers between the service and a reader that does not read can take (the
    kernel's largest TCP send buffer, and a MiB for the reader's 4 KiB and the service's own),
    so that an export of this much cannot finish while its reader is paused. The log keeps it:
    as little as that."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        wmem = 4 << 20
    return wmem + (1 << 20)


def test_paused_exports_leave_the_pool_to_intake(replica, stack, login, client):
    tokens = client()
    kind = "export-pool-" + uuid.uuid4().hex[:12]

    def ev(**details):
        return {"id": str(uuid.uuid4()), "type": "test.export_pool", "time": "2026-01-02T03:04:05Z",
                "outcome": "success", "object": {"kind": kind, "id": uuid.uuid4().hex}, "details": details}

    def intake(base):
        c = client(base)
        c.token = tokens.client_token("accounts", secret(stack, "accounts"))
        return c

    # the export: large events first (more than the socket buffers hold), then more than a chunk
    # (1000 rows) of small ones, so that the export continues after its reader has waited
    large = [ev(n=i, pad="x" * PAD) for i in range(-(-large_total() // PAD))]
    small = [ev(n=i) for i in range(1100)]
    main = intake(stack["BLIGATE_AUDIT_URL"])
    indices = []
    for k in range(0, len(large), 30):  # 3 MB bodies: the intake takes 4
        indices += [r["index"] for r in main.call("POST", "/internal/events", json={"events": large[k:k + 30]})[
            "results"]]
    for k in range(0, len(small), 1000):  # the most a batch holds
        indices += [r["index"] for r in main.call("POST", "/internal/events", json={"events": small[k:k + 1000]})[
            "results"]]
    assert indices == sorted(indices)
    size = indices[-1] + 1
    want = large + small

    reader = login("ethics1")
    streams = []
    try:
        for _ in range(STREAMS):
            s, r = open_export(replica, reader.token, {"object_kind": kind, "tree_size": size})
            lines = r.iter_lines()
            streams.append((s, r, lines))
            assert r.status_code == 200, r.text
            assert r.headers["X-Tree-Size"] == str(size)
            # its first rows are read: the rest waits on this reader
            assert auditlib.loads(next(lines))["index"] == indices[0]
        # every stream is open and paused; the replica's intake and a page of the log answer
        late = [ev(n="late-1"), ev(n="late-2")]
        got = intake(replica).post("/internal/events", json={"events": late})
        assert got.status_code == 200, got.text
        assert got.json()["appended"] == 2 and got.json()["results"][0]["index"] >= size
        page = client(replica)
        page.token = reader.token
        items = page.call("GET", "/v1/audit/events", params={"object_kind": kind, "limit": 2})
        assert [i["event"]["id"] for i in items["items"]] == [e["id"] for e in want[:2]]
        # each export completes, exactly the events below its tree size, none appended later
        for s, r, rest in streams:
            lines = [auditlib.loads(x) for x in rest if x]
            assert [x["index"] for x in lines] == indices[1:]
            assert [x["event"]["id"] for x in lines] == [e["id"] for e in want[1:]]
            for x in lines:
                assert x["event"]["source"] == "accounts"
                assert x["leaf_hash"] == auditlib.leaf_hash(auditlib.canonical(x["event"])).hex()
    finally:
        for s, r, _ in streams:
            r.close()
            s.close()
