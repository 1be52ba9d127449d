/* JWT (JWS compact, ES256 only) signing and verification with OpenSSL and cached keys.
 * Refuses every algorithm but ES256, refuses without a key, checks exp/nbf/iss/aud itself
 * (libjwt 1.10 does none of this safely: PITFALLS.md). */
#ifndef BLIGATE_JWT_H
#define BLIGATE_JWT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <openssl/evp.h>

#define BG_MAX_ROLES 12

struct bg_token {
  bool present;
  char sub[80];       /* account id, or "client:<id>" */
  char sid[40];       /* session id; empty for clients */
  char unit[40];
  char jti[40];
  char roles[BG_MAX_ROLES][32];
  int nroles;
  char scope[256];    /* clients */
  time_t iat, exp, nbf;
  bool is_client;
};

enum bg_jwt_err {
  BG_JWT_OK = 0,
  BG_JWT_MALFORMED,
  BG_JWT_BAD_ALG,
  BG_JWT_UNKNOWN_KID,
  BG_JWT_BAD_SIGNATURE,
  BG_JWT_EXPIRED,
  BG_JWT_NOT_YET_VALID,
  BG_JWT_BAD_ISSUER,
  BG_JWT_BAD_AUDIENCE,
  BG_JWT_NO_KEY,
};
const char *bg_jwt_err_str(enum bg_jwt_err e);

/* A set of public keys by kid. Append-only: readers never lock, one writer at a time. */
struct bg_keyset;
struct bg_keyset *bg_keyset_new(void);
/* Takes a reference to pkey (EC P-256 only; others are refused). */
bool bg_keyset_add(struct bg_keyset *ks, const char *kid, EVP_PKEY *pkey);
/* Parses a JWKS document ({"keys":[...]}); keeps only EC P-256 keys with alg ES256 or none. */
struct bg_keyset *bg_keyset_from_jwks(const char *json, size_t len);
json_t *bg_keyset_to_jwks(const struct bg_keyset *ks);
size_t bg_keyset_count(const struct bg_keyset *ks);
/* The key of a kid, or NULL. */
EVP_PKEY *bg_keyset_find(const struct bg_keyset *ks, const char *kid);
/* Adds src's keys that dst lacks (for a refreshed JWKS); returns how many. */
size_t bg_keyset_merge(struct bg_keyset *dst, const struct bg_keyset *src);
/* fn(ctx) runs when a token names a kid the set lacks, before it is refused: the issuer may have
 * rotated its key. fn may add keys (rate-limiting itself); the lookup is then repeated. */
void bg_keyset_on_unknown_kid(struct bg_keyset *ks, void (*fn)(void *ctx), void *ctx);
void bg_keyset_free(struct bg_keyset *ks);

/* kid derived as RFC 7638 thumbprint (base64url). out: 44 bytes. */
bool bg_jwk_thumbprint(EVP_PKEY *pkey, char out[48]);

/* Verifies token against ks; on success fills *out. now is the service clock. leeway in s. */
enum bg_jwt_err bg_jwt_verify(const struct bg_keyset *ks, const char *token, const char *issuer,
                              const char *audience, time_t now, int leeway, struct bg_token *out);

/* Signs claims (not stolen) with ES256; returns malloc'd compact token. */
char *bg_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims);

bool bg_token_has_role(const struct bg_token *t, const char *role);
/* Replaces the token's roles (a JSON array of strings; what does not fit is left out) and unit
 * with the ones accounts holds now: authorization goes by today's, not the token's copy. */
void bg_token_set_authz(struct bg_token *t, const json_t *roles, const char *unit);
bool bg_token_has_scope(const struct bg_token *t, const char *scope);
/* A scope with an argument, "<prefix><argument>" (e.g. "approvals:decide:<unit id>"): copies
 * the first one's argument into out; false when there is none (or it does not fit). */
bool bg_token_scope_arg(const struct bg_token *t, const char *prefix, char *out, size_t outlen);

#endif
