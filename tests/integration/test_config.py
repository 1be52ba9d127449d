"""Configuration and migrations fail loudly (issue 2): a missing or malformed BLIGATE_*
variable stops the service naming it; a migration changed after it was applied is refused."""

import os
import subprocess

import pytest


def run_accounts(stack, env, *args):
    binary = os.path.join(os.environ["BLIGATE_BIN_DIR"], "bligate-accounts")
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=30)


def base_env(stack):
    pki = stack["PKI"]
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BLIGATE_LISTEN_PORT": "1", "BLIGATE_DB_URL": "host=127.0.0.1 port=1 dbname=none",
            "BLIGATE_TRUST_CA_FILE": f"{pki}/ca-bundle.pem", "BLIGATE_CRL_FILE": f"{pki}/crl.pem",
            "BLIGATE_JWT_KEY_FILE": f"{pki}/jwt-signing.key", "ASAN_OPTIONS": "detect_leaks=0"}


@pytest.mark.parametrize("name,value", [
    ("BLIGATE_JWT_KEY_FILE", None),
    ("BLIGATE_DB_URL", None),
    ("BLIGATE_TRUST_CA_FILE", None),
    ("BLIGATE_SESSION_IDLE_SECONDS", "ten minutes"),
    ("BLIGATE_ACCESS_TOKEN_SECONDS", "0"),
    ("BLIGATE_TEST_CLOCK", "maybe"),
    ("BLIGATE_JWT_KEY_FILE", "/nonexistent/key.pem"),
    ("BLIGATE_TRUSTED_PROXIES", "gateway"),      # a name: nothing is resolved
    ("BLIGATE_TRUSTED_PROXIES", "10.0.0.5/8"),   # bits beyond the prefix: a typo, not a range
])
def test_bad_configuration_exits_naming_the_variable(stack, name, value):
    env = base_env(stack)
    if value is None:
        env.pop(name, None)
    else:
        env[name] = value
    r = run_accounts(stack, env)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert name in r.stderr


def test_changed_migration_is_refused(stack):
    owner = f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user=bligate_accounts_owner"
    env = dict(base_env(stack), BLIGATE_DB_OWNER_URL=owner)
    assert run_accounts(stack, env, "migrate").returncode == 0  # applied already: nothing to do
    q = ["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c"]
    orig = subprocess.run(q + ["SELECT sha256 FROM accounts.schema_migrations WHERE name = '0001_init.sql'"],
                          check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(q + ["UPDATE accounts.schema_migrations SET sha256 = 'tampered' WHERE name = '0001_init.sql'"],
                   check=True, capture_output=True)
    try:
        r = run_accounts(stack, env, "migrate")
        assert r.returncode == 1
        assert "checksum mismatch" in r.stdout + r.stderr
    finally:
        subprocess.run(q + [f"UPDATE accounts.schema_migrations SET sha256 = '{orig}' WHERE name = '0001_init.sql'"],
                       check=True, capture_output=True)


def test_runtime_role_cannot_change_the_schema(stack):
    rt = f"host=127.0.0.1 port={stack['BLIGATE_PG_PORT']} dbname=bligate user=bligate_accounts"
    r = subprocess.run(["psql", rt, "-X", "-At", "-c", "DROP TABLE accounts.outbox"], capture_output=True, text=True)
    assert r.returncode != 0 and "must be owner" in r.stderr
    r = subprocess.run(["psql", rt, "-X", "-At", "-c", "DELETE FROM accounts.outbox"], capture_output=True, text=True)
    assert r.returncode != 0 and "permission denied" in r.stderr
