"""Rotating the token signing key without restarting every service (issue 8, operations):
accounts restarts with a new key and publishes the previous one (BLIGATE_JWT_PREVIOUS_KEYS_FILE);
the other services meet a token with a key id they have not seen, fetch the JWKS again (at most
every 10 s) and accept it, while tokens signed before the rotation keep working until they
expire. A made-up key id is still refused."""

import base64
import json
import os
import shutil
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import problem

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stack_cmd(stack, *args, **env):
    e = dict(os.environ, BLIGATE_VAR=stack["BLIGATE_VAR"], **env)
    r = subprocess.run([os.path.join(REPO, "scripts", "stack"), *args], env=e, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def kid(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def test_a_rotated_key_is_picked_up_by_every_service(stack, login, client, tmp_path):
    key_file = os.path.join(stack["PKI"], "jwt-signing.key")
    before = login("querier1")
    old_kid = kid(before.token)
    # the operator: a new key in place, the old one's public half listed as previous
    old = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
    previous = tmp_path / "jwt-previous.pem"
    previous.write_bytes(old.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    shutil.copy(key_file, tmp_path / "jwt-signing.key.old")
    new = ec.generate_private_key(ec.SECP256R1())
    with open(key_file + ".new", "wb") as f:
        f.write(new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_file + ".new", 0o600)
    os.replace(key_file + ".new", key_file)
    stack_cmd(stack, "restart-service", "accounts", BLIGATE_JWT_PREVIOUS_KEYS_FILE=str(previous))
    jwks = client().call("GET", "/.well-known/jwks.json", bearer=False)
    assert old_kid in {k["kid"] for k in jwks["keys"]} and len(jwks["keys"]) == 2
    after = login("querier2")
    assert kid(after.token) != old_kid
    # workflow, the proxy and audit have not restarted: they learn the new key on first sight
    assert after.get("/v1/legal-bases").status_code == 200
    assert after.get("/v1/bli/items").status_code == 200
    assert login("ethics1").get("/v1/audit/tree-heads/latest").status_code == 200
    # a token from before the rotation is still good everywhere until it expires
    assert before.get("/v1/legal-bases").status_code == 200
    assert before.get("/v1/auth/me").status_code == 200
    # a key id nobody published is refused
    head, body, sig = after.token.split(".")
    forged_head = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "nobody"}).encode())
    forged = forged_head.decode().rstrip("=") + "." + body + "." + sig
    c = client()
    c.token = forged
    problem(c.get("/v1/legal-bases"), 401, "token-invalid")
