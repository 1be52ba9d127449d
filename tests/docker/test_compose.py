"""docker/compose.yaml is complete (issue 8): read as docker-compose resolves it, every image is
built from a Dockerfile here and every Dockerfile is used, every file a service is told about
(BLIGATE_*_FILE) is mounted into it, every secret is produced by docker/gen-secrets, the
services' OAuth clients get the scopes the development stack gives them, and the containers
are started in an order that works. `docker-compose config -q` itself is the ctest test
docker_compose_config."""

import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SERVICES = ("accounts", "workflow", "bliproxy", "audit")
LONG_RUNNING = SERVICES + ("bli-sandbox", "gateway", "postgres")


@pytest.fixture(scope="module")
def compose():
    """The file as docker-compose resolves it (anchors merged, variables at their defaults)."""
    exe = shutil.which("docker-compose")
    if not exe:
        pytest.fail("docker-compose is missing: scripts/bootstrap installs it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLIGATE_")}
    r = subprocess.run([exe, "-f", str(DOCKER / "compose.yaml"), "config"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """docker/gen-secrets run into a scratch directory: {secrets dir, config dir}."""
    d = tmp_path_factory.mktemp("compose")
    r = subprocess.run([str(DOCKER / "gen-secrets"), str(d)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {"secrets": d / "secrets", "config": d / "config"}


def stack_scopes():
    text = (REPO / "scripts" / "stack").read_text()
    block = re.search(r"declare -A SCOPES=\((.*?)\n\)", text, re.S).group(1)
    return {m.group(1): m.group(2).split() for m in re.finditer(r'\[([a-z-]+)\]="([^"]*)"', block)}


def test_no_top_level_name_key():
    # docker-compose 1.29 refuses it (PITFALLS.md); the project name comes from -p or the folder
    raw = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert "name" not in raw
    assert "version" not in raw


def test_every_image_is_built_here_and_every_dockerfile_used(compose):
    used = set()
    for name, svc in compose["services"].items():
        if name == "postgres":
            assert svc["image"].startswith("postgres:15")
            continue
        b = svc.get("build")
        assert b, f"{name} has no build section"
        assert pathlib.Path(b["context"]).resolve() == REPO, f"{name}: the build context must be the repository"
        df = REPO / b["dockerfile"]
        assert df.is_file(), f"{name}: {df} is missing"
        used.add(df.name)
    assert used == {p.name for p in DOCKER.glob("*.Dockerfile")}


def test_long_running_services_restart_and_are_checked(compose):
    for name in LONG_RUNNING:
        svc = compose["services"][name]
        assert svc.get("restart") == "unless-stopped", name
        if name == "postgres":
            assert svc["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
        else:
            text = (REPO / svc["build"]["dockerfile"]).read_text()
            assert re.search(r"^HEALTHCHECK ", text, re.M), f"{name}: its image has no HEALTHCHECK"
            assert re.search(r"^USER 10001", text, re.M), f"{name}: its image runs as root"
    # only the gateway is reachable from outside, by default on the host's loopback
    published = {n for n, s in compose["services"].items() if s.get("ports")}
    assert published == {"gateway"}
    port = compose["services"]["gateway"]["ports"][0]
    host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]   # v2 long / 1.29 short
    assert host_ip == "127.0.0.1"


def test_containers_are_hardened(compose):
    for name, svc in compose["services"].items():
        if name == "postgres":
            continue
        assert svc.get("read_only") is True, name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def test_file_variables_point_at_mounted_files(compose, generated):
    top = compose.get("secrets", {})
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        secrets = {s["source"] if isinstance(s, dict) else s for s in svc.get("secrets", [])}
        mounts = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in svc.get("volumes", [])]
        for key, value in env.items():
            if not (key.endswith("_FILE") and value):
                continue
            if value.startswith("/run/secrets/"):
                secret = value[len("/run/secrets/"):]
                assert secret in secrets, f"{name}: {key} names secret {secret}, which is not mounted"
                assert secret in top, f"{name}: secret {secret} is not declared"
            elif value.startswith("/etc/bligate/"):
                assert "/etc/bligate" in mounts, f"{name}: /etc/bligate is not mounted"
                assert (generated["config"] / value[len("/etc/bligate/"):]).is_file(), \
                    f"{name}: {key}={value} is not made by docker/gen-secrets"
            else:
                pytest.fail(f"{name}: {key}={value} is neither a secret nor a mounted config file")
        # and every mounted secret is used by something (the postgres init script reads its own)
        if name not in ("postgres", "accounts-clients"):
            for s in secrets:
                assert f"/run/secrets/{s}" in env.values(), f"{name}: secret {s} is mounted but unused"


def test_gen_secrets_makes_every_secret(compose, generated):
    for name, spec in compose["secrets"].items():
        assert pathlib.Path(spec["file"]).name == name
        f = generated["secrets"] / name
        assert f.is_file() and f.stat().st_size > 0, f"docker/gen-secrets does not make {name}"
        if os.geteuid() == 0:
            assert f.stat().st_mode & 0o777 == 0o440 and f.stat().st_uid == 10001, name
    pw = (DOCKER / "postgres" / "20-passwords.sql").read_text()
    for s in SERVICES:
        for role in (f"bligate_{s}_owner", f"bligate_{s}"):
            assert f"ALTER ROLE {role} PASSWORD" in pw
    # the sandbox's certificate is for the name bliproxy calls it by
    r = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                        str(generated["config"] / "sandbox.crt")], capture_output=True, text=True)
    assert "DNS:bli-sandbox" in r.stdout, r.stdout + r.stderr


def test_client_scopes_match_the_development_stack(compose):
    script = compose["services"]["accounts-clients"]["command"][0]
    got = {m.group(1): m.group(2).split()
           for m in re.finditer(r'add-client --id (\S+) --secret-file \S+ --scopes "([^"]*)"', script)}
    assert got == stack_scopes()


def test_start_order(compose):
    svcs = compose["services"]

    def after(name):
        return svcs[name].get("depends_on", {})

    for s in SERVICES:
        assert svcs[f"{s}-migrate"]["command"] == ["migrate"]
        assert after(f"{s}-migrate")["postgres"]["condition"] == "service_healthy"
        assert after(s)[f"{s}-migrate"]["condition"] == "service_completed_successfully"
        owner = svcs[f"{s}-migrate"]["environment"]
        assert f"user=bligate_{s}_owner" in owner["BLIGATE_DB_OWNER_URL"]
        assert owner["BLIGATE_DB_PASSWORD_FILE"] == f"/run/secrets/db_{s}_owner_password"
        env = svcs[s]["environment"]
        assert f"user=bligate_{s} " in env["BLIGATE_DB_URL"] + " "
        assert env["BLIGATE_CLIENT_ID"] == s
        if s != "accounts":
            # they fetch the token keys from accounts when they start
            assert after(s)["accounts"]["condition"] == "service_healthy"
        assert after("gateway")[s]["condition"] == "service_healthy"
    assert after("accounts")["accounts-clients"]["condition"] == "service_completed_successfully"
    # the services believe X-Forwarded-For from the gateway's fixed address only
    gw_ip = svcs["gateway"]["networks"]["bligate"]["ipv4_address"]
    for s in SERVICES:
        assert svcs[s]["environment"]["BLIGATE_TRUSTED_PROXIES"] == gw_ip


def test_operator_guide_names_every_variable():
    """docker/README.md lists every BLIGATE_* variable the services and the images' scripts read."""
    names = set()
    for pattern in ("services/**/*.c", "shared/**/*.c"):
        for f in REPO.glob(pattern):
            names |= set(re.findall(r'"(BLIGATE_[A-Z0-9_]+)"', f.read_text(errors="replace")))
    for f in ("bligate-entrypoint", "bligate-healthcheck", "gateway-entrypoint"):
        names |= {n for n in re.findall(r"\b(BLIGATE_[A-Z0-9_]+)", (DOCKER / f).read_text()) if not n.endswith("_")}
    guide = set(re.findall(r"\b(BLIGATE_[A-Z0-9_]+)", (DOCKER / "README.md").read_text()))
    assert names - guide == set(), "missing from docker/README.md"
