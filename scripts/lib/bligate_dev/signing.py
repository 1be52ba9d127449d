"""Login signatures as a MOICA card would make them, from key files (development only).

What is signed is exactly the bytes the caller passes; for a login that is the challenge's
`nonce` string encoded as UTF-8 (see client.login), which is what the MOICA local signing
component does with a "to be signed" string.

sign_raw:  a bare signature, base64: ECDSA P-256 / SHA-256 (DER-encoded ECDSA-Sig-Value, as
           OpenSSL produces and EVP_DigestVerify takes) or RSA PKCS#1 v1.5 / SHA-256,
           chosen by the key's type.
sign_cms:  detached CMS SignedData (DER, base64) with the signer's certificate included and
           the default signed attributes (content type, signing time, message digest), made
           with `openssl cms -sign -binary` like MOICA's signer. Verify with
           `openssl cms -verify -binary -inform DER -content <data> -CAfile <bundle> -purpose any`.
"""

import base64
import os
import subprocess
import tempfile

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

OPENSSL = os.environ.get("OPENSSL", "openssl")


def _load_key(key_pem_path):
    with open(key_pem_path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def sign_raw(key_pem_path, data: bytes) -> str:
    """Sign data with the PEM private key at key_pem_path; return the signature as base64.
    EC keys: ECDSA with SHA-256, DER signature. RSA keys: PKCS#1 v1.5 with SHA-256."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    key = _load_key(key_pem_path)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError("unsupported key type: %s" % type(key).__name__)
    return base64.b64encode(sig).decode("ascii")


def _run(args):
    proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args[:3]), proc.returncode,
                                                   proc.stderr.decode(errors="replace").strip()))
    return proc.stdout


def sign_cms(cert_path, key_path, data: bytes) -> str:
    """Detached CMS SignedData over data (binary, no canonicalisation), signer certificate
    included, SHA-256, default signed attributes; DER, returned as base64."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="bligate-cms-") as tmp:
        content = os.path.join(tmp, "content")
        out = os.path.join(tmp, "sig.der")
        with open(content, "wb") as f:
            f.write(data)
        _run([OPENSSL, "cms", "-sign", "-binary", "-md", "sha256", "-in", content,
              "-signer", cert_path, "-inkey", key_path, "-outform", "DER", "-out", out])
        with open(out, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")


def verify_cms(cms_b64: str, data: bytes, ca_file: str) -> bool:
    """Check a detached CMS signature with the openssl CLI (for self-tests of this module)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="bligate-cms-") as tmp:
        content = os.path.join(tmp, "content")
        sig = os.path.join(tmp, "sig.der")
        with open(content, "wb") as f:
            f.write(data)
        with open(sig, "wb") as f:
            f.write(base64.b64decode(cms_b64))
        proc = subprocess.run([OPENSSL, "cms", "-verify", "-binary", "-inform", "DER",
                               "-in", sig, "-content", content, "-CAfile", ca_file,
                               "-purpose", "any", "-out", os.devnull],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        return proc.returncode == 0


def verify_raw(cert_path: str, data: bytes, sig_b64: str) -> bool:
    """Check a sign_raw signature against a certificate's public key (self-tests)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(cert_path, "rb") as f:
        pub = x509.load_pem_x509_certificate(f.read()).public_key()
    sig = base64.b64decode(sig_b64)
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
