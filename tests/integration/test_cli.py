"""The `bligate` command-line client against the real stack: certificate login (raw signature and
CMS, EC and RSA keys), whoami, refresh, logout, the token file's mode, and refusals with the
server's problem code. The binary comes from $BLIGATE_BIN_DIR (ctest sets it)."""

import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from conftest import REPO, devpki

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _binary():
    bin_dir = os.environ.get("BLIGATE_BIN_DIR") or str(REPO / "build" / "bin")
    path = os.path.join(bin_dir, "bligate")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no CLI binary at {path} (set BLIGATE_BIN_DIR)")
    return path


class Cli:
    """Runs the CLI with its own HOME and token file, pointed at the stack's gateway."""

    def __init__(self, binary, url, home):
        self.binary = binary
        self.home = pathlib.Path(home)
        self.token_file = self.home / "cfg" / "bligate" / "token"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BLIGATE_")}
        self.env.update({"HOME": str(self.home), "BLIGATE_URL": url, "BLIGATE_TOKEN_FILE": str(self.token_file)})
        self.env.pop("XDG_CONFIG_HOME", None)

    def run(self, *args, env=None):
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return subprocess.run([self.binary, *args], env=e, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)

    def login(self, cert, key, *extra):
        return self.run("login", "--cert", cert, "--key", key, *extra)

    def token(self):
        import json
        return json.loads(self.token_file.read_text())["access_token"]


@pytest.fixture
def cli(stack, tmp_path):
    return Cli(_binary(), stack["BLIGATE_GATEWAY_URL"], tmp_path)


def _no_secrets(proc, token):
    assert token not in proc.stdout and token not in proc.stderr
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("method", ["raw", "cms"])
def test_login_then_whoami_demo_querier(cli, demo, method):
    q = demo["querier1"]
    extra = ["--cms"] if method == "cms" else []
    p = cli.login(q["cert"], q["key"], *extra)
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(rf"signed in as querier1 \(({UUID})\), session ({UUID}), token expires in (\d+)s\n", p.stdout)
    assert m, p.stdout
    assert m.group(1) == q["unit_id"]
    assert int(m.group(3)) == 300
    sid = m.group(2)

    mode = stat.S_IMODE(cli.token_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(cli.token_file.parent.stat().st_mode) == 0o700
    token = cli.token()
    _no_secrets(p, token)

    w = cli.run("whoami")
    assert w.returncode == 0, w.stderr
    assert re.search(r"^name:\s+querier1$", w.stdout, re.M), w.stdout
    assert re.search(r"^roles:\s+querier$", w.stdout, re.M), w.stdout
    assert re.search(rf"^session:\s+{sid}$", w.stdout, re.M), w.stdout
    assert re.search(r"^idle expiry:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", w.stdout, re.M), w.stdout
    assert re.search(r"^absolute expiry:\s+\d{4}-\d\d-\d\dT", w.stdout, re.M), w.stdout
    assert q["unit_code"] in w.stdout
    _no_secrets(w, token)

    assert cli.run("logout").returncode == 0


def test_default_token_location_is_created_private(cli, person, tmp_path):
    p = person()
    env = {"BLIGATE_TOKEN_FILE": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    r = cli.run("login", "--cert", p["cert"], "--key", p["key"], env=env)
    assert r.returncode == 0, r.stderr
    token = tmp_path / "xdg" / "bligate" / "token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    # Without XDG_CONFIG_HOME: ~/.config/bligate/token.
    env = {"BLIGATE_TOKEN_FILE": None, "XDG_CONFIG_HOME": None}
    r = cli.run("login", "--cert", p["cert"], "--key", p["key"], env=env)
    assert r.returncode == 0, r.stderr
    home_token = tmp_path / ".config" / "bligate" / "token"
    assert stat.S_IMODE(home_token.stat().st_mode) == 0o600
    assert stat.S_IMODE(home_token.parent.stat().st_mode) == 0o700
    assert cli.run("whoami", env=env).returncode == 0
    assert cli.run("logout", env=env).returncode == 0
    assert not home_token.exists()


def test_logout_removes_the_token_and_ends_the_session(cli, person, tmp_path):
    p = person()
    assert cli.login(p["cert"], p["key"]).returncode == 0
    saved = tmp_path / "saved-token"
    shutil.copy2(cli.token_file, saved)

    out = cli.run("logout")
    assert out.returncode == 0, out.stderr
    assert "signed out" in out.stdout
    assert not cli.token_file.exists()

    gone = cli.run("whoami")
    assert gone.returncode == 1
    assert "not signed in" in gone.stderr

    # The old token, put back, is refused by the server: the session ended.
    shutil.copy2(saved, cli.token_file)
    old = cli.run("whoami")
    assert old.returncode == 1
    assert re.search(r"session-ended|unauthenticated", old.stderr), old.stderr
    # logout removes the file although the server says the session already ended
    again = cli.run("logout")
    assert again.returncode == 0, again.stderr
    assert "session-ended" in again.stderr
    assert not cli.token_file.exists()


def test_revoked_demo_certificate_is_refused(cli, demo):
    r = demo["revoked1"]
    p = cli.login(r["cert"], r["key"])
    assert p.returncode == 1
    assert "certificate-revoked" in p.stderr
    assert p.stdout == ""
    assert not cli.token_file.exists()


def test_revoked_certificate_is_refused_with_cms(cli, person, stack):
    p = person()
    devpki.revoke(stack["PKI"], p["serial"])
    out = cli.login(p["cert"], p["key"], "--cms")
    assert out.returncode == 1
    assert "certificate-revoked" in out.stderr
    assert not cli.token_file.exists()


@pytest.mark.parametrize("method", ["raw", "cms"])
def test_rsa_key(cli, person, method):
    p = person(key_type="rsa")
    extra = ["--cms"] if method == "cms" else []
    out = cli.login(p["cert"], p["key"], *extra)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"signed in as {p['name']} ({p['unit_id']})")
    assert cli.run("logout").returncode == 0


def test_refresh_stores_a_new_token(cli, person):
    p = person()
    assert cli.login(p["cert"], p["key"]).returncode == 0
    before = cli.token()
    r = cli.run("refresh")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rf"token refreshed, session {UUID}, token expires in \d+s\n", r.stdout), r.stdout
    after = cli.token()
    assert after != before
    assert stat.S_IMODE(cli.token_file.stat().st_mode) == 0o600
    _no_secrets(r, after)
    assert cli.run("whoami").returncode == 0
    assert cli.run("logout").returncode == 0


def test_a_token_file_others_can_read_is_refused(cli, person):
    p = person()
    assert cli.login(p["cert"], p["key"]).returncode == 0
    os.chmod(cli.token_file, 0o640)
    for cmd in ("whoami", "refresh"):
        r = cli.run(cmd)
        assert r.returncode == 1, cmd
        assert "group or others" in r.stderr
    # logout still ends the session whose token may have leaked, and removes the file
    out = cli.run("logout")
    assert out.returncode == 0, out.stderr
    assert not cli.token_file.exists()


def test_logout_after_the_access_token_expired_still_ends_the_session(cli, person, clock, tmp_path):
    p = person()
    assert cli.login(p["cert"], p["key"]).returncode == 0
    saved = tmp_path / "saved-token"
    shutil.copy2(cli.token_file, saved)
    clock(400)  # the 5-minute access token has expired, the session has not
    w = cli.run("whoami")
    assert w.returncode == 1
    assert "token-expired" in w.stderr
    out = cli.run("logout")
    assert out.returncode == 0, out.stderr
    assert not cli.token_file.exists()
    clock(0)  # the old token is within its lifetime again, but its session is over
    shutil.copy2(saved, cli.token_file)
    r = cli.run("whoami")
    assert r.returncode == 1
    assert "session-ended" in r.stderr


def test_usage(cli):
    h = cli.run("--help")
    assert h.returncode == 0 and "bligate login" in h.stdout
    lh = cli.run("login", "--help")
    assert lh.returncode == 0 and "--cms" in lh.stdout
    for args in ([], ["frobnicate"], ["login", "--bogus"], ["login", "--cert", "x.crt"], ["whoami", "--cms"],
                 ["logout", "extra"], ["login", "--key"]):
        r = cli.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "usage: bligate" in r.stderr, args
        assert r.stdout == "", args


def test_failures_exit_1(cli, demo, tmp_path):
    q = demo["querier1"]
    assert cli.run("whoami").returncode == 1
    assert cli.run("refresh").returncode == 1
    # key of another holder
    r = cli.login(q["cert"], demo["querier2"]["key"])
    assert r.returncode == 1 and "does not belong" in r.stderr
    # nobody listening
    r = cli.login(q["cert"], q["key"], "--url", "http://127.0.0.1:9")
    assert r.returncode == 1 and "no answer" in r.stderr
    # a group-readable key only warns (the login itself may still be refused by nothing else)
    key = tmp_path / "loose.key"
    shutil.copy(q["key"], key)
    os.chmod(key, 0o644)
    r = cli.run("login", "--cert", q["cert"], "--key", str(key), "--url", "http://127.0.0.1:9")
    assert "warning" in r.stderr and "private key" in r.stderr
