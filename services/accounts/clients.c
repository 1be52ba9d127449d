/* OAuth2 client secrets: stored as PBKDF2-HMAC-SHA256 with a random salt, compared in
 * constant time. Format: "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". */
#include "acct.h"
#include "bligate/util.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITERATIONS 20000

static bool derive(const char *secret, const unsigned char *salt, size_t saltlen, long iter, unsigned char out[32])
{
  return PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, (int)saltlen, (int)iter, EVP_sha256(), 32, out) == 1;
}

char *acct_secret_hash(const char *secret)
{
  unsigned char salt[16], h[32];
  char salthex[33], hhex[65];
  if (!bg_random(salt, sizeof salt) || !derive(secret, salt, sizeof salt, ITERATIONS, h))
    return NULL;
  bg_hex(salt, sizeof salt, salthex);
  bg_hex(h, sizeof h, hhex);
  char *out = malloc(160);
  if (out)
    snprintf(out, 160, "pbkdf2-sha256$%d$%s$%s", ITERATIONS, salthex, hhex);
  return out;
}

static bool unhex(const char *s, unsigned char *out, size_t n)
{
  if (strlen(s) != 2 * n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    char pair[3] = {s[2 * i], s[2 * i + 1], 0};
    char *end;
    v = (unsigned)strtoul(pair, &end, 16);
    if (*end)
      return false;
    out[i] = (unsigned char)v;
  }
  return true;
}

bool acct_secret_check(const char *secret, const char *stored)
{
  char buf[200];
  if (!bg_fmt(buf, sizeof buf, "%s", stored) || strncmp(buf, "pbkdf2-sha256$", 14) != 0)
    return false;
  char *it = buf + 14, *salt = strchr(it, '$'), *hash = salt ? strchr(salt + 1, '$') : NULL;
  if (!hash)
    return false;
  *salt++ = '\0';
  *hash++ = '\0';
  long iter;
  unsigned char s[16], want[32], got[32];
  if (!bg_parse_long(it, 1000, 10000000, &iter) || !unhex(salt, s, sizeof s) || !unhex(hash, want, sizeof want) ||
      !derive(secret, s, sizeof s, iter, got))
    return false;
  return bg_ct_eq(got, sizeof got, want, sizeof want);
}

/* A stored form of no one's secret, at the same cost as every real one (acct_secret_decoy). */
static char decoy[160];

static void make_decoy(void)
{
  unsigned char raw[32];
  char secret[65];
  char *h = NULL;
  if (bg_random(raw, sizeof raw)) {
    bg_hex(raw, sizeof raw, secret);
    h = acct_secret_hash(secret);
  }
  snprintf(decoy, sizeof decoy, "%s", h ? h : "pbkdf2-sha256$20000$00000000000000000000000000000000$00");
  free(h);
}

const char *acct_secret_decoy(void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, make_decoy);
  return decoy;
}
