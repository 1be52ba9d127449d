"""docker/compose.yaml run without a Docker engine (issue 8): what docker-compose would start,
started here as processes, so the file's wiring is tested, not only its syntax.

Each compose service becomes a process with exactly the environment compose gives it (from
`docker-compose config`, the image's ENV defaults first), through the images' own entrypoint
and health-check scripts; the only translations are the ones a container would not need:
service names → 127.0.0.1 and free ports, /run/secrets/<name> → the files docker/gen-secrets
made, /etc/bligate → its config directory. PostgreSQL is initialised the way the postgres image
does it (superuser password from its secret, scram for TCP, the database, then
docker/postgres/*.sql). Services start in depends_on order, each condition awaited
(service_healthy: the image's HEALTHCHECK command passes). Then, through the gateway: the first
administrator made as an operator would (`bootstrap-admin`), a certificate login, each service's
API with that token, and the login's event on the audit log under a signed tree head."""

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
sys.path.insert(0, str(REPO / "scripts" / "lib"))

from bligate_dev import devpki  # noqa: E402
from bligate_dev.client import Client  # noqa: E402

PORTS = {"gateway": 0, "accounts": 1, "workflow": 2, "bliproxy": 3, "audit": 4, "bli-sandbox": 10, "postgres": 32}
CONTAINER_PORTS = {"accounts": 8081, "workflow": 8082, "bliproxy": 8083, "audit": 8084, "bli-sandbox": 8090}
PG_USER = "bligate"


def pg_bindir():
    for d in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "pg_ctl").exists():
            return d
    pytest.fail("PostgreSQL server binaries not found (scripts/bootstrap installs them)")


def free_base():
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 60000:
            continue
        ok = True
        for off in PORTS.values():
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + off))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.fail("no free ports")


def image_defaults(dockerfile):
    """ENV and ENTRYPOINT of a Dockerfile's final stage."""
    text = (REPO / dockerfile).read_text()
    final = text[text.rindex("\nFROM "):]
    env = {}
    for m in re.finditer(r"^ENV (.+)$", final, re.M):
        for w in shlex.split(m.group(1)):
            k, _, v = w.partition("=")
            env[k] = v
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M).group(1))
    health = re.search(r"^HEALTHCHECK .*?CMD (.+)$", final.replace("\\\n", " "), re.M).group(1).strip()
    return env, entry, health


class Emulator:
    def __init__(self, compose, work, bindir):
        self.compose = compose
        self.work = work
        self.bindir = bindir
        self.base = free_base()
        self.procs = {}
        self.logs = work / "log"
        self.logs.mkdir()
        self.secrets = work / "docker" / "secrets"
        self.config = work / "docker" / "config"
        self.path = work / "bin"
        self.path.mkdir()
        # what the images put on PATH: the service binaries and the docker/ scripts
        for s in CONTAINER_PORTS:
            (self.path / f"bligate-{s}").symlink_to(bindir / f"bligate-{s}")
        (self.path / "bligate").symlink_to(bindir / "bligate")
        for f in ("bligate-entrypoint", "bligate-healthcheck", "gateway-entrypoint"):
            (self.path / f).symlink_to(DOCKER / f)

    def port(self, name):
        return self.base + PORTS[name]

    def translate(self, value):
        value = str(value)
        value = value.replace("/run/secrets/", f"{self.secrets}/").replace("/etc/bligate", str(self.config))
        value = re.sub(r"\bhost=postgres\b", f"host=127.0.0.1 port={self.port('postgres')}", value)
        for s, p in CONTAINER_PORTS.items():
            value = value.replace(f"://{s}:{p}", f"://127.0.0.1:{self.port(s)}")
        return value

    def env_of(self, name, overrides=None):
        svc = self.compose["services"][name]
        env = {"PATH": f"{self.path}:/usr/sbin:/usr/bin:/bin", "TMPDIR": str(self.work / "tmp"),
               "ASAN_OPTIONS": "detect_leaks=0"}
        df = svc["build"]["dockerfile"]
        image_env, _, _ = image_defaults(df)
        env.update(image_env)
        env.update({k: "" if v is None else str(v) for k, v in (svc.get("environment") or {}).items()})
        env = {k: self.translate(v) for k, v in env.items()}
        short = name.split("-migrate")[0].split("-clients")[0]
        if short in CONTAINER_PORTS:
            env["BLIGATE_LISTEN_ADDR"] = "127.0.0.1"
            env["BLIGATE_LISTEN_PORT"] = str(self.port(short))
        env.update(overrides or {})
        return env

    def argv_of(self, name):
        svc = self.compose["services"][name]
        _, entry, _ = image_defaults(svc["build"]["dockerfile"])
        entry = svc.get("entrypoint") or entry
        return [self.translate(a) for a in list(entry) + list(svc.get("command") or [])]

    # ---- PostgreSQL, as the official image initialises it

    def start_postgres(self):
        pgbin = pg_bindir()
        svc = self.compose["services"]["postgres"]
        env = svc["environment"]
        data = self.work / "pg"
        run = self.work / "pgrun"
        pwfile = self.work / "pgpw"
        shutil.copy(self.secrets / pathlib.Path(env["POSTGRES_PASSWORD_FILE"]).name, pwfile)
        as_pg = []
        if os.geteuid() == 0:
            if subprocess.run(["getent", "passwd", PG_USER], capture_output=True).returncode != 0:
                subprocess.run(["/usr/sbin/useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                                "/nonexistent", "--shell", "/usr/sbin/nologin", PG_USER], check=True)
            data.mkdir()
            run.mkdir()
            shutil.chown(data, PG_USER, PG_USER)
            shutil.chown(run, PG_USER, PG_USER)
            shutil.chown(pwfile, PG_USER, PG_USER)
            (self.logs / "postgres.log").touch()
            shutil.chown(self.logs / "postgres.log", PG_USER, PG_USER)
            as_pg = ["/usr/sbin/runuser", "-u", PG_USER, "--"]
        initdb_args = env.get("POSTGRES_INITDB_ARGS", "").split()
        r = subprocess.run(as_pg + [str(pgbin / "initdb"), "-D", str(data), "-U", env["POSTGRES_USER"],
                                    f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                                    *initdb_args], capture_output=True, text=True, cwd="/")
        assert r.returncode == 0, r.stderr
        # the server's options as compose gives them (command: postgres -c ...), on our port
        opts = " ".join(shlex.quote(a) for a in svc["command"][1:])
        opts += f" -c listen_addresses=127.0.0.1 -p {self.port('postgres')} -k {run}"
        r = subprocess.run(as_pg + [str(pgbin / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                                    str(self.logs / "postgres.log"), "-w", "-t", "60", "start"],
                           capture_output=True, text=True, cwd="/")
        assert r.returncode == 0, r.stdout + r.stderr + self.log_tail("postgres")
        self.pg = (as_pg, pgbin, data)
        psql = [str(pgbin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(run),
                "-p", str(self.port("postgres")), "-U", env["POSTGRES_USER"]]
        subprocess.run(psql + ["-d", "postgres", "-c", f"CREATE DATABASE {env['POSTGRES_DB']}"], check=True)
        # /docker-entrypoint-initdb.d, in name order, with the paths of this machine
        scripts = sorted((v.split(":")[0], v.split(":")[1]) for v in svc["volumes"]
                         if ":/docker-entrypoint-initdb.d/" in v)
        for src, target in sorted(scripts, key=lambda p: p[1]):
            sql = pathlib.Path(src).read_text().replace("/run/secrets/", f"{self.secrets}/")
            r = subprocess.run(psql + ["-d", env["POSTGRES_DB"]], input=sql, capture_output=True, text=True)
            assert r.returncode == 0, f"{target}: {r.stderr}"
        self.health["postgres"] = True

    def stop_postgres(self):
        if getattr(self, "pg", None):
            as_pg, pgbin, data = self.pg
            subprocess.run(as_pg + [str(pgbin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, cwd="/")

    # ---- the other services

    def start(self, name):
        log = open(self.logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(self.argv_of(name), env=self.env_of(name), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=str(self.work), start_new_session=True)

    def start_gateway(self):
        share = self.work / "gateway-share"
        (share / "openapi").mkdir(parents=True)
        (share / "swagger-ui").mkdir()
        shutil.copy(REPO / "scripts" / "nginx" / "nginx.conf.in", share)
        shutil.copytree(REPO / "scripts" / "nginx" / "docs", share / "docs")
        shutil.copy(REPO / "openapi" / "build" / "openapi.yaml", share / "openapi")
        for f in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
            shutil.copy(REPO / "node_modules" / "swagger-ui-dist" / f, share / "swagger-ui")
        env = self.env_of("gateway", {
            "BLIGATE_GATEWAY_SHARE": str(share), "BLIGATE_GATEWAY_STATE": str(self.work / "gateway-state"),
            "BLIGATE_GATEWAY_LISTEN": f"127.0.0.1:{self.port('gateway')}",
            **{f"BLIGATE_UPSTREAM_{s.upper()}": f"127.0.0.1:{self.port(s)}"
               for s in ("accounts", "workflow", "bliproxy", "audit")}})
        log = open(self.logs / "gateway.log", "ab")
        self.procs["gateway"] = subprocess.Popen(["gateway-entrypoint"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.gateway_env = env

    def healthy(self, name):
        """The image's own HEALTHCHECK command, in the service's environment."""
        svc = self.compose["services"][name]
        _, _, health = image_defaults(svc["build"]["dockerfile"])
        env = self.gateway_env if name == "gateway" else self.env_of(name)
        if health.startswith("["):
            argv = json.loads(health)
        else:
            port = env["BLIGATE_GATEWAY_LISTEN"].rsplit(":", 1)[-1]
            argv = ["sh", "-c", health.replace("${BLIGATE_GATEWAY_LISTEN##*:}", port)]
        return subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode == 0

    def wait(self, name, condition, deadline):
        while time.monotonic() < deadline:
            p = self.procs.get(name)
            if condition == "service_completed_successfully":
                if p and p.poll() is not None:
                    assert p.returncode == 0, f"{name} exited {p.returncode}: {self.log_tail(name)}"
                    return
            elif condition == "service_healthy":
                if name == "postgres" or self.health.get(name):
                    return
                assert p and p.poll() is None, f"{name} exited {p and p.returncode}: {self.log_tail(name)}"
                if self.healthy(name):
                    self.health[name] = True
                    return
            else:
                return
            time.sleep(0.1)
        pytest.fail(f"{name} did not become {condition}: {self.log_tail(name)}")

    def log_tail(self, name):
        f = self.logs / f"{name}.log"
        return f.read_text(errors="replace")[-3000:] if f.exists() else "(no log)"

    def up(self, timeout=120):
        """Every service in depends_on order, as `docker compose up` would."""
        self.health = {}
        (self.work / "tmp").mkdir()
        deadline = time.monotonic() + timeout
        pending = dict(self.compose["services"])
        started = set()
        self.start_postgres()
        started.add("postgres")
        pending.pop("postgres")
        while pending:
            ready = [n for n, s in pending.items() if set(s.get("depends_on", {})) <= started]
            assert ready, f"depends_on cannot be satisfied: {sorted(pending)}"
            for name in ready:
                for dep, cond in pending[name].get("depends_on", {}).items():
                    self.wait(dep, cond["condition"], deadline)
                if name == "gateway":
                    self.start_gateway()
                else:
                    self.start(name)
                started.add(name)
                pending.pop(name)
        for name in ("accounts", "workflow", "bliproxy", "audit", "bli-sandbox", "gateway"):
            self.wait(name, "service_healthy", deadline)

    def down(self):
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGQUIT if name == "gateway" else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, p in self.procs.items():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.stop_postgres()


@pytest.fixture(scope="module")
def stack():
    bindir = pathlib.Path(os.environ.get("BLIGATE_BIN_DIR", REPO / "build" / "bin"))
    for s in list(CONTAINER_PORTS) + ["bligate"]:
        name = s if s == "bligate" else f"bligate-{s}"
        if not (bindir / name).exists():
            pytest.fail(f"{bindir / name} is missing: build first (BLIGATE_BIN_DIR names the bin directory)")
    r = subprocess.run(["docker-compose", "-f", str(DOCKER / "compose.yaml"), "config"], capture_output=True,
                       text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("BLIGATE_")})
    assert r.returncode == 0, r.stderr
    compose = yaml.safe_load(r.stdout)
    # nginx's workers (nobody, when run as root) read the share directory: no 0700 on the way
    work = pathlib.Path(tempfile.mkdtemp(prefix="bligate-compose-run-"))
    os.chmod(work, 0o755)
    (work / "docker").mkdir()
    r = subprocess.run([str(DOCKER / "gen-secrets"), str(work / "docker")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    emu = Emulator(compose, work, bindir)
    try:
        emu.up()
        yield emu
    finally:
        emu.down()
        if os.environ.get("BLIGATE_KEEP_COMPOSE_RUN") != "1":
            shutil.rmtree(work, ignore_errors=True)


def test_gateway_serves_the_contract_and_docs(stack):
    gw = f"http://127.0.0.1:{stack.port('gateway')}"
    assert requests.get(gw + "/readyz", timeout=10).status_code == 200
    r = requests.get(gw + "/docs/", timeout=10)
    assert r.status_code == 200 and "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert requests.get(gw + "/openapi.yaml", timeout=10).content == (REPO / "openapi" / "build" / "openapi.yaml").read_bytes()
    jwks = requests.get(gw + "/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200 and jwks.json()["keys"][0]["alg"] == "ES256"


def test_first_admin_logs_in_and_every_service_answers(stack, tmp_path):
    gw = f"http://127.0.0.1:{stack.port('gateway')}"
    # the operator's one-off command, in the accounts container's environment:
    #   docker compose run --rm accounts bootstrap-admin ...
    nid = "A123456789"
    cert = devpki.issue_user(str(stack.secrets / "dev-ca" / "citizen"), "王管理", nid, str(tmp_path / "admin"))
    r = subprocess.run(stack.argv_of("accounts") + ["bootstrap-admin", "--unit-code", "IT", "--unit-name", "資訊組",
                                                    "--name", "王管理", "--national-id", nid, "--cert", cert["cert"]],
                       env=stack.env_of("accounts"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

    c = Client(gw)
    before = requests.get(gw + "/v1/audit/tree-heads/latest", timeout=10)
    c.login(cert["cert"], cert["key"])
    me = c.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["account"]["name"] == "王管理"
    # workflow, bliproxy and audit verify the token with the keys they fetched from accounts
    assert c.get("/v1/legal-bases").status_code == 200
    assert c.get("/v1/bli/items").status_code == 200
    assert c.get("/v1/audit/events", params={"limit": 5}).status_code == 200

    # accounts' outbox reaches the log with its client credentials; a tree head signs it
    size0 = before.json()["tree_size"] if before.status_code == 200 else 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = requests.get(gw + "/v1/audit/tree-heads/latest", timeout=10)
        if r.status_code == 200 and r.json()["tree_size"] > size0:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the login's event never reached the audit log: {stack.log_tail('accounts')}")


def test_sandbox_demands_the_agency_certificate(stack):
    url = f"https://127.0.0.1:{stack.port('bli-sandbox')}/readyz"
    ca = str(stack.config / "bli-ca.crt")
    cert = (str(stack.config / "agency.crt"), str(stack.secrets / "bli_client_key"))
    assert requests.get(url, verify=ca, cert=cert, timeout=10).status_code == 200
    try:
        r = requests.get(url, verify=ca, timeout=10)
        assert r.status_code in (401, 403)
    except requests.exceptions.SSLError:
        pass   # refused during the handshake: as good
