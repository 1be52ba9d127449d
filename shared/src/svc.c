/* Service identity against accounts: JWKS and client-credentials tokens (svc.h). */
#include "bligate/svc.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bg_svc {
  char *accounts_url, *jwks_url, *client_id, *secret;
  struct bg_keyset *keys;
  pthread_mutex_t mu;
  char token[4096];
  time_t token_exp;
  time_t token_got; /* when it was issued, by our clock */
  pthread_mutex_t keys_mu;
  int64_t keys_fetched_us; /* monotonic: refreshes are at most one per 10 s */
};

struct bg_svc *bg_svc_from_env(void)
{
  struct bg_svc *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  const char *acc = bg_cfg_str("BLIGATE_ACCOUNTS_URL", NULL);
  char def[512];
  snprintf(def, sizeof def, "%s/.well-known/jwks.json", acc);
  s->accounts_url = strdup(acc);
  s->jwks_url = strdup(bg_cfg_str("BLIGATE_JWKS_URL", def));
  s->client_id = strdup(bg_cfg_str("BLIGATE_CLIENT_ID", NULL));
  size_t n;
  char *secret = bg_cfg_file("BLIGATE_CLIENT_SECRET_FILE", &n);
  secret[strcspn(secret, "\r\n")] = '\0';
  s->secret = secret;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->keys_mu, NULL);
  return s;
}

void bg_svc_free(struct bg_svc *s)
{
  if (!s)
    return;
  bg_keyset_free(s->keys);
  OPENSSL_cleanse(s->secret, strlen(s->secret));
  free(s->secret);
  free(s->accounts_url);
  free(s->jwks_url);
  free(s->client_id);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* A token names a key we do not have: accounts may have rotated its signing key. Fetch the
 * JWKS again (at most every 10 s, so forged kids cannot make us hammer accounts) and add the
 * new keys; keys already held stay, so tokens signed before the rotation still verify. */
static void refresh_keys(void *ctx)
{
  struct bg_svc *s = ctx;
  pthread_mutex_lock(&s->keys_mu);
  int64_t now = bg_mono_us();
  if (now - s->keys_fetched_us >= 10 * 1000000LL) {
    s->keys_fetched_us = now;
    struct bg_httpc_req req = {.method = "GET", .url = s->jwks_url, .timeout_ms = 2000};
    struct bg_httpc_resp resp;
    if (bg_httpc_do(&req, &resp) && resp.status == 200) {
      struct bg_keyset *fresh = bg_keyset_from_jwks(resp.body, resp.len);
      size_t added = fresh ? bg_keyset_merge(s->keys, fresh) : 0;
      if (added)
        bg_info("token keys: %zu new from %s", added, s->jwks_url);
      bg_keyset_free(fresh);
    } else {
      bg_warn("token keys: cannot refresh from %s", s->jwks_url);
    }
    bg_httpc_resp_free(&resp);
  }
  pthread_mutex_unlock(&s->keys_mu);
}

const struct bg_keyset *bg_svc_keys(struct bg_svc *s, int wait_ms)
{
  if (s->keys)
    return s->keys;
  int64_t until = bg_mono_us() + (int64_t)wait_ms * 1000;
  for (int attempt = 0;; attempt++) {
    struct bg_httpc_req req = {.method = "GET", .url = s->jwks_url, .timeout_ms = 2000};
    struct bg_httpc_resp resp;
    if (bg_httpc_do(&req, &resp) && resp.status == 200) {
      struct bg_keyset *ks = bg_keyset_from_jwks(resp.body, resp.len);
      bg_httpc_resp_free(&resp);
      if (ks && bg_keyset_count(ks) > 0) {
        s->keys = ks;
        /* the first unknown kid may refresh at once: the limit is between refreshes */
        s->keys_fetched_us = INT64_MIN / 2;
        bg_keyset_on_unknown_kid(ks, refresh_keys, s);
        return ks;
      }
      bg_keyset_free(ks);
    } else {
      bg_httpc_resp_free(&resp);
    }
    if (bg_mono_us() >= until)
      break;
    /* accounts is starting: back off a little, then ask again (bounded by wait_ms) */
    struct timespec ts = {0, (attempt < 10 ? 50 : 250) * 1000000L};
    nanosleep(&ts, NULL);
  }
  bg_error("cannot fetch token keys from %s", s->jwks_url);
  return NULL;
}

static int form_escape(char *out, size_t cap, const char *in)
{
  size_t j = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
        *p == '_' || *p == '.' || *p == '~') {
      if (j + 1 >= cap)
        return -1;
      out[j++] = (char)*p;
    } else {
      if (j + 3 >= cap)
        return -1;
      snprintf(out + j, 4, "%%%02X", *p);
      j += 3;
    }
  }
  out[j] = '\0';
  return (int)j;
}

bool bg_svc_token(struct bg_svc *s, char *buf, size_t len)
{
  pthread_mutex_lock(&s->mu);
  time_t now = bg_now();
  bool ok = false;
  /* A token got "in the future" is not reused: the clock went back (the test clock, or a
   * stepped system clock), and its issuer now sees it as not yet valid. */
  if (s->token[0] && s->token_exp - 60 > now && s->token_got <= now) {
    ok = true;
  } else {
    char id[256], secret[512], body[1024], url[512];
    if (form_escape(id, sizeof id, s->client_id) >= 0 && form_escape(secret, sizeof secret, s->secret) >= 0 &&
        bg_fmt(body, sizeof body, "grant_type=client_credentials&client_id=%s&client_secret=%s", id, secret) &&
        bg_fmt(url, sizeof url, "%s/v1/auth/tokens", s->accounts_url)) {
      struct bg_httpc_req req = {.method = "POST", .url = url, .content_type = "application/x-www-form-urlencoded",
                                 .body = body, .body_len = strlen(body), .timeout_ms = 3000};
      struct bg_httpc_resp resp;
      if (bg_httpc_do(&req, &resp) && resp.status == 200) {
        json_t *j = bg_httpc_json(&resp);
        const char *tok = json_string_value(json_object_get(j, "access_token"));
        json_int_t exp = json_integer_value(json_object_get(j, "expires_in"));
        if (tok && strlen(tok) < sizeof s->token) {
          snprintf(s->token, sizeof s->token, "%s", tok);
          s->token_exp = now + (time_t)exp;
          s->token_got = now;
          ok = true;
        }
        json_decref(j);
      } else {
        bg_warn("client token from %s failed (status %ld)", url, resp.status);
      }
      bg_httpc_resp_free(&resp);
      OPENSSL_cleanse(body, sizeof body);
      OPENSSL_cleanse(secret, sizeof secret);
    }
  }
  if (ok)
    ok = bg_fmt(buf, len, "%s", s->token);
  pthread_mutex_unlock(&s->mu);
  return ok;
}

/* Forgets the cached token if it is still the one that was refused. */
static void drop_token(struct bg_svc *s, const char *tok)
{
  pthread_mutex_lock(&s->mu);
  if (!strcmp(s->token, tok))
    s->token[0] = '\0';
  pthread_mutex_unlock(&s->mu);
}

long bg_svc_call(struct bg_svc *s, const char *method, const char *url, const json_t *body, const char *request_id,
                 json_t **out)
{
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  long status = body && !text ? 0 : bg_svc_call_text(s, method, url, text, request_id, out);
  free(text);
  return status;
}

long bg_svc_call_text(struct bg_svc *s, const char *method, const char *url, const char *text,
                      const char *request_id, json_t **out)
{
  *out = NULL;
  char tok[4096];
  long status = 0;
  /* A token the callee refuses (401) is renewed once and the call repeated: the callee may
   * have rotated its keys, or its clock (a stepped system clock, the test clock) may see our
   * cached token as expired although ours does not. */
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!bg_svc_token(s, tok, sizeof tok))
      break;
    struct bg_httpc_req req = {.method = method, .url = url, .bearer = tok, .request_id = request_id,
                               .content_type = text ? "application/json" : NULL, .body = text,
                               .body_len = text ? strlen(text) : 0};
    struct bg_httpc_resp resp;
    json_decref(*out);
    *out = NULL;
    status = 0;
    if (bg_httpc_do(&req, &resp)) {
      status = resp.status;
      *out = bg_httpc_json(&resp);
    } else {
      bg_log(BG_LOG_WARN, request_id, "%s %s failed: %s", method, url, resp.error);
    }
    bg_httpc_resp_free(&resp);
    if (status != 401)
      break;
    drop_token(s, tok);
  }
  return status;
}

static unsigned char hmac_key[64];
static size_t hmac_key_len;

bool bg_id_hmac_init_from_env(void)
{
  size_t n;
  char *hex = bg_cfg_file("BLIGATE_ID_HMAC_KEY_FILE", &n);
  hex[strcspn(hex, "\r\n")] = '\0';
  size_t len = strlen(hex);
  bool ok = len >= 32 && len <= 128 && len % 2 == 0;
  for (size_t i = 0; ok && i < len / 2; i++) {
    unsigned v;
    char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
    char *end;
    v = (unsigned)strtoul(pair, &end, 16);
    ok = *end == '\0';
    hmac_key[i] = (unsigned char)v;
  }
  hmac_key_len = ok ? len / 2 : 0;
  OPENSSL_cleanse(hex, n);
  free(hex);
  if (!ok) {
    fprintf(stderr, "configuration error: BLIGATE_ID_HMAC_KEY_FILE must hold 16 to 64 bytes in hex\n");
    exit(2);
  }
  return ok;
}

bool bg_keyed_digest(const char *label, const void *data, size_t n, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (!hmac_key_len)
    return false;
  /* label first, so the digest of a body can never equal a subject's id_hmac */
  size_t llen = strlen(label);
  unsigned char *buf = malloc(llen + 1 + n);
  if (!buf)
    return false;
  memcpy(buf, label, llen);
  buf[llen] = '\n';
  if (n)
    memcpy(buf + llen + 1, data, n);
  bool ok = HMAC(EVP_sha256(), hmac_key, (int)hmac_key_len, buf, llen + 1 + n, md, &mdlen) && mdlen == 32;
  OPENSSL_cleanse(buf, llen + 1 + n);
  free(buf);
  if (ok)
    bg_hex(md, 32, out);
  return ok;
}

bool bg_id_hmac(const char *national_id, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (!hmac_key_len || !HMAC(EVP_sha256(), hmac_key, (int)hmac_key_len, (const unsigned char *)national_id,
                             strlen(national_id), md, &mdlen) || mdlen != 32)
    return false;
  bg_hex(md, 32, out);
  return true;
}
