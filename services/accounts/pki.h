/* Citizen-certificate checks: parsing, chain to the trust store, validity, revocation from
 * a CRL file (reloaded when it changes; missing or stale fails closed), key usage, and the
 * MOICA holder attributes. Pure OpenSSL: no HTTP, no database. */
#ifndef ACCT_PKI_H
#define ACCT_PKI_H
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum acct_cert_err {
  ACCT_CERT_OK = 0,
  ACCT_CERT_MALFORMED,
  ACCT_CERT_UNTRUSTED,
  ACCT_CERT_EXPIRED,
  ACCT_CERT_REVOKED,
  ACCT_CERT_REVOCATION_UNAVAILABLE,
  ACCT_CERT_KEY_USAGE,
};

struct acct_cert_info {
  char cn[256];          /* holder's name (subject CN, UTF-8) */
  char id_last4[8];      /* from Subject Directory Attributes 2.16.886.1.100.2.51; "" if absent */
  char serial[80];       /* hex */
  char issuer[512];      /* RFC 2253 */
  char fingerprint[65];  /* SHA-256 of the DER, hex */
  time_t not_before, not_after;
};

struct acct_pki;
/* Loads the CA bundle (exits the process on failure: no trust store, no service). */
struct acct_pki *acct_pki_new(const char *ca_file, const char *crl_file);
void acct_pki_free(struct acct_pki *p);
/* Checks chain, validity at `now`, revocation and key usage. detail: a short reason. */
enum acct_cert_err acct_pki_verify(struct acct_pki *p, X509 *cert, time_t now, char *detail, size_t dlen);
/* true when the CRL file is present and current at `now` (for /readyz and metrics). */
bool acct_pki_revocation_ok(struct acct_pki *p, time_t now);

/* PEM, or base64 of DER. NULL when it is neither. */
X509 *acct_cert_parse(const char *text);
/* The same through a cache of recently seen certificates (by SHA-256 of the text), with their
 * details (acct_cert_info; all empty when it fails). The X509 is shared: do not modify it;
 * X509_free it as usual. */
X509 *acct_cert_parse_cached(const char *text, struct acct_cert_info *info);
bool acct_cert_info(X509 *cert, struct acct_cert_info *out);
char *acct_cert_pem(X509 *cert); /* malloc'd */

/* Raw signature over data: ECDSA P-256 (DER or raw R||S) or RSA PKCS#1 v1.5, SHA-256. */
bool acct_sig_verify_raw(X509 *cert, const unsigned char *data, size_t n, const unsigned char *sig, size_t siglen);
/* Detached CMS SignedData over data: verifies the signature and returns the one signer's
 * certificate (caller frees), or NULL; *malformed tells a parse failure from a bad signature. */
X509 *acct_cms_verify(const unsigned char *der, size_t len, const unsigned char *data, size_t n, bool *malformed);

#endif
