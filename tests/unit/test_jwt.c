/* Proves bg_jwt_verify accepts only well-formed ES256 tokens from a known key with valid iss/aud/exp/nbf,
 * refusing each attack with its own code, and that JWKS export/import and RFC 7638 thumbprints are exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bligate/jwt.h"
#include "bligate/util.h"

#define ISS "bligate"
#define AUD "bligate"
#define KID "key-1"

static struct {
  EVP_PKEY *key;   /* the issuer's key, in ks under KID */
  EVP_PKEY *other; /* a stranger's key */
  struct bg_keyset *ks;
  time_t now;
  char sub[BG_UUID_LEN], sid[BG_UUID_LEN], unit[BG_UUID_LEN], jti[BG_UUID_LEN];
} F;

/* ---------- test-side helpers, independent of the library ---------- */

static EVP_PKEY *new_key(void)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  assert_non_null(k);
  return k;
}

static char *b64url(const void *data, size_t n)
{
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = data;
  char *out = malloc(n / 3 * 4 + 5);
  assert_non_null(out);
  size_t j = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out[j++] = a[v >> 18];
    out[j++] = a[(v >> 12) & 63];
    if (i + 1 < n)
      out[j++] = a[(v >> 6) & 63];
    if (i + 2 < n)
      out[j++] = a[v & 63];
  }
  out[j] = '\0';
  return out;
}

static char *b64url_str(const char *s) { return b64url(s, strlen(s)); }

/* Strict unpadded base64url; NULL on any other character. */
static unsigned char *unb64url(const char *s, size_t *n)
{
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t len = strlen(s);
  unsigned char *out = malloc(len * 3 / 4 + 1);
  assert_non_null(out);
  unsigned acc = 0;
  int bits = 0;
  *n = 0;
  for (size_t i = 0; i < len; i++) {
    const char *c = strchr(a, s[i]);
    if (!c || !s[i]) {
      free(out);
      return NULL;
    }
    acc = (acc << 6) | (unsigned)(c - a);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[(*n)++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  out[*n] = '\0';
  return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
  size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%s.%s.%s", a, b, c);
  return out;
}

/* Raw R||S ES256 signature over "hb.pb", base64url. */
static char *es256_sig(EVP_PKEY *key, const char *hb, const char *pb)
{
  size_t n = strlen(hb) + strlen(pb) + 2;
  char *input = malloc(n);
  assert_non_null(input);
  snprintf(input, n, "%s.%s", hb, pb);
  unsigned char der[128];
  size_t derlen = sizeof der;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  assert_non_null(md);
  assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(EVP_DigestSign(md, der, &derlen, (unsigned char *)input, strlen(input)), 1);
  EVP_MD_CTX_free(md);
  free(input);
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
  assert_non_null(es);
  unsigned char raw[64];
  assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
  assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
  ECDSA_SIG_free(es);
  return b64url(raw, 64);
}

/* A token from literal header and payload JSON text, signed by key (our own signer, not the library's). */
static char *sign_raw(EVP_PKEY *key, const char *header_json, const char *payload_json)
{
  char *hb = b64url_str(header_json), *pb = b64url_str(payload_json);
  char *sb = es256_sig(key, hb, pb);
  char *tok = join3(hb, pb, sb);
  free(hb);
  free(pb);
  free(sb);
  return tok;
}

static char *pem_public(EVP_PKEY *key, size_t *len)
{
  BIO *b = BIO_new(BIO_s_mem());
  assert_non_null(b);
  assert_int_equal(PEM_write_bio_PUBKEY(b, key), 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *out = malloc((size_t)n + 1);
  assert_non_null(out);
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
  *len = (size_t)n;
  BIO_free(b);
  return out;
}

static char *pem_private(EVP_PKEY *key, size_t *len)
{
  BIO *b = BIO_new(BIO_s_mem());
  assert_non_null(b);
  assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *out = malloc((size_t)n + 1);
  assert_non_null(out);
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
  *len = (size_t)n;
  BIO_free(b);
  return out;
}

/* Splits a compact token into its three parts (malloc'd copies). */
static void split(const char *tok, char **h, char **p, char **s)
{
  const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  assert_non_null(d2);
  *h = strndup(tok, (size_t)(d1 - tok));
  *p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
  *s = strdup(d2 + 1);
  assert_true(*h && *p && *s);
}

/* ---------- claims and verification shorthands ---------- */

static json_t *user_claims(void)
{
  json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:I, s:I, s:I, s:s}", "iss", ISS, "aud", AUD, "sub",
                        F.sub, "sid", F.sid, "unit", F.unit, "roles", "querier", "iat", (json_int_t)F.now, "nbf",
                        (json_int_t)F.now, "exp", (json_int_t)(F.now + 300), "jti", F.jti);
  assert_non_null(c);
  return c;
}

static enum bg_jwt_err verify(const struct bg_keyset *ks, const char *tok, struct bg_token *t)
{
  return bg_jwt_verify(ks, tok, ISS, AUD, F.now, 0, t);
}

/* Signs claims (stolen) with the issuer's key and verifies them. */
static enum bg_jwt_err verify_claims(json_t *claims)
{
  char *tok = bg_jwt_sign(F.key, KID, claims);
  json_decref(claims);
  assert_non_null(tok);
  struct bg_token t;
  enum bg_jwt_err rc = verify(F.ks, tok, &t);
  if (rc != BG_JWT_OK)
    assert_false(t.present);
  free(tok);
  return rc;
}

static void expect_err(enum bg_jwt_err got, enum bg_jwt_err want, const char *what)
{
  if (got != want)
    fail_msg("%s: expected %s, got %s", what, bg_jwt_err_str(want), bg_jwt_err_str(got));
}

/* ---------- fixtures ---------- */

static int setup(void **state)
{
  F.key = new_key();
  F.other = new_key();
  F.ks = bg_keyset_new();
  if (!F.ks || !bg_keyset_add(F.ks, KID, F.key))
    return -1;
  F.now = time(NULL);
  bg_uuid_v4(F.sub);
  bg_uuid_v4(F.sid);
  bg_uuid_v4(F.unit);
  bg_uuid_v4(F.jti);
  return 0;
}

static int teardown(void **state)
{
  bg_keyset_free(F.ks);
  EVP_PKEY_free(F.key);
  EVP_PKEY_free(F.other);
  return 0;
}

/* ---------- tests ---------- */

static void good_token_accepted_and_copied(void **state)
{
  json_t *claims = user_claims();
  char *tok = bg_jwt_sign(F.key, KID, claims);
  json_decref(claims);
  assert_non_null(tok);

  /* the header names ES256 and the kid; the signature part is 64 raw bytes */
  char *h, *p, *s;
  split(tok, &h, &p, &s);
  size_t n;
  unsigned char *hdr = unb64url(h, &n), *sig = unb64url(s, &n);
  assert_non_null(hdr);
  assert_non_null(sig);
  assert_int_equal(n, 64);
  json_t *hj = json_loads((char *)hdr, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(hj, "alg")), "ES256");
  assert_string_equal(json_string_value(json_object_get(hj, "kid")), KID);
  json_decref(hj);
  free(hdr);
  free(sig);
  free(h);
  free(p);
  free(s);

  struct bg_token t;
  expect_err(verify(F.ks, tok, &t), BG_JWT_OK, "good token");
  assert_true(t.present);
  assert_false(t.is_client);
  assert_string_equal(t.sub, F.sub);
  assert_string_equal(t.sid, F.sid);
  assert_string_equal(t.unit, F.unit);
  assert_string_equal(t.jti, F.jti);
  assert_int_equal(t.nroles, 1);
  assert_string_equal(t.roles[0], "querier");
  assert_true(bg_token_has_role(&t, "querier"));
  assert_false(bg_token_has_role(&t, "approver"));
  assert_int_equal(t.iat, F.now);
  assert_int_equal(t.nbf, F.now);
  assert_int_equal(t.exp, F.now + 300);
  assert_string_equal(t.scope, "");
  free(tok);
}

static char *claims_text(json_t *claims)
{
  char *s = json_dumps(claims, JSON_COMPACT);
  json_decref(claims);
  assert_non_null(s);
  return s;
}

static void alg_none_and_other_algs_refused(void **state)
{
  char *payload = claims_text(user_claims());
  char *pb = b64url_str(payload);
  char *hb = b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}");
  struct bg_token t;

  /* the classic unsecured JWS: empty signature part */
  size_t n = strlen(hb) + strlen(pb) + 3;
  char *tok = malloc(n);
  assert_non_null(tok);
  snprintf(tok, n, "%s.%s.", hb, pb);
  enum bg_jwt_err rc = verify(F.ks, tok, &t);
  assert_int_not_equal(rc, BG_JWT_OK);
  expect_err(rc, BG_JWT_MALFORMED, "alg none, empty signature");
  assert_false(t.present);
  free(tok);

  /* well-formed three parts: refused for the algorithm itself */
  tok = join3(hb, pb, "AAAA");
  expect_err(verify(F.ks, tok, &t), BG_JWT_BAD_ALG, "alg none, dummy signature");
  free(tok);
  free(hb);

  static const char *const headers[] = {
    "{\"alg\":\"None\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"NONE\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"HS256\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"RS256\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"ES384\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"es256\",\"kid\":\"" KID "\"}",
    "{\"alg\":\"ES256 \",\"kid\":\"" KID "\"}",
    "{\"alg\":256,\"kid\":\"" KID "\"}",
    "{\"alg\":null,\"kid\":\"" KID "\"}",
    "{\"kid\":\"" KID "\"}",
    "[\"ES256\"]",
  };
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    /* correctly signed with the right key: only the algorithm is wrong */
    tok = sign_raw(F.key, headers[i], payload);
    rc = verify(F.ks, tok, &t);
    if (rc != BG_JWT_BAD_ALG)
      fail_msg("header %s: expected bad alg, got %s", headers[i], bg_jwt_err_str(rc));
    free(tok);
  }
  free(pb);
  free(payload);
}

/* Algorithm confusion: HS256 MACed with the public key PEM as the secret. libjwt 1.10 itself accepts this
 * token given the public key (PITFALLS.md); the library must refuse it. */
static void hs256_with_public_key_as_secret_refused(void **state)
{
  size_t plen;
  char *pem = pem_public(F.key, &plen);
  char *claims = claims_text(user_claims());
  jwt_t *j = NULL;
  assert_int_equal(jwt_new(&j), 0);
  assert_int_equal(jwt_add_grants_json(j, claims), 0);
  assert_int_equal(jwt_add_header(j, "kid", KID), 0);
  assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)pem, (int)plen), 0);
  char *tok = jwt_encode_str(j);
  assert_non_null(tok);
  jwt_free(j);

  /* the attack is real: libjwt decodes it with the public key */
  jwt_t *d = NULL;
  assert_int_equal(jwt_decode(&d, tok, (const unsigned char *)pem, (int)plen), 0);
  assert_int_equal(jwt_get_alg(d), JWT_ALG_HS256);
  jwt_free(d);

  struct bg_token t;
  expect_err(verify(F.ks, tok, &t), BG_JWT_BAD_ALG, "HS256 with the public key as secret");
  assert_false(t.present);
  free(tok);
  free(claims);
  free(pem);
}

/* Cross-implementation: libjwt's ES256 tokens verify here, and ours verify in libjwt. */
static void libjwt_es256_interoperates(void **state)
{
  size_t len;
  char *priv = pem_private(F.key, &len);
  char *claims = claims_text(user_claims());
  jwt_t *j = NULL;
  assert_int_equal(jwt_new(&j), 0);
  assert_int_equal(jwt_add_grants_json(j, claims), 0);
  assert_int_equal(jwt_add_header(j, "kid", KID), 0);
  assert_int_equal(jwt_set_alg(j, JWT_ALG_ES256, (const unsigned char *)priv, (int)len), 0);
  char *tok = jwt_encode_str(j);
  assert_non_null(tok);
  jwt_free(j);

  struct bg_token t;
  expect_err(verify(F.ks, tok, &t), BG_JWT_OK, "libjwt ES256 token");
  assert_string_equal(t.sub, F.sub);
  assert_string_equal(t.sid, F.sid);
  free(tok);

  json_t *c = user_claims();
  char *ours = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  assert_non_null(ours);
  char *pub = pem_public(F.key, &len);
  jwt_t *d = NULL;
  assert_int_equal(jwt_decode(&d, ours, (const unsigned char *)pub, (int)len), 0);
  assert_int_equal(jwt_get_alg(d), JWT_ALG_ES256);
  assert_string_equal(jwt_get_grant(d, "sub"), F.sub);
  jwt_free(d);

  /* and the stranger's public key does not verify ours in libjwt either */
  free(pub);
  pub = pem_public(F.other, &len);
  d = NULL;
  assert_int_not_equal(jwt_decode(&d, ours, (const unsigned char *)pub, (int)len), 0);
  jwt_free(d);

  free(pub);
  free(ours);
  free(claims);
  free(priv);
}

static void no_key(void **state)
{
  json_t *c = user_claims();
  char *tok = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  struct bg_token t;
  struct bg_keyset *empty = bg_keyset_new();
  assert_non_null(empty);
  assert_int_equal(bg_keyset_count(empty), 0);
  expect_err(verify(empty, tok, &t), BG_JWT_NO_KEY, "empty keyset");
  expect_err(verify(NULL, tok, &t), BG_JWT_NO_KEY, "NULL keyset");
  assert_false(t.present);
  bg_keyset_free(empty);
  free(tok);
}

static void time_claims(void **state)
{
  json_t *c;

  c = user_claims();
  json_object_set_new(c, "exp", json_integer(F.now - 1));
  expect_err(verify_claims(c), BG_JWT_EXPIRED, "exp = now - 1");

  c = user_claims();
  json_object_set_new(c, "exp", json_integer(F.now));
  expect_err(verify_claims(c), BG_JWT_EXPIRED, "exp = now");

  c = user_claims();
  json_object_set_new(c, "exp", json_integer(F.now + 1));
  expect_err(verify_claims(c), BG_JWT_OK, "exp = now + 1");

  /* leeway applies to expiry */
  c = user_claims();
  json_object_set_new(c, "exp", json_integer(F.now - 1));
  char *tok = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  struct bg_token t;
  expect_err(bg_jwt_verify(F.ks, tok, ISS, AUD, F.now, 30, &t), BG_JWT_OK, "expired 1 s ago, leeway 30");
  expect_err(bg_jwt_verify(F.ks, tok, ISS, AUD, F.now + 40, 30, &t), BG_JWT_EXPIRED, "expired 41 s ago, leeway 30");
  free(tok);

  c = user_claims();
  json_object_set_new(c, "nbf", json_integer(F.now + 60));
  expect_err(verify_claims(c), BG_JWT_NOT_YET_VALID, "nbf = now + 60");

  c = user_claims();
  json_object_set_new(c, "nbf", json_integer(F.now));
  expect_err(verify_claims(c), BG_JWT_OK, "nbf = now");

  /* a token without an expiry, or with one that is not a number, never verifies */
  c = user_claims();
  json_object_del(c, "exp");
  assert_int_not_equal(verify_claims(c), BG_JWT_OK);
  c = user_claims();
  json_object_set_new(c, "exp", json_string("9999999999"));
  assert_int_not_equal(verify_claims(c), BG_JWT_OK);
}

static void issuer_and_audience(void **state)
{
  json_t *c;

  c = user_claims();
  json_object_set_new(c, "iss", json_string("evil"));
  expect_err(verify_claims(c), BG_JWT_BAD_ISSUER, "wrong iss");

  c = user_claims();
  json_object_del(c, "iss");
  expect_err(verify_claims(c), BG_JWT_BAD_ISSUER, "missing iss");

  c = user_claims();
  json_object_set_new(c, "iss", json_integer(1));
  expect_err(verify_claims(c), BG_JWT_BAD_ISSUER, "numeric iss");

  c = user_claims();
  json_object_set_new(c, "iss", json_string("bligatex"));
  expect_err(verify_claims(c), BG_JWT_BAD_ISSUER, "iss with a suffix");

  c = user_claims();
  json_object_set_new(c, "aud", json_string("other"));
  expect_err(verify_claims(c), BG_JWT_BAD_AUDIENCE, "wrong aud string");

  c = user_claims();
  json_object_set_new(c, "aud", json_pack("[s, s]", "other", "another"));
  expect_err(verify_claims(c), BG_JWT_BAD_AUDIENCE, "aud array without us");

  c = user_claims();
  json_object_set_new(c, "aud", json_array());
  expect_err(verify_claims(c), BG_JWT_BAD_AUDIENCE, "empty aud array");

  c = user_claims();
  json_object_del(c, "aud");
  expect_err(verify_claims(c), BG_JWT_BAD_AUDIENCE, "missing aud");

  c = user_claims();
  json_object_set_new(c, "aud", json_pack("[s, s]", "other", AUD));
  expect_err(verify_claims(c), BG_JWT_OK, "aud array with us");

  /* the verifier's own issuer/audience must be given */
  c = user_claims();
  char *tok = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  struct bg_token t;
  expect_err(bg_jwt_verify(F.ks, tok, NULL, AUD, F.now, 0, &t), BG_JWT_BAD_ISSUER, "NULL expected issuer");
  expect_err(bg_jwt_verify(F.ks, tok, ISS, NULL, F.now, 0, &t), BG_JWT_BAD_AUDIENCE, "NULL expected audience");
  free(tok);
}

static void tampering(void **state)
{
  json_t *c = user_claims();
  char *tok = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  char *h, *p, *s;
  split(tok, &h, &p, &s);
  struct bg_token t;

  /* one character of the payload changed */
  char *bad = strdup(tok);
  assert_non_null(bad);
  size_t mid = strlen(h) + 1 + strlen(p) / 2;
  bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
  expect_err(verify(F.ks, bad, &t), BG_JWT_BAD_SIGNATURE, "payload character flipped");
  free(bad);

  /* a modified claims set, re-encoded, with the original signature */
  json_t *m = user_claims();
  json_object_set_new(m, "roles", json_pack("[s, s]", "querier", "admin"));
  char *mtext = claims_text(m);
  char *mb = b64url_str(mtext);
  bad = join3(h, mb, s);
  expect_err(verify(F.ks, bad, &t), BG_JWT_BAD_SIGNATURE, "claims replaced");
  free(bad);
  free(mb);
  free(mtext);

  /* a different header with the original signature */
  char *hb = b64url_str("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"" KID "\",\"x\":1}");
  bad = join3(hb, p, s);
  expect_err(verify(F.ks, bad, &t), BG_JWT_BAD_SIGNATURE, "header replaced");
  free(bad);
  free(hb);

  /* signature bits flipped, in R and in S */
  size_t n;
  unsigned char *sig = unb64url(s, &n);
  assert_non_null(sig);
  assert_int_equal(n, 64);
  for (int pos = 0; pos < 64; pos += 21) {
    sig[pos] ^= 0x01;
    char *sb = b64url(sig, 64);
    bad = join3(h, p, sb);
    if (verify(F.ks, bad, &t) != BG_JWT_BAD_SIGNATURE)
      fail_msg("signature byte %d flipped: not refused as bad signature", pos);
    free(bad);
    free(sb);
    sig[pos] ^= 0x01;
  }

  /* wrong lengths: one byte short, one byte long, empty, and the DER form */
  size_t lens[] = {63, 65, 32, 1};
  unsigned char longer[65];
  memcpy(longer, sig, 64);
  longer[64] = 0;
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    char *sb = b64url(longer, lens[i]);
    bad = join3(h, p, sb);
    if (verify(F.ks, bad, &t) != BG_JWT_BAD_SIGNATURE)
      fail_msg("signature of %zu bytes not refused as bad signature", lens[i]);
    free(bad);
    free(sb);
  }
  ECDSA_SIG *es = ECDSA_SIG_new();
  assert_non_null(es);
  assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
  unsigned char *der = NULL;
  int derlen = i2d_ECDSA_SIG(es, &der);
  assert_true(derlen > 0);
  char *sb = b64url(der, (size_t)derlen);
  bad = join3(h, p, sb);
  expect_err(verify(F.ks, bad, &t), BG_JWT_BAD_SIGNATURE, "DER signature");
  free(bad);
  free(sb);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);

  /* all-zero R and S */
  memset(longer, 0, sizeof longer);
  sb = b64url(longer, 64);
  bad = join3(h, p, sb);
  expect_err(verify(F.ks, bad, &t), BG_JWT_BAD_SIGNATURE, "zero signature");
  free(bad);
  free(sb);

  assert_false(t.present);
  free(sig);
  free(h);
  free(p);
  free(s);

  /* the untouched token still verifies: the refusals above were for the tampering */
  expect_err(verify(F.ks, tok, &t), BG_JWT_OK, "original");
  free(tok);
}

static void keys_and_kids(void **state)
{
  struct bg_token t;
  json_t *c = user_claims();
  char *tok = bg_jwt_sign(F.key, "no-such-kid", c);
  expect_err(verify(F.ks, tok, &t), BG_JWT_UNKNOWN_KID, "unknown kid");
  free(tok);

  /* a stranger's key, claiming our kid */
  tok = bg_jwt_sign(F.other, KID, c);
  expect_err(verify(F.ks, tok, &t), BG_JWT_BAD_SIGNATURE, "other key, same kid");
  free(tok);

  /* rotation: two keys, a token from either verifies; without a kid none is guessed */
  struct bg_keyset *two = bg_keyset_new();
  assert_true(bg_keyset_add(two, KID, F.key));
  assert_true(bg_keyset_add(two, "key-2", F.other));
  assert_int_equal(bg_keyset_count(two), 2);
  tok = bg_jwt_sign(F.other, "key-2", c);
  expect_err(verify(two, tok, &t), BG_JWT_OK, "second key of two");
  expect_err(verify(F.ks, tok, &t), BG_JWT_UNKNOWN_KID, "second key, not in the one-key set");
  free(tok);
  tok = bg_jwt_sign(F.key, KID, c);
  expect_err(verify(two, tok, &t), BG_JWT_OK, "first key of two");
  free(tok);
  char *payload = claims_text(json_incref(c));
  tok = sign_raw(F.key, "{\"alg\":\"ES256\"}", payload);
  expect_err(verify(two, tok, &t), BG_JWT_UNKNOWN_KID, "no kid, two keys");
  free(tok);
  free(payload);
  bg_keyset_free(two);
  json_decref(c);

  /* only P-256 keys join a keyset */
  struct bg_keyset *ks = bg_keyset_new();
  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  assert_non_null(p384);
  assert_non_null(ed);
  assert_false(bg_keyset_add(ks, "p384", p384));
  assert_false(bg_keyset_add(ks, "ed", ed));
  assert_false(bg_keyset_add(ks, "null", NULL));
  assert_false(bg_keyset_add(ks, NULL, F.key));
  assert_int_equal(bg_keyset_count(ks), 0);
  EVP_PKEY_free(p384);
  EVP_PKEY_free(ed);
  bg_keyset_free(ks);
}

static void user_token_needs_session(void **state)
{
  json_t *c = user_claims();
  json_object_del(c, "sid");
  expect_err(verify_claims(c), BG_JWT_MALFORMED, "user token without sid");

  c = user_claims();
  json_object_set_new(c, "sid", json_string(""));
  expect_err(verify_claims(c), BG_JWT_MALFORMED, "user token with empty sid");

  c = user_claims();
  json_object_del(c, "sub");
  expect_err(verify_claims(c), BG_JWT_MALFORMED, "token without sub");

  c = user_claims();
  json_object_set_new(c, "roles", json_string("querier"));
  expect_err(verify_claims(c), BG_JWT_MALFORMED, "roles not an array");

  /* only "client:" makes a client token; anything else needs a session */
  c = user_claims();
  json_object_del(c, "sid");
  json_object_set_new(c, "sub", json_string("clientworkflow"));
  expect_err(verify_claims(c), BG_JWT_MALFORMED, "sub \"clientworkflow\" without sid");
}

static void client_token(void **state)
{
  json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "aud", AUD, "sub", "client:workflow",
                        "scope", "a b", "iat", (json_int_t)F.now, "exp", (json_int_t)(F.now + 300), "jti", F.jti);
  char *tok = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  struct bg_token t;
  expect_err(verify(F.ks, tok, &t), BG_JWT_OK, "client token");
  assert_true(t.present);
  assert_true(t.is_client);
  assert_string_equal(t.sub, "client:workflow");
  assert_string_equal(t.sid, "");
  assert_string_equal(t.scope, "a b");
  assert_true(bg_token_has_scope(&t, "a"));
  assert_true(bg_token_has_scope(&t, "b"));
  assert_false(bg_token_has_scope(&t, "c"));
  assert_false(bg_token_has_scope(&t, ""));
  assert_false(bg_token_has_scope(&t, "a b"));
  assert_false(bg_token_has_scope(&t, "b "));
  assert_int_equal(t.nroles, 0);
  free(tok);
}

static void duplicate_keys_refused(void **state)
{
  struct bg_token t;
  char payload[1024];
  snprintf(payload, sizeof payload,
           "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\",\"sid\":\"%s\",\"roles\":[\"querier\"],"
           "\"exp\":%lld,\"sub\":\"client:evil\"}",
           F.sub, F.sid, (long long)F.now + 300);
  char *tok = sign_raw(F.key, "{\"alg\":\"ES256\",\"kid\":\"" KID "\"}", payload);
  enum bg_jwt_err rc = verify(F.ks, tok, &t);
  assert_int_not_equal(rc, BG_JWT_OK);
  expect_err(rc, BG_JWT_MALFORMED, "duplicate sub in claims");
  assert_false(t.present);
  free(tok);

  /* the same payload without the duplicate verifies: the refusal was for the duplicate */
  snprintf(payload, sizeof payload,
           "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\",\"sid\":\"%s\",\"roles\":[\"querier\"],"
           "\"exp\":%lld}",
           F.sub, F.sid, (long long)F.now + 300);
  tok = sign_raw(F.key, "{\"alg\":\"ES256\",\"kid\":\"" KID "\"}", payload);
  expect_err(verify(F.ks, tok, &t), BG_JWT_OK, "same claims without duplicate");
  free(tok);

  /* duplicates in the header */
  tok = sign_raw(F.key, "{\"alg\":\"none\",\"alg\":\"ES256\",\"kid\":\"" KID "\"}", payload);
  assert_int_not_equal(verify(F.ks, tok, &t), BG_JWT_OK);
  free(tok);

  /* critical header extensions we do not understand */
  tok = sign_raw(F.key, "{\"alg\":\"ES256\",\"kid\":\"" KID "\",\"crit\":[\"exp\"],\"exp\":1}", payload);
  assert_int_not_equal(verify(F.ks, tok, &t), BG_JWT_OK);
  free(tok);

  /* claims that are not an object */
  tok = sign_raw(F.key, "{\"alg\":\"ES256\",\"kid\":\"" KID "\"}", "[1,2]");
  expect_err(verify(F.ks, tok, &t), BG_JWT_MALFORMED, "array claims");
  free(tok);
}

static void malformed_shapes(void **state)
{
  struct bg_token t;
  static const char *const bad[] = {"", "abc", "a.b", "a.b.c.d", "..", "a..", "...", "!!!.???.***"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    enum bg_jwt_err rc = verify(F.ks, bad[i], &t);
    if (rc != BG_JWT_MALFORMED)
      fail_msg("\"%s\": expected malformed, got %s", bad[i], bg_jwt_err_str(rc));
  }
  expect_err(verify(F.ks, NULL, &t), BG_JWT_MALFORMED, "NULL token");

  /* a correctly signed token over 8 KiB is refused for its size */
  char pad[9001];
  memset(pad, 'p', 9000);
  pad[9000] = '\0';
  json_t *c = user_claims();
  json_object_set_new(c, "pad", json_string(pad));
  char *big = bg_jwt_sign(F.key, KID, c);
  json_decref(c);
  assert_non_null(big);
  assert_true(strlen(big) > 9000);
  expect_err(verify(F.ks, big, &t), BG_JWT_MALFORMED, "oversized token");
  free(big);

  /* every error has a distinct message */
  for (int a = BG_JWT_OK; a <= BG_JWT_NO_KEY; a++) {
    assert_non_null(bg_jwt_err_str(a));
    for (int b = a + 1; b <= BG_JWT_NO_KEY; b++)
      assert_string_not_equal(bg_jwt_err_str(a), bg_jwt_err_str(b));
  }
}

/* ---------- JWKS ---------- */

static char *jwks_text(const struct bg_keyset *ks)
{
  json_t *j = bg_keyset_to_jwks(ks);
  assert_non_null(j);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  assert_non_null(s);
  return s;
}

static void coord(EVP_PKEY *k, const char *name, unsigned char out[32], int *nbytes)
{
  BIGNUM *bn = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
  *nbytes = BN_num_bytes(bn);
  assert_int_equal(BN_bn2binpad(bn, out, 32), 32);
  BN_free(bn);
}

/* RFC 7638 for an EC key, computed here: SHA-256 of the members crv, kty, x, y in that order, no spaces. */
static void ref_thumbprint(const char *x, const char *y, char out[64])
{
  char canon[256];
  snprintf(canon, sizeof canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
  unsigned char md[32];
  unsigned int mdlen = 0;
  assert_int_equal(EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL), 1);
  assert_int_equal(mdlen, 32);
  char *t = b64url(md, 32);
  snprintf(out, 64, "%s", t);
  free(t);
}

static void check_jwk_of(EVP_PKEY *k, const json_t *jwk)
{
  const char *xs = json_string_value(json_object_get(jwk, "x"));
  const char *ys = json_string_value(json_object_get(jwk, "y"));
  assert_non_null(xs);
  assert_non_null(ys);
  assert_int_equal(strlen(xs), 43);
  assert_int_equal(strlen(ys), 43);
  unsigned char want[32];
  int nb;
  size_t n;
  unsigned char *got = unb64url(xs, &n);
  assert_non_null(got);
  assert_int_equal(n, 32);
  coord(k, OSSL_PKEY_PARAM_EC_PUB_X, want, &nb);
  assert_memory_equal(got, want, 32);
  free(got);
  got = unb64url(ys, &n);
  assert_non_null(got);
  assert_int_equal(n, 32);
  coord(k, OSSL_PKEY_PARAM_EC_PUB_Y, want, &nb);
  assert_memory_equal(got, want, 32);
  free(got);

  char ref[64], tp[48];
  ref_thumbprint(xs, ys, ref);
  assert_true(bg_jwk_thumbprint(k, tp));
  assert_string_equal(tp, ref);
}

static void jwks_round_trip(void **state)
{
  struct bg_keyset *two = bg_keyset_new();
  assert_true(bg_keyset_add(two, KID, F.key));
  assert_true(bg_keyset_add(two, "key-2", F.other));
  char *text = jwks_text(two);

  json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  json_t *keys = json_object_get(doc, "keys");
  assert_int_equal(json_array_size(keys), 2);
  json_t *k0 = json_array_get(keys, 0);
  assert_string_equal(json_string_value(json_object_get(k0, "kty")), "EC");
  assert_string_equal(json_string_value(json_object_get(k0, "crv")), "P-256");
  assert_string_equal(json_string_value(json_object_get(k0, "alg")), "ES256");
  assert_string_equal(json_string_value(json_object_get(k0, "use")), "sig");
  assert_string_equal(json_string_value(json_object_get(k0, "kid")), KID);
  assert_null(json_object_get(k0, "d")); /* never the private part */
  check_jwk_of(F.key, k0);
  check_jwk_of(F.other, json_array_get(keys, 1));
  json_decref(doc);

  struct bg_keyset *back = bg_keyset_from_jwks(text, strlen(text));
  assert_non_null(back);
  assert_int_equal(bg_keyset_count(back), 2);
  json_t *c = user_claims();
  char *t1 = bg_jwt_sign(F.key, KID, c), *t2 = bg_jwt_sign(F.other, "key-2", c);
  json_decref(c);
  struct bg_token t;
  expect_err(verify(back, t1, &t), BG_JWT_OK, "token 1 against the imported JWKS");
  expect_err(verify(back, t2, &t), BG_JWT_OK, "token 2 against the imported JWKS");
  free(t1);
  free(t2);
  bg_keyset_free(back);
  free(text);
  bg_keyset_free(two);
}

static void jwks_import_refuses_bad_keys(void **state)
{
  char *text = jwks_text(F.ks);
  json_t *doc = json_loads(text, 0, NULL);
  free(text);
  json_t *good = json_array_get(json_object_get(doc, "keys"), 0);
  struct bg_keyset *ks;

  ks = bg_keyset_from_jwks("not json", 8);
  assert_null(ks);
  ks = bg_keyset_from_jwks("{\"keys\":{}}", 11);
  assert_null(ks);

  /* each variant of the good key must be skipped */
  const char *ytext = json_string_value(json_object_get(good, "y"));
  size_t yn;
  unsigned char *y = unb64url(ytext, &yn);
  assert_non_null(y);
  y[31] ^= 0x01; /* no longer on the curve */
  char *offcurve = b64url(y, 32);
  char *short_y = b64url(y, 31);
  free(y);
  /* the right x followed by 32 more bytes: only the first 32 would make the right key */
  const char *xtext = json_string_value(json_object_get(good, "x"));
  size_t xn;
  unsigned char *x = unb64url(xtext, &xn);
  assert_non_null(x);
  unsigned char x64[64];
  memcpy(x64, x, 32);
  memset(x64 + 32, 0x5a, 32);
  free(x);
  char *long_x = b64url(x64, 64);
  struct {
    const char *member;
    json_t *value; /* NULL: delete */
  } variants[] = {
    {"alg", json_string("HS256")}, {"alg", json_string("none")}, {"kty", json_string("RSA")},
    {"crv", json_string("P-384")}, {"kid", NULL},                {"x", NULL},
    {"y", json_string(offcurve)},  {"y", json_string(short_y)},  {"x", json_string(long_x)},
  };
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    json_t *k = json_deep_copy(good);
    if (variants[i].value)
      json_object_set_new(k, variants[i].member, variants[i].value);
    else
      json_object_del(k, variants[i].member);
    json_t *d = json_pack("{s:[o]}", "keys", k);
    char *s = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    ks = bg_keyset_from_jwks(s, strlen(s));
    if (bg_keyset_count(ks) != 0)
      fail_msg("imported a key from %s", s);
    bg_keyset_free(ks);
    free(s);
  }
  free(offcurve);
  free(short_y);
  free(long_x);

  /* a key without "alg" is kept */
  json_t *k = json_deep_copy(good);
  json_object_del(k, "alg");
  json_t *d = json_pack("{s:[o]}", "keys", k);
  char *s = json_dumps(d, JSON_COMPACT);
  json_decref(d);
  ks = bg_keyset_from_jwks(s, strlen(s));
  assert_int_equal(bg_keyset_count(ks), 1);
  bg_keyset_free(ks);
  free(s);
  json_decref(doc);
}

/* About one P-256 key in 128 has a leading zero byte in x or y: its JWK coordinates must still be 32 bytes. */
static void leading_zero_coordinate(void **state)
{
  EVP_PKEY *k = NULL;
  int tries;
  for (tries = 0; tries < 2000; tries++) {
    k = new_key();
    unsigned char b[32];
    int nx, ny;
    coord(k, OSSL_PKEY_PARAM_EC_PUB_X, b, &nx);
    coord(k, OSSL_PKEY_PARAM_EC_PUB_Y, b, &ny);
    if (nx < 32 || ny < 32)
      break;
    EVP_PKEY_free(k);
    k = NULL;
  }
  if (!k)
    fail_msg("no key with a leading zero coordinate in %d tries", tries);

  struct bg_keyset *ks = bg_keyset_new();
  assert_true(bg_keyset_add(ks, "z", k));
  char *text = jwks_text(ks);
  json_t *doc = json_loads(text, 0, NULL);
  check_jwk_of(k, json_array_get(json_object_get(doc, "keys"), 0));
  json_decref(doc);

  struct bg_keyset *back = bg_keyset_from_jwks(text, strlen(text));
  assert_int_equal(bg_keyset_count(back), 1);
  json_t *c = user_claims();
  char *tok = bg_jwt_sign(k, "z", c);
  json_decref(c);
  struct bg_token t;
  expect_err(verify(back, tok, &t), BG_JWT_OK, "leading-zero key through JWKS");
  free(tok);
  bg_keyset_free(back);
  free(text);
  bg_keyset_free(ks);
  EVP_PKEY_free(k);
}

/* A public key from base64url coordinates, built here without the library. */
static EVP_PKEY *key_from_xy(const char *xb64, const char *yb64)
{
  size_t xn, yn;
  unsigned char *x = unb64url(xb64, &xn), *y = unb64url(yb64, &yn);
  assert_true(x && y && xn == 32 && yn == 32);
  unsigned char pub[65] = {0x04};
  memcpy(pub + 1, x, 32);
  memcpy(pub + 33, y, 32);
  free(x);
  free(y);
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub),
    OSSL_PARAM_construct_end(),
  };
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *k = NULL;
  assert_non_null(ctx);
  assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
  assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
  EVP_PKEY_CTX_free(ctx);
  return k;
}

/* The JWK is the P-256 generator G (private key 1): a fixed, well-known point. */
static void thumbprint_of_known_key(void **state)
{
  static const char x[] = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
  static const char y[] = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
  EVP_PKEY *k = key_from_xy(x, y);
  char ref[64], tp[48];
  ref_thumbprint(x, y, ref);
  /* the same value from Python's hashlib, so the in-test computation is itself checked */
  assert_string_equal(ref, "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M");
  assert_true(bg_jwk_thumbprint(k, tp));
  assert_string_equal(tp, ref);
  EVP_PKEY_free(k);

  EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  assert_false(bg_jwk_thumbprint(p384, tp));
  EVP_PKEY_free(p384);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(good_token_accepted_and_copied),
    cmocka_unit_test(alg_none_and_other_algs_refused),
    cmocka_unit_test(hs256_with_public_key_as_secret_refused),
    cmocka_unit_test(libjwt_es256_interoperates),
    cmocka_unit_test(no_key),
    cmocka_unit_test(time_claims),
    cmocka_unit_test(issuer_and_audience),
    cmocka_unit_test(tampering),
    cmocka_unit_test(keys_and_kids),
    cmocka_unit_test(user_token_needs_session),
    cmocka_unit_test(client_token),
    cmocka_unit_test(duplicate_keys_refused),
    cmocka_unit_test(malformed_shapes),
    cmocka_unit_test(jwks_round_trip),
    cmocka_unit_test(jwks_import_refuses_bad_keys),
    cmocka_unit_test(leading_zero_coordinate),
    cmocka_unit_test(thumbprint_of_known_key),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
