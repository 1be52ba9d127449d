"""A development PKI shaped like Taiwan's MOICA (內政部憑證管理中心), for dev and tests.

Layout of a PKI directory (created by ensure_pki, reused afterwards):

  root.crt, root.key               "bligate Dev Root CA" (self-signed; plays the GRCA root)
  intermediate.crt, .key           "bligate Dev MOICA" citizen CA (issues user certificates)
  ca-bundle.pem                    root + intermediate: BLIGATE_TRUST_CA_FILE
  crl.pem                          CRL of the intermediate (revoked user serials) followed by
                                   a CRL of the root (for X509_V_FLAG_CRL_CHECK_ALL):
                                   BLIGATE_CRL_FILE
  jwt-signing.key                  EC P-256 private key (PKCS#8 PEM): BLIGATE_JWT_KEY_FILE
  id-hmac.key                      32 random bytes as 64 hex digits, no newline:
                                   BLIGATE_ID_HMAC_KEY_FILE
  untrusted-root.crt, .key         a separate CA nobody trusts, for negative tests
  state.json                       CRL number and revoked serials (private bookkeeping)

User certificates look like MOICA citizen certificates: subject C=TW, CN=<holder's name>
(UTF-8, may be Chinese), key usage digitalSignature (critical) only, no EKU, and the Subject
Directory Attributes extension (2.5.29.9) holding one attribute 2.16.886.1.100.2.51 whose
value (PrintableString) is the last four digits of the national ID. The national ID itself
is never written anywhere else and never printed.

Private keys are written with mode 0600; every file is replaced atomically (write, then
rename) so a running service never reads half a CRL. Mutations take a lock on <pki>/.lock.
"""

import datetime
import fcntl
import json
import os
import secrets
import tempfile
from contextlib import contextmanager

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

ID_LAST4_OID = "2.16.886.1.100.2.51"
CRL_DAYS = 30
# CRLs this close to their nextUpdate are re-issued by ensure_pki, so a long-lived var/
# keeps working; a test that wants a stale CRL writes it after start-up (write_crl).
CRL_REFRESH_MARGIN = datetime.timedelta(days=7)

ROOT_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bligate 開發環境"),
    x509.NameAttribute(NameOID.COMMON_NAME, "bligate Dev Root CA"),
])
INTERMEDIATE_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bligate 開發環境"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "內政部憑證管理中心 (開發用)"),
    x509.NameAttribute(NameOID.COMMON_NAME, "bligate Dev MOICA Citizen CA"),
])
UNTRUSTED_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Untrusted Test Authority"),
    x509.NameAttribute(NameOID.COMMON_NAME, "bligate Untrusted Root CA"),
])

_KEY_USAGE_NAMES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)
_KEY_USAGE_ALIASES = {
    "digitalsignature": "digital_signature", "nonrepudiation": "content_commitment",
    "contentcommitment": "content_commitment", "keyencipherment": "key_encipherment",
    "dataencipherment": "data_encipherment", "keyagreement": "key_agreement",
    "keycertsign": "key_cert_sign", "crlsign": "crl_sign",
    "encipheronly": "encipher_only", "decipheronly": "decipher_only",
}


# ---------------------------------------------------------------- small helpers

def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)


def _as_time(value, default):
    """None -> default; timedelta -> now + value; aware datetime -> naive UTC; naive -> as is."""
    if value is None:
        return default
    if isinstance(value, datetime.timedelta):
        return _now() + value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value
    raise TypeError("expected None, datetime or timedelta, got %r" % (value,))


def _atomic_write(path, data, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _new_key(key_type):
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError("key_type must be 'ec' or 'rsa', not %r" % (key_type,))


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def _load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _p(pki_dir, name):
    return os.path.join(pki_dir, name)


@contextmanager
def _locked(pki_dir):
    os.makedirs(pki_dir, exist_ok=True)
    with open(_p(pki_dir, ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_state(pki_dir):
    try:
        with open(_p(pki_dir, "state.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"crl_number": 0, "revoked": {}}


def _write_state(pki_dir, state):
    _atomic_write(_p(pki_dir, "state.json"),
                  (json.dumps(state, indent=2, sort_keys=True) + "\n").encode(), 0o600)


# ---------------------------------------------------------------- DER for 2.5.29.9

def _der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag, content):
    return bytes([tag]) + _der_len(len(content)) + content


def _der_oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for i, arc in enumerate([arcs[0] * 40 + arcs[1]] + arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


def subject_directory_attributes_der(id_last4):
    """DER of SubjectDirectoryAttributes ::= SEQUENCE OF Attribute, with one
    Attribute{type 2.16.886.1.100.2.51, values SET OF {PrintableString id_last4}}."""
    if not (isinstance(id_last4, str) and len(id_last4) == 4 and id_last4.isdigit()):
        raise ValueError("id_last4 must be four digits")
    value = _der(0x13, id_last4.encode("ascii"))            # PrintableString
    attribute = _der(0x30, _der_oid(ID_LAST4_OID) + _der(0x31, value))
    return _der(0x30, attribute)


def id_last4_from_cert(cert):
    """The last four ID digits from a certificate's 2.5.29.9 extension, or None.
    (A deliberately small parser, enough for certificates made here; for tests.)"""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES)
    except x509.ExtensionNotFound:
        return None
    der = ext.value.value
    oid = _der_oid(ID_LAST4_OID)
    i = der.find(oid)
    if i < 0:
        return None
    rest = der[i + len(oid):]
    # SET (0x31) len, PrintableString (0x13) len, value
    if len(rest) < 4 or rest[0] != 0x31 or rest[2] != 0x13:
        return None
    return rest[4:4 + rest[3]].decode("ascii")


# ---------------------------------------------------------------- certificates

def _ski(public_key):
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(issuer_cert):
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca_key_usage():
    return x509.KeyUsage(digital_signature=False, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                         decipher_only=False)


def _make_root(name, years):
    key = _new_key("ec")
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(_ski(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_intermediate(root_cert, root_key, years):
    key = _new_key("ec")
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(INTERMEDIATE_NAME).issuer_name(root_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(_ski(key.public_key()), critical=False)
            .add_extension(_aki(root_cert), critical=False)
            .sign(root_key, hashes.SHA256()))
    return cert, key


def _write_cert(path, cert):
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_key(path, key):
    _atomic_write(path, _key_pem(key), 0o600)


def _parse_key_usage(key_usage):
    """"digitalSignature" / "digitalSignature,keyEncipherment" / list -> x509.KeyUsage,
    or None (no extension at all) for None or ""."""
    if not key_usage:
        return None
    names = key_usage.split(",") if isinstance(key_usage, str) else list(key_usage)
    flags = dict.fromkeys(_KEY_USAGE_NAMES, False)
    for raw in names:
        n = raw.strip()
        n = _KEY_USAGE_ALIASES.get(n.lower().replace("_", ""), n)
        if n not in flags:
            raise ValueError("unknown key usage %r" % (raw,))
        flags[n] = True
    return x509.KeyUsage(**flags)


def serial_hex(serial):
    """Lower-case hex of a certificate serial, no leading zeros (what the services show)."""
    return format(serial, "x")


def _parse_serial(serial):
    """An int, a hex string ("0x..." or bare hex), or the path of a PEM certificate."""
    if isinstance(serial, int):
        return serial
    s = str(serial)
    if os.path.isfile(s):
        return _load_cert(s).serial_number
    return int(s[2:] if s.lower().startswith("0x") else s, 16)


# ---------------------------------------------------------------- CRLs

def _build_crl(issuer_cert, issuer_key, revoked, number, this_update, next_update):
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer_cert.subject)
               .last_update(this_update)
               .next_update(next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(_aki(issuer_cert), critical=False))
    for hex_serial, when in sorted(revoked.items()):
        entry = (x509.RevokedCertificateBuilder()
                 .serial_number(int(hex_serial, 16))
                 .revocation_date(datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ"))
                 .build())
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_crl_locked(pki_dir, next_update=None, this_update=None, out=None):
    state = _read_state(pki_dir)
    state["crl_number"] = int(state.get("crl_number", 0)) + 1
    this = _as_time(this_update, _now())
    nxt = _as_time(next_update, this + datetime.timedelta(days=CRL_DAYS))
    root_cert = _load_cert(_p(pki_dir, "root.crt"))
    inter_cert = _load_cert(_p(pki_dir, "intermediate.crt"))
    inter_crl = _build_crl(inter_cert, _load_key(_p(pki_dir, "intermediate.key")),
                           state.get("revoked", {}), state["crl_number"], this, nxt)
    root_crl = _build_crl(root_cert, _load_key(_p(pki_dir, "root.key")),
                          state.get("root_revoked", {}), state["crl_number"], this, nxt)
    pem = (inter_crl.public_bytes(serialization.Encoding.PEM)
           + root_crl.public_bytes(serialization.Encoding.PEM))
    path = out or _p(pki_dir, "crl.pem")
    _atomic_write(path, pem, 0o644)
    _write_state(pki_dir, state)
    return path


def write_crl(pki_dir, next_update=None, this_update=None, out=None):
    """(Re)write the CRLs: the intermediate's (listing every revoked user serial) followed by
    the root's, concatenated in <pki_dir>/crl.pem (or `out`).

    this_update defaults to now and next_update to this_update + 30 days. Either may be a
    datetime (naive = UTC) or a timedelta relative to now, so a test can write a stale CRL
    with write_crl(pki, next_update=timedelta(hours=-1), this_update=timedelta(days=-2)).
    Returns the path written."""
    with _locked(pki_dir):
        return _write_crl_locked(pki_dir, next_update, this_update, out)


def _crl_needs_refresh(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        crl = x509.load_pem_x509_crl(data)
    except (FileNotFoundError, ValueError):
        return True
    if data.count(b"-----BEGIN X509 CRL-----") < 2 or crl.next_update is None:
        return True
    return crl.next_update - _now() < CRL_REFRESH_MARGIN


# ---------------------------------------------------------------- public API

def ensure_pki(pki_dir):
    """Create the development PKI in pki_dir on first run; reuse it afterwards.

    Creates (only what is missing): root and intermediate CA, ca-bundle.pem, crl.pem,
    jwt-signing.key, id-hmac.key, and the untrusted CA. Also re-issues crl.pem when it is
    missing, malformed, or within 7 days of its nextUpdate. If a CA certificate is missing,
    everything issued below it is re-created (old user certificates no longer chain).
    Returns a dict of the important paths."""
    pki_dir = os.path.abspath(pki_dir)
    os.makedirs(pki_dir, mode=0o755, exist_ok=True)
    with _locked(pki_dir):
        fresh_root = False
        if not (os.path.exists(_p(pki_dir, "root.crt")) and os.path.exists(_p(pki_dir, "root.key"))):
            cert, key = _make_root(ROOT_NAME, 20)
            _write_key(_p(pki_dir, "root.key"), key)
            _write_cert(_p(pki_dir, "root.crt"), cert)
            fresh_root = True
        if fresh_root or not (os.path.exists(_p(pki_dir, "intermediate.crt"))
                              and os.path.exists(_p(pki_dir, "intermediate.key"))):
            cert, key = _make_intermediate(_load_cert(_p(pki_dir, "root.crt")),
                                           _load_key(_p(pki_dir, "root.key")), 10)
            _write_key(_p(pki_dir, "intermediate.key"), key)
            _write_cert(_p(pki_dir, "intermediate.crt"), cert)
            state = _read_state(pki_dir)
            state["revoked"] = {}          # a new CA has revoked nothing yet
            _write_state(pki_dir, state)
            fresh_root = True              # forces bundle and CRL below
        bundle = _p(pki_dir, "ca-bundle.pem")
        with open(_p(pki_dir, "root.crt"), "rb") as f:
            root_pem = f.read()
        with open(_p(pki_dir, "intermediate.crt"), "rb") as f:
            inter_pem = f.read()
        want = root_pem + inter_pem
        try:
            with open(bundle, "rb") as f:
                have = f.read()
        except FileNotFoundError:
            have = None
        if have != want:
            _atomic_write(bundle, want, 0o644)
        if fresh_root or _crl_needs_refresh(_p(pki_dir, "crl.pem")):
            _write_crl_locked(pki_dir)
        if not os.path.exists(_p(pki_dir, "jwt-signing.key")):
            _write_key(_p(pki_dir, "jwt-signing.key"), ec.generate_private_key(ec.SECP256R1()))
        if not os.path.exists(_p(pki_dir, "id-hmac.key")):
            _atomic_write(_p(pki_dir, "id-hmac.key"), secrets.token_hex(32).encode(), 0o600)
        if not (os.path.exists(_p(pki_dir, "untrusted-root.crt"))
                and os.path.exists(_p(pki_dir, "untrusted-root.key"))):
            cert, key = _make_root(UNTRUSTED_NAME, 20)
            _write_key(_p(pki_dir, "untrusted-root.key"), key)
            _write_cert(_p(pki_dir, "untrusted-root.crt"), cert)
    return paths(pki_dir)


def paths(pki_dir):
    """The well-known files of a PKI directory, as a dict of absolute paths."""
    pki_dir = os.path.abspath(pki_dir)
    names = ("root.crt", "root.key", "intermediate.crt", "intermediate.key", "ca-bundle.pem",
             "crl.pem", "jwt-signing.key", "id-hmac.key", "untrusted-root.crt",
             "untrusted-root.key")
    return {n.replace(".", "_").replace("-", "_"): _p(pki_dir, n) for n in names}


def issue_user(pki_dir, name, national_id, out_prefix, key_type="ec", not_before=None,
               not_after=None, key_usage="digitalSignature", issuer="intermediate",
               id_last4=None):
    """Issue a MOICA-shaped citizen certificate and write <out_prefix>.crt and .key.

    name: the holder's name, the subject CN (UTF-8, may be Chinese).
    national_id: the holder's ID; only its last four digits go into the certificate (the
        2.5.29.9 extension). None (with id_last4 None) leaves the extension out.
    id_last4: overrides the four digits (tests of holder mismatch).
    key_type: "ec" (P-256, default) or "rsa" (2048).
    not_before / not_after: datetime (naive = UTC) or timedelta from now. Defaults: one day
        ago and three years ahead (not_before is moved before a past not_after).
    key_usage: "digitalSignature" (default), a comma list / list of names such as
        "keyEncipherment", or None for no key-usage extension at all. Always critical.
    issuer: "intermediate" (trusted chain) or "untrusted" (the separate untrusted root).

    Returns {"cert": path, "key": path, "serial": int, "serial_hex": str}. The key file has
    mode 0600. Issuing never touches the CRL."""
    pki_dir = os.path.abspath(pki_dir)
    if issuer == "intermediate":
        ca_cert_path, ca_key_path = _p(pki_dir, "intermediate.crt"), _p(pki_dir, "intermediate.key")
    elif issuer == "untrusted":
        ca_cert_path, ca_key_path = _p(pki_dir, "untrusted-root.crt"), _p(pki_dir, "untrusted-root.key")
    else:
        raise ValueError("issuer must be 'intermediate' or 'untrusted'")
    if not os.path.exists(ca_cert_path):
        ensure_pki(pki_dir)
    ca_cert, ca_key = _load_cert(ca_cert_path), _load_key(ca_key_path)

    if id_last4 is None and national_id is not None:
        if not (isinstance(national_id, str) and len(national_id) >= 4
                and national_id[-4:].isdigit()):
            raise ValueError("national_id must end in four digits")
        id_last4 = national_id[-4:]

    now = _now()
    nb_default = now - datetime.timedelta(days=1)
    na = _as_time(not_after, now + datetime.timedelta(days=3 * 365))
    if not_before is None and na <= nb_default:
        nb_default = na - datetime.timedelta(days=30)
    nb = _as_time(not_before, nb_default)

    key = _new_key(key_type)
    serial = x509.random_serial_number()
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(serial)
               .not_valid_before(nb)
               .not_valid_after(na)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_ski(key.public_key()), critical=False)
               .add_extension(_aki(ca_cert), critical=False))
    ku = _parse_key_usage(key_usage)
    if ku is not None:
        builder = builder.add_extension(ku, critical=True)
    if id_last4 is not None:
        sda = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
                                         subject_directory_attributes_der(id_last4))
        builder = builder.add_extension(sda, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())

    out_prefix = os.path.abspath(out_prefix)
    os.makedirs(os.path.dirname(out_prefix), exist_ok=True)
    _write_key(out_prefix + ".key", key)
    _write_cert(out_prefix + ".crt", cert)
    return {"cert": out_prefix + ".crt", "key": out_prefix + ".key", "serial": serial,
            "serial_hex": serial_hex(serial)}


def revoke(pki_dir, serial, when=None):
    """Put a user certificate on the intermediate's CRL and re-issue crl.pem.

    serial: int, hex string, or the path of the certificate. when: revocation time
    (default now). Idempotent. Returns the path of crl.pem."""
    pki_dir = os.path.abspath(pki_dir)
    s = _parse_serial(serial)
    with _locked(pki_dir):
        state = _read_state(pki_dir)
        revoked = state.setdefault("revoked", {})
        revoked.setdefault(serial_hex(s), _as_time(when, _now()).strftime("%Y-%m-%dT%H:%M:%SZ"))
        _write_state(pki_dir, state)
        return _write_crl_locked(pki_dir)


def is_revoked(pki_dir, serial):
    """True when the serial (int, hex, or certificate path) is on the intermediate's CRL."""
    return serial_hex(_parse_serial(serial)) in _read_state(os.path.abspath(pki_dir)).get("revoked", {})


def cert_info(cert_path):
    """Facts about a certificate, for tests: subject CN, serial (int and hex), SHA-256
    fingerprint (lower-case hex), validity, issuer CN and the ID's last four digits."""
    cert = _load_cert(cert_path)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    icn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        "subject_cn": cn[0].value if cn else None,
        "issuer_cn": icn[0].value if icn else None,
        "serial": cert.serial_number,
        "serial_hex": serial_hex(cert.serial_number),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "not_before": cert.not_valid_before,
        "not_after": cert.not_valid_after,
        "id_last4": id_last4_from_cert(cert),
    }
