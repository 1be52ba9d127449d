/* Signed tree heads: a background thread signs the log's state whenever it has grown, at least
 * once per BLIGATE_AUDIT_STH_INTERVAL_MS (default 500 ms) while events arrive. Replicas may
 * both sign the same size: the first insert wins, the tree heads are equivalent. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/log.h"
#include "sthsig.h"
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool running;

/* The signature checked with the key its header names (a head signed before a key rotation
 * names the previous key) and its payload and kid parsed into *out. */
static bool sth_signed(const char *jws, struct aud_sth *out)
{
  char kid[64];
  EVP_PKEY *key = aud_jws_kid(jws, kid, sizeof kid) ? bg_keyset_find(aud.sign_keys, kid) : NULL;
  return key && aud_sth_check(jws, key, out) && out->kid[0];
}

/* A stored tree head as served. Every value is taken from the signature, not from the row's
 * columns, which someone bypassing the append-only trigger could change; a row whose signature
 * does not verify or signs another size or root than the row states is not served (NULL). */
json_t *aud_sth_json(PGresult *res, int row)
{
  struct aud_sth sth;
  unsigned char root[AUD_HASH_LEN];
  const char *jws = PQgetvalue(res, row, 4);
  if (!sth_signed(jws, &sth) || strtoull(PQgetvalue(res, row, 0), NULL, 10) != sth.tree_size ||
      !aud_hash_unhex(PQgetvalue(res, row, 1), root) || memcmp(root, sth.root, AUD_HASH_LEN)) {
    bg_error("the tree head of size %s does not match its signature: not served", PQgetvalue(res, row, 0));
    return NULL;
  }
  char hex[2 * AUD_HASH_LEN + 1];
  aud_hash_hex(sth.root, hex);
  return json_pack("{s:I, s:s, s:s, s:s, s:s}", "tree_size", (json_int_t)sth.tree_size, "root_hash", hex,
                   "timestamp", sth.timestamp, "key_id", sth.kid, "signature", jws);
}

bool aud_sth_verify(const char *jws, uint64_t size, const unsigned char root[AUD_HASH_LEN], const char *timestamp,
                    const char *kid)
{
  struct aud_sth sth;
  return sth_signed(jws, &sth) && sth.tree_size == size && !memcmp(sth.root, root, AUD_HASH_LEN) && timestamp &&
         !strcmp(sth.timestamp, timestamp) && kid && !strcmp(sth.kid, kid);
}

bool aud_sth_sign_now(struct bg_dbc *c)
{
  uint64_t size;
  unsigned char root[AUD_HASH_LEN];
  if (!aud_state(c, &size, root))
    return false;
  PGresult *res = bg_dbc_exec(c, "aud_sth_latest", 0, NULL, NULL);
  if (!res)
    return false;
  bool covered = PQntuples(res) == 1 && strtoull(PQgetvalue(res, 0, 0), NULL, 10) >= size;
  PQclear(res);
  if (covered)
    return true;
  char root_hex[2 * AUD_HASH_LEN + 1], ts[BG_TIME_LEN], size_s[24];
  aud_hash_hex(root, root_hex);
  bg_time_fmt(bg_now(), ts);
  snprintf(size_s, sizeof size_s, "%" PRIu64, size);
  json_t *claims = json_pack("{s:I, s:s, s:s}", "tree_size", (json_int_t)size, "root_hash", root_hex, "timestamp", ts);
  char *jws = claims ? bg_jwt_sign(aud.sign_key, aud.kid, claims) : NULL;
  json_decref(claims);
  if (!jws)
    return false;
  const char *p[] = {size_s, root_hex, ts, aud.kid, jws};
  bool ok = bg_dbc_run(c, "aud_sth_insert", 5, p, NULL);
  free(jws);
  return ok;
}

static void *loop(void *arg)
{
  /* SIGINT/SIGTERM belong to the main thread's sigwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_mutex_lock(&mu);
  while (running) {
    pthread_mutex_unlock(&mu);
    struct bg_dbc *c = bg_db_acquire(aud.db, 1000);
    if (c) {
      if (!aud_sth_sign_now(c))
        bg_warn("could not sign a tree head; retrying");
      bg_db_release(c);
    }
    pthread_mutex_lock(&mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)aud.sth_interval_ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    if (running)
      pthread_cond_timedwait(&cv, &mu, &until);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

bool aud_sth_start(void)
{
  running = true;
  if (pthread_create(&thread, NULL, loop, NULL) != 0) {
    running = false;
    return false;
  }
  return true;
}

void aud_sth_stop(void)
{
  pthread_mutex_lock(&mu);
  bool was = running;
  running = false;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  if (was)
    pthread_join(thread, NULL);
}
