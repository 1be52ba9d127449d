/* Signed tree head verification (sthsig.h): ES256 over the JWS signing input, raw R||S. */
#include "sthsig.h"
#include "bligate/util.h"
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *aud_jwk_public(const json_t *jwk)
{
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  const char *crv = json_string_value(json_object_get(jwk, "crv"));
  const char *xs = json_string_value(json_object_get(jwk, "x"));
  const char *ys = json_string_value(json_object_get(jwk, "y"));
  if (!kty || strcmp(kty, "EC") || !crv || strcmp(crv, "P-256") || !xs || !ys)
    return NULL;
  size_t xl = 0, yl = 0;
  unsigned char *x = bg_b64_decode(xs, &xl), *y = bg_b64_decode(ys, &yl);
  EVP_PKEY *pkey = NULL;
  if (x && y && xl == 32 && yl == 32) {
    unsigned char pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt),
      OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
      pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
  }
  free(x);
  free(y);
  return pkey;
}

static json_t *part_json(const char *s, size_t n)
{
  char *tmp = strndup(s, n);
  size_t len = 0;
  unsigned char *raw = tmp ? bg_b64_decode(tmp, &len) : NULL;
  json_t *j = raw ? json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
  free(raw);
  free(tmp);
  return j;
}

bool aud_jws_kid(const char *jws, char *out, size_t cap)
{
  const char *d1 = jws ? strchr(jws, '.') : NULL;
  if (!d1)
    return false;
  json_t *hdr = part_json(jws, (size_t)(d1 - jws));
  const char *kid = json_string_value(json_object_get(hdr, "kid"));
  bool ok = kid && strlen(kid) < cap;
  if (ok)
    memcpy(out, kid, strlen(kid) + 1);
  json_decref(hdr);
  return ok;
}

bool aud_sth_check(const char *jws, EVP_PKEY *pub, struct aud_sth *out)
{
  memset(out, 0, sizeof *out);
  const char *d1 = jws ? strchr(jws, '.') : NULL;
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!pub || !d1 || !d2 || strchr(d2 + 1, '.'))
    return false;
  bool ok = false;
  json_t *hdr = part_json(jws, (size_t)(d1 - jws)), *payload = NULL;
  unsigned char *sig = NULL, *der = NULL;
  ECDSA_SIG *es = NULL;
  EVP_MD_CTX *md = NULL;
  size_t slen = 0;
  const char *alg = json_string_value(json_object_get(hdr, "alg"));
  if (!alg || strcmp(alg, "ES256") != 0) /* nothing else, whatever the header says */
    goto out;
  if (!(sig = bg_b64_decode(d2 + 1, &slen)) || slen != 64)
    goto out;
  es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
    BN_free(r);
    BN_free(s);
    goto out;
  }
  int dlen = i2d_ECDSA_SIG(es, &der);
  md = EVP_MD_CTX_new();
  if (dlen <= 0 || !md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
      EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)jws, (size_t)(d2 - jws)) != 1)
    goto out;
  payload = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
  const json_t *size = json_object_get(payload, "tree_size");
  const char *root = json_string_value(json_object_get(payload, "root_hash"));
  const char *ts = json_string_value(json_object_get(payload, "timestamp"));
  const char *kid = json_string_value(json_object_get(hdr, "kid"));
  if (!json_is_integer(size) || json_integer_value(size) < 0 || !aud_hash_unhex(root, out->root) || !ts ||
      strlen(ts) >= sizeof out->timestamp)
    goto out;
  out->tree_size = (uint64_t)json_integer_value(size);
  memcpy(out->timestamp, ts, strlen(ts) + 1);
  if (kid && strlen(kid) < sizeof out->kid)
    memcpy(out->kid, kid, strlen(kid) + 1);
  ok = true;
out:
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  free(sig);
  json_decref(hdr);
  json_decref(payload);
  return ok;
}
