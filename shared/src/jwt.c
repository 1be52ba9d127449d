/* ES256 JWTs with OpenSSL and cached keys (jwt.h). We sign and verify ourselves because
 * libjwt 1.10 re-parses PEM per call and accepts algorithm confusion (PITFALLS.md). */
#include "bligate/jwt.h"
#include "bligate/util.h"
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 16
#define MAX_TOKEN 8192

/* Append-only: a slot is filled before n counts it (release), so readers never lock; adders
 * are serialised by the owner (one refresher). */
struct bg_keyset {
  _Atomic int n;
  struct {
    char kid[64];
    EVP_PKEY *pkey;
  } k[MAX_KEYS];
  void (*refresh)(void *ctx);
  void *refresh_ctx;
};

const char *bg_jwt_err_str(enum bg_jwt_err e)
{
  static const char *s[] = {"ok", "malformed token", "algorithm not allowed", "unknown key id",
                            "bad signature", "expired", "not yet valid", "wrong issuer",
                            "wrong audience", "no verification key"};
  return e <= BG_JWT_NO_KEY ? s[e] : "?";
}

struct bg_keyset *bg_keyset_new(void) { return calloc(1, sizeof(struct bg_keyset)); }

static bool is_p256(EVP_PKEY *pkey)
{
  char group[64];
  size_t len;
  if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
    return false;
  if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
    return false;
  return strcmp(group, "prime256v1") == 0;
}

bool bg_keyset_add(struct bg_keyset *ks, const char *kid, EVP_PKEY *pkey)
{
  int n = ks ? atomic_load(&ks->n) : 0;
  if (!ks || n >= MAX_KEYS || !kid || strlen(kid) >= sizeof ks->k[0].kid || !is_p256(pkey))
    return false;
  if (!EVP_PKEY_up_ref(pkey))
    return false;
  memcpy(ks->k[n].kid, kid, strlen(kid) + 1); /* length checked above */
  ks->k[n].pkey = pkey;
  atomic_store(&ks->n, n + 1);
  return true;
}

static EVP_PKEY *find_key(const struct bg_keyset *ks, const char *kid);

size_t bg_keyset_merge(struct bg_keyset *dst, const struct bg_keyset *src)
{
  size_t added = 0;
  int n = atomic_load(&src->n);
  for (int i = 0; i < n; i++)
    if (!find_key(dst, src->k[i].kid) && bg_keyset_add(dst, src->k[i].kid, src->k[i].pkey))
      added++;
  return added;
}

EVP_PKEY *bg_keyset_find(const struct bg_keyset *ks, const char *kid) { return ks && kid ? find_key(ks, kid) : NULL; }

void bg_keyset_on_unknown_kid(struct bg_keyset *ks, void (*fn)(void *ctx), void *ctx)
{
  ks->refresh = fn;
  ks->refresh_ctx = ctx;
}

size_t bg_keyset_count(const struct bg_keyset *ks) { return ks ? (size_t)atomic_load(&ks->n) : 0; }

void bg_keyset_free(struct bg_keyset *ks)
{
  if (!ks)
    return;
  for (int i = 0; i < ks->n; i++)
    EVP_PKEY_free(ks->k[i].pkey);
  free(ks);
}

static bool pub_xy(EVP_PKEY *pkey, unsigned char x[32], unsigned char y[32])
{
  BIGNUM *bx = NULL, *by = NULL;
  bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) &&
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) &&
            /* padded: plain BN_bn2bin drops leading zero bytes for ~1 key in 256 */
            BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32;
  BN_free(bx);
  BN_free(by);
  return ok;
}

bool bg_jwk_thumbprint(EVP_PKEY *pkey, char out[48])
{
  unsigned char x[32], y[32];
  if (!is_p256(pkey) || !pub_xy(pkey, x, y))
    return false;
  char *bx = bg_b64url_encode(x, 32), *by = bg_b64url_encode(y, 32);
  char canon[256];
  bool ok = bx && by &&
            bg_fmt(canon, sizeof canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", bx, by);
  free(bx);
  free(by);
  if (!ok)
    return false;
  unsigned char md[32];
  bg_sha256(canon, strlen(canon), md);
  char *t = bg_b64url_encode(md, 32);
  if (!t)
    return false;
  memcpy(out, t, strlen(t) + 1);
  free(t);
  return true;
}

json_t *bg_keyset_to_jwks(const struct bg_keyset *ks)
{
  json_t *keys = json_array();
  for (int i = 0; ks && i < ks->n; i++) {
    unsigned char x[32], y[32];
    if (!pub_xy(ks->k[i].pkey, x, y))
      continue;
    char *bx = bg_b64url_encode(x, 32), *by = bg_b64url_encode(y, 32);
    json_array_append_new(keys, json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "kty", "EC", "crv",
                                          "P-256", "x", bx, "y", by, "kid", ks->k[i].kid, "alg",
                                          "ES256", "use", "sig"));
    free(bx);
    free(by);
  }
  return json_pack("{s:o}", "keys", keys);
}

static EVP_PKEY *pkey_from_xy(const unsigned char *x, const unsigned char *y)
{
  unsigned char pub[65];
  pub[0] = 0x04;
  memcpy(pub + 1, x, 32);
  memcpy(pub + 33, y, 32);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  EVP_PKEY *pkey = NULL;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) && (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) &&
      EVP_PKEY_fromdata_init(ctx) > 0)
    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

struct bg_keyset *bg_keyset_from_jwks(const char *text, size_t len)
{
  json_error_t err;
  json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  json_t *keys = json_object_get(doc, "keys");
  if (!json_is_array(keys)) {
    json_decref(doc);
    return NULL;
  }
  struct bg_keyset *ks = bg_keyset_new();
  size_t i;
  json_t *k;
  json_array_foreach(keys, i, k)
  {
    const char *kty = json_string_value(json_object_get(k, "kty"));
    const char *crv = json_string_value(json_object_get(k, "crv"));
    const char *alg = json_string_value(json_object_get(k, "alg"));
    const char *kid = json_string_value(json_object_get(k, "kid"));
    const char *xs = json_string_value(json_object_get(k, "x"));
    const char *ys = json_string_value(json_object_get(k, "y"));
    if (!kty || strcmp(kty, "EC") || !crv || strcmp(crv, "P-256") || (alg && strcmp(alg, "ES256")) || !kid ||
        !xs || !ys)
      continue;
    size_t xl, yl;
    unsigned char *x = bg_b64_decode(xs, &xl), *y = bg_b64_decode(ys, &yl);
    if (x && y && xl == 32 && yl == 32) {
      EVP_PKEY *p = pkey_from_xy(x, y);
      if (p) {
        bg_keyset_add(ks, kid, p);
        EVP_PKEY_free(p);
      }
    }
    free(x);
    free(y);
  }
  json_decref(doc);
  return ks;
}

static EVP_PKEY *find_key(const struct bg_keyset *ks, const char *kid)
{
  int n = atomic_load(&ks->n);
  for (int i = 0; i < n; i++)
    if (strcmp(ks->k[i].kid, kid) == 0)
      return ks->k[i].pkey;
  return NULL;
}

static bool copy_str(char *dst, size_t cap, const json_t *v)
{
  const char *s = json_string_value(v);
  if (!s || strlen(s) >= cap)
    return false;
  memcpy(dst, s, strlen(s) + 1);
  return true;
}

static bool claim_time(const json_t *claims, const char *name, time_t *out, bool required)
{
  json_t *v = json_object_get(claims, name);
  if (!v)
    return !required;
  if (!json_is_integer(v) && !json_is_real(v))
    return false;
  *out = (time_t)json_number_value(v);
  return true;
}

static bool aud_matches(const json_t *aud, const char *want)
{
  if (json_is_string(aud))
    return strcmp(json_string_value(aud), want) == 0;
  size_t i;
  json_t *a;
  json_array_foreach(aud, i, a) if (json_is_string(a) && strcmp(json_string_value(a), want) == 0) return true;
  return false;
}

enum bg_jwt_err bg_jwt_verify(const struct bg_keyset *ks, const char *token, const char *issuer,
                              const char *audience, time_t now, int leeway, struct bg_token *out)
{
  memset(out, 0, sizeof *out);
  if (!ks || ks->n == 0)
    return BG_JWT_NO_KEY;
  size_t tlen = token ? strlen(token) : 0;
  if (tlen == 0 || tlen > MAX_TOKEN)
    return BG_JWT_MALFORMED;
  const char *d1 = strchr(token, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d1 || !d2 || strchr(d2 + 1, '.') || d2 + 1 == token + tlen)
    return BG_JWT_MALFORMED;

  char part[MAX_TOKEN + 1];
  enum bg_jwt_err rc = BG_JWT_MALFORMED;
  json_t *hdr = NULL, *claims = NULL;
  unsigned char *hraw = NULL, *praw = NULL, *sig = NULL;
  size_t hlen, plen, slen;
  ECDSA_SIG *es = NULL;
  unsigned char *der = NULL;
  EVP_MD_CTX *md = NULL;

  memcpy(part, token, (size_t)(d1 - token));
  part[d1 - token] = '\0';
  if (!(hraw = bg_b64_decode(part, &hlen)) || !(hdr = json_loadb((char *)hraw, hlen, JSON_REJECT_DUPLICATES, NULL)))
    goto out;
  /* Only ES256, whatever the header claims: no "none", no HS* with a public key as secret. */
  const char *alg = json_string_value(json_object_get(hdr, "alg"));
  if (!alg || strcmp(alg, "ES256") != 0) {
    rc = BG_JWT_BAD_ALG;
    goto out;
  }
  if (json_object_get(hdr, "crit")) /* we understand no critical extensions */
    goto out;
  const char *kid = json_string_value(json_object_get(hdr, "kid"));
  EVP_PKEY *key = kid ? find_key(ks, kid) : (atomic_load(&ks->n) == 1 ? ks->k[0].pkey : NULL);
  if (!key && kid && ks->refresh) {
    /* a key the issuer has rotated in since we fetched ours: ask once (the owner rate-limits) */
    ks->refresh(ks->refresh_ctx);
    key = find_key(ks, kid);
  }
  if (!key) {
    rc = BG_JWT_UNKNOWN_KID;
    goto out;
  }

  memcpy(part, d2 + 1, tlen - (size_t)(d2 + 1 - token));
  part[tlen - (size_t)(d2 + 1 - token)] = '\0';
  if (!(sig = bg_b64_decode(part, &slen)) || slen != 64)
    goto bad_sig;
  BIGNUM *br = BN_bin2bn(sig, 32, NULL), *bs = BN_bin2bn(sig + 32, 32, NULL);
  es = ECDSA_SIG_new();
  if (!br || !bs || !es || !ECDSA_SIG_set0(es, br, bs)) {
    BN_free(br);
    BN_free(bs);
    goto bad_sig;
  }
  int derlen = i2d_ECDSA_SIG(es, &der);
  md = EVP_MD_CTX_new();
  if (derlen <= 0 || !md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)token, (size_t)(d2 - token)) != 1)
    goto bad_sig;

  memcpy(part, d1 + 1, (size_t)(d2 - d1 - 1));
  part[d2 - d1 - 1] = '\0';
  if (!(praw = bg_b64_decode(part, &plen)) ||
      !(claims = json_loadb((char *)praw, plen, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(claims))
    goto out;
  if (!claim_time(claims, "exp", &out->exp, true) || !claim_time(claims, "nbf", &out->nbf, false) ||
      !claim_time(claims, "iat", &out->iat, false))
    goto out;
  const char *iss = json_string_value(json_object_get(claims, "iss"));
  if (!iss || !issuer || strcmp(iss, issuer) != 0) {
    rc = BG_JWT_BAD_ISSUER;
    goto out;
  }
  if (!audience || !aud_matches(json_object_get(claims, "aud"), audience)) {
    rc = BG_JWT_BAD_AUDIENCE;
    goto out;
  }
  if (now >= out->exp + leeway) {
    rc = BG_JWT_EXPIRED;
    goto out;
  }
  if (out->nbf && now < out->nbf) { /* leeway is for expiry only */
    rc = BG_JWT_NOT_YET_VALID;
    goto out;
  }
  if (!copy_str(out->sub, sizeof out->sub, json_object_get(claims, "sub")))
    goto out;
  json_t *v;
  if ((v = json_object_get(claims, "sid")) && !copy_str(out->sid, sizeof out->sid, v))
    goto out;
  if ((v = json_object_get(claims, "unit")) && !copy_str(out->unit, sizeof out->unit, v))
    goto out;
  if ((v = json_object_get(claims, "jti")) && !copy_str(out->jti, sizeof out->jti, v))
    goto out;
  if ((v = json_object_get(claims, "scope")) && !copy_str(out->scope, sizeof out->scope, v))
    goto out;
  json_t *roles = json_object_get(claims, "roles");
  if (roles) {
    size_t i;
    json_t *role;
    if (!json_is_array(roles) || json_array_size(roles) > BG_MAX_ROLES)
      goto out;
    json_array_foreach(roles, i, role) if (!copy_str(out->roles[out->nroles++], sizeof out->roles[0], role)) goto out;
  }
  out->is_client = strncmp(out->sub, "client:", 7) == 0;
  /* A user token must name its session; a client token has none. */
  if (!out->is_client && !out->sid[0])
    goto out;
  out->present = true;
  rc = BG_JWT_OK;
  goto out;

bad_sig:
  rc = BG_JWT_BAD_SIGNATURE;
out:
  if (rc != BG_JWT_OK)
    memset(out, 0, sizeof *out);
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  free(hraw);
  free(praw);
  free(sig);
  json_decref(hdr);
  json_decref(claims);
  return rc;
}

char *bg_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims)
{
  json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
  char *h = json_dumps(hdr, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
  json_decref(hdr);
  char *hb = h ? bg_b64url_encode(h, strlen(h)) : NULL, *cb = c ? bg_b64url_encode(c, strlen(c)) : NULL;
  free(h);
  free(c);
  char *out = NULL, *input = NULL, *sb = NULL;
  unsigned char der[80];
  size_t derlen = sizeof der;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  ECDSA_SIG *es = NULL;
  if (!hb || !cb || !md)
    goto done;
  size_t ilen = strlen(hb) + 1 + strlen(cb);
  if (!(input = malloc(ilen + 1)))
    goto done;
  snprintf(input, ilen + 1, "%s.%s", hb, cb);
  if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(md, der, &derlen, (unsigned char *)input, ilen) != 1)
    goto done;
  const unsigned char *p = der;
  if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)))
    goto done;
  unsigned char raw[64];
  /* JWS wants raw R||S, each padded to 32 bytes, not DER */
  if (BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
    goto done;
  if (!(sb = bg_b64url_encode(raw, 64)))
    goto done;
  size_t olen = ilen + 1 + strlen(sb);
  if ((out = malloc(olen + 1)))
    snprintf(out, olen + 1, "%s.%s", input, sb);
done:
  ECDSA_SIG_free(es);
  EVP_MD_CTX_free(md);
  free(hb);
  free(cb);
  free(input);
  free(sb);
  return out;
}

void bg_token_set_authz(struct bg_token *t, const json_t *roles, const char *unit)
{
  size_t i;
  json_t *v;
  t->nroles = 0;
  json_array_foreach(roles, i, v)
  {
    const char *role = json_string_value(v);
    if (role && strlen(role) < sizeof t->roles[0] && t->nroles < BG_MAX_ROLES)
      snprintf(t->roles[t->nroles++], sizeof t->roles[0], "%s", role);
  }
  snprintf(t->unit, sizeof t->unit, "%s", unit ? unit : "");
}

bool bg_token_has_role(const struct bg_token *t, const char *role)
{
  for (int i = 0; i < t->nroles; i++)
    if (strcmp(t->roles[i], role) == 0)
      return true;
  return false;
}

bool bg_token_scope_arg(const struct bg_token *t, const char *prefix, char *out, size_t outlen)
{
  size_t n = strlen(prefix);
  for (const char *p = t->scope; *p;) {
    const char *e = strchr(p, ' ');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > n && strncmp(p, prefix, n) == 0 && len - n < outlen) {
      memcpy(out, p + n, len - n);
      out[len - n] = '\0';
      return true;
    }
    if (!e)
      break;
    p = e + 1;
  }
  return false;
}

bool bg_token_has_scope(const struct bg_token *t, const char *scope)
{
  size_t n = strlen(scope);
  for (const char *p = t->scope; *p;) {
    const char *e = strchr(p, ' ');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, scope, n) == 0)
      return true;
    if (!e)
      break;
    p = e + 1;
  }
  return false;
}
