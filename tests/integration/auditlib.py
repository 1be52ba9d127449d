"""A small, independent verifier of the audit log for the tests (RFC 9162 hashing, proofs,
the canonical event form, ES256 tree-head signatures) -- written from the RFC, sharing no code
with the service, so a bug in one is not hidden by the same bug in the other."""

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bligate_dev.contract import strict_loads


def loads(text):
    """JSON as the CLI's verifier reads it (JSON_REJECT_DUPLICATES): a duplicate key, which
    json.loads would settle by keeping the last, and NaN or Infinity are refused (ValueError)."""
    return strict_loads(text)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical(event) -> bytes:
    """docs/audit-log.md: sorted keys, no whitespace, UTF-8, minimal escaping."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def root(leaves):
    """MTH of a list of leaf hashes, by the RFC's recursion."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def verify_inclusion(index, size, leaf, proof, expected_root):
    if size == 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(first, second, first_root, second_root, proof):
    if first == 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def _b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_tree_head(sth, jwks):
    """True when sth["signature"] is an ES256 JWS by a key of jwks over exactly sth's values (its key_id,
    when stated, the header's kid)."""
    h, p, s = sth["signature"].split(".")
    header = loads(_b64url(h))
    if header.get("alg") != "ES256":
        return False
    key = next((k for k in jwks["keys"] if k["kid"] == header.get("kid")), None)
    if key is None:
        return False
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64url(key["x"]), "big"),
                                        int.from_bytes(_b64url(key["y"]), "big"), ec.SECP256R1()).public_key()
    raw = _b64url(s)
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        pub.verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    payload = loads(_b64url(p))
    return (payload.get("tree_size") == sth["tree_size"] and payload.get("root_hash") == sth["root_hash"]
            and payload.get("timestamp") == sth["timestamp"] and sth.get("key_id", header["kid"]) == header["kid"])
