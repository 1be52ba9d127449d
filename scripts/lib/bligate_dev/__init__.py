"""Python helpers for developing and testing bligate: a MOICA-shaped development PKI,
login signatures (raw and CMS), an API client, and Taiwan ID numbers.

Only the standard library, python3-cryptography and python3-requests are used, so the
Debian packages installed by scripts/bootstrap are enough.
"""
