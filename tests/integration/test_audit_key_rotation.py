"""Rotating the audit log's tree-head signing key: the service restarts with a new key and the
earlier public key listed as previous (BLIGATE_AUDIT_PREVIOUS_KEYS_FILE); new heads are signed
with the new key, heads signed before still verify — on the server (verifications) and for an
auditor with the published keys — and a consistency proof links the two."""

import os
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import auditlib
from conftest import REPO
from test_audit import append, event, intake, wait_tree_head  # noqa: F401


def test_heads_signed_before_a_rotation_still_verify(stack, client, intake, login):
    c = client()
    append(intake, [event()])
    old = wait_tree_head(c, 1)
    old_keys = c.call("GET", "/v1/audit/keys", bearer=False)
    key_file = os.path.join(stack["PKI"], "audit-signing.key")
    current = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
    # the operator: the old public key appended to the previous-keys file, a new key in place
    with open(os.path.join(stack["PKI"], "audit-previous-keys.pem"), "ab") as f:
        f.write(current.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    new = ec.generate_private_key(ec.SECP256R1())
    with open(key_file + ".new", "wb") as f:
        f.write(new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_file + ".new", 0o600)
    os.replace(key_file + ".new", key_file)
    env = dict(os.environ, BLIGATE_VAR=stack["BLIGATE_VAR"])
    r = subprocess.run([str(REPO / "scripts" / "stack"), "restart-service", "audit"], env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    keys = c.call("GET", "/v1/audit/keys", bearer=False)
    assert {k["kid"] for k in old_keys["keys"]} < {k["kid"] for k in keys["keys"]}
    res = append(intake, [event()])
    head = wait_tree_head(c, res["results"][0]["index"] + 1)
    assert head["key_id"] != old["key_id"]
    assert auditlib.verify_tree_head(head, keys) and auditlib.verify_tree_head(old, keys)
    assert not auditlib.verify_tree_head(head, old_keys)
    # the server's own verification checks every stored head with the key it names
    v = login("ethics1").call("POST", "/v1/audit/verifications", json={})
    assert v["verified"] is True and v["tree_heads_checked"] >= 2, v
    # and the new head extends the old one
    p = c.call("GET", "/v1/audit/proofs/consistency", bearer=False,
               params={"first": old["tree_size"], "second": head["tree_size"]})
    assert auditlib.verify_consistency(old["tree_size"], head["tree_size"], bytes.fromhex(old["root_hash"]),
                                       bytes.fromhex(head["root_hash"]), [bytes.fromhex(h) for h in p["consistency_path"]])
