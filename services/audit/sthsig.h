/* Signed tree heads: a JWS (ES256) over {"root_hash","timestamp","tree_size"}. Checking one
 * needs only the published public key; the CLI's offline verifier uses this file too. */
#ifndef AUD_STHSIG_H
#define AUD_STHSIG_H
#include "merkle.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

struct aud_sth {
  uint64_t tree_size;
  unsigned char root[AUD_HASH_LEN];
  char timestamp[40];
  char kid[64];
};

/* An EC P-256 public key from a JWK ({"kty":"EC","crv":"P-256","x","y"}); NULL otherwise. */
EVP_PKEY *aud_jwk_public(const json_t *jwk);
/* The kid named in the JWS header (for picking the key), copied to out. */
bool aud_jws_kid(const char *jws, char *out, size_t cap);
/* Verifies the JWS with pub (ES256 only) and parses its payload into *out. */
bool aud_sth_check(const char *jws, EVP_PKEY *pub, struct aud_sth *out);

#endif
