/* Signs the login challenge from certificate and key files the way the MOICA local signing
 * component does with a card: a bare SHA-256 signature, or a detached CMS SignedData. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "bligate/util.h"
#include "cli.h"

struct cli_signer {
  X509 *cert;
  EVP_PKEY *key;
};

/* Prints what OpenSSL said last, and empties its error queue. */
static void ossl_fail(const char *what, const char *file)
{
  unsigned long e = ERR_peek_last_error();
  char why[256] = "";
  if (e)
    ERR_error_string_n(e, why, sizeof why);
  fprintf(stderr, "bligate: %s%s%s%s%s\n", what, file ? " " : "", file ? file : "", why[0] ? ": " : "", why);
  ERR_clear_error();
}

static X509 *load_cert(const char *file)
{
  BIO *b = BIO_new_file(file, "rb");
  if (!b) {
    fprintf(stderr, "bligate: cannot open the certificate %s: %s\n", file, strerror(errno));
    ERR_clear_error();
    return NULL;
  }
  X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
  if (!x) { /* maybe DER */
    ERR_clear_error();
    if (BIO_reset(b) == 0)
      x = d2i_X509_bio(b, NULL);
  }
  BIO_free(b);
  if (!x)
    ossl_fail("no certificate (PEM or DER) in", file);
  return x;
}

static EVP_PKEY *load_key(const char *file)
{
  struct stat st;
  if (stat(file, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
    fprintf(stderr, "bligate: warning: the private key %s is accessible to group or others (mode %04o); "
                    "chmod 600 it\n",
            file, (unsigned)(st.st_mode & 07777));
  BIO *b = BIO_new_file(file, "rb");
  if (!b) {
    fprintf(stderr, "bligate: cannot open the private key %s: %s\n", file, strerror(errno));
    ERR_clear_error();
    return NULL;
  }
  /* No callback: an encrypted key makes OpenSSL ask for its pass phrase on the terminal. */
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  if (!k) {
    ERR_clear_error();
    if (BIO_reset(b) == 0)
      k = d2i_PrivateKey_bio(b, NULL);
  }
  BIO_free(b);
  if (!k)
    ossl_fail("no usable private key (PEM or DER) in", file);
  return k;
}

struct cli_signer *cli_signer_new(const char *cert_file, const char *key_file)
{
  X509 *cert = load_cert(cert_file);
  if (!cert)
    return NULL;
  EVP_PKEY *key = load_key(key_file);
  if (!key) {
    X509_free(cert);
    return NULL;
  }
  const char *fail = NULL;
  if (!EVP_PKEY_is_a(key, "EC") && !EVP_PKEY_is_a(key, "RSA"))
    fail = "the private key is neither EC nor RSA";
  else if (X509_check_private_key(cert, key) != 1)
    fail = "the private key does not belong to the certificate";
  if (fail) {
    ERR_clear_error();
    fprintf(stderr, "bligate: %s\n", fail);
    EVP_PKEY_free(key);
    X509_free(cert);
    return NULL;
  }
  struct cli_signer *s = malloc(sizeof *s);
  if (!s) {
    EVP_PKEY_free(key);
    X509_free(cert);
    return NULL;
  }
  *s = (struct cli_signer){.cert = cert, .key = key};
  return s;
}

void cli_signer_free(struct cli_signer *s)
{
  if (!s)
    return;
  EVP_PKEY_free(s->key);
  X509_free(s->cert);
  free(s);
}

char *cli_signer_cert_pem(const struct cli_signer *s)
{
  BIO *b = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (b && PEM_write_bio_X509(b, s->cert) == 1) {
    char *data;
    long n = BIO_get_mem_data(b, &data);
    if (n > 0) {
      out = malloc((size_t)n + 1);
      if (out) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
      }
    }
  }
  if (!out)
    ossl_fail("cannot encode the certificate", NULL);
  BIO_free(b);
  return out;
}

char *cli_signer_sign_raw(const struct cli_signer *s, const void *data, size_t n)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char *sig = NULL;
  size_t siglen = 0;
  char *out = NULL;
  bool ok = ctx && EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, s->key) == 1;
  /* PKCS#1 v1.5 is OpenSSL's default for RSA too; said here because the server expects it. */
  if (ok && EVP_PKEY_is_a(s->key, "RSA"))
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  if (ok)
    ok = EVP_DigestSign(ctx, NULL, &siglen, data, n) == 1;
  if (ok) {
    sig = malloc(siglen);
    ok = sig && EVP_DigestSign(ctx, sig, &siglen, data, n) == 1;
  }
  if (ok)
    out = bg_b64_encode(sig, siglen);
  if (!out)
    ossl_fail("signing failed", NULL);
  free(sig);
  EVP_MD_CTX_free(ctx);
  return out;
}

char *cli_signer_sign_cms(const struct cli_signer *s, const void *data, size_t n)
{
  /* CMS_BINARY: the nonce is signed byte for byte, never CRLF-canonicalised. */
  const unsigned flags = CMS_BINARY | CMS_DETACHED | CMS_PARTIAL;
  BIO *in = n <= INT32_MAX ? BIO_new_mem_buf(data, (int)n) : NULL;
  CMS_ContentInfo *cms = in ? CMS_sign(NULL, NULL, NULL, NULL, flags) : NULL;
  unsigned char *der = NULL;
  int derlen = -1;
  char *out = NULL;
  /* CMS_add1_signer with an explicit SHA-256; the signer's certificate goes in (no CMS_NOCERTS). */
  if (cms && CMS_add1_signer(cms, s->cert, s->key, EVP_sha256(), flags) && CMS_final(cms, in, NULL, flags) == 1)
    derlen = i2d_CMS_ContentInfo(cms, &der);
  if (derlen > 0)
    out = bg_b64_encode(der, (size_t)derlen);
  if (!out)
    ossl_fail("CMS signing failed", NULL);
  OPENSSL_free(der);
  CMS_ContentInfo_free(cms);
  BIO_free(in);
  return out;
}
