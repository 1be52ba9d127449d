/* The outbox shipper (shipper.h): one thread reads the outbox in seq order, POSTs batches to
 * the audit service and marks what audit acknowledged. The outbox table is the only state, so
 * a crash anywhere leaves rows to be sent again, and audit drops the duplicates. */
#include "bligate/shipper.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/db.h"
#include "bligate/events.h"
#include "bligate/http.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Shipped rows deleted per purge call; a full call is followed by another at once. */
#define PURGE_ROWS 1000
#define PURGE_ROWS_S "1000"

static const struct bg_db_stmt ship_stmts[] = {
  {"bg_ship_fetch", "SELECT seq, event::text, event_id::text FROM outbox WHERE shipped_at IS NULL ORDER BY seq LIMIT $1"},
  {"bg_ship_mark", "UPDATE outbox SET shipped_at = $2 WHERE seq = ANY ($1::bigint[]) AND shipped_at IS NULL"},
  /* a row audit refused for good, once its outbox.event_refused event is on the log */
  {"bg_ship_refused", "UPDATE outbox SET shipped_at = $2, refusal = $3 WHERE seq = $1 AND shipped_at IS NULL"},
  {"bg_ship_backlog", "SELECT count(*) FROM outbox WHERE shipped_at IS NULL"},
  {"bg_ship_state", "SELECT shipped_at IS NOT NULL FROM outbox WHERE event_id = $1::uuid"},
  /* the schema's SECURITY DEFINER function: the runtime role cannot delete rows itself */
  {"bg_ship_purge", "SELECT outbox_purge($1::timestamptz, " PURGE_ROWS_S ")"},
};

struct bg_shipper {
  struct bg_shipper_cfg cfg;
  _Atomic bool hinted; /* rows were committed since the last fetch (bg_shipper_hint) */
  _Atomic bool urgent; /* a flush waits: ship now, no gathering */
  char *db_url, *schema, *audit_url, *service, *events_url;
  struct bg_db *db; /* two connections: the thread's and the flushers' */
  int wake_fd;      /* eventfd: stop and flush requests */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t generation; /* bumped after every delivery */
  bool running;
  _Atomic long long backlog;
  _Atomic unsigned long long shipped, failures, purges, purged;
  _Atomic unsigned long long refused;
  bool failing; /* to log a failure once, not on every retry */
  int narrow;   /* rows still to send one at a time, after audit refused their batch for good */
  time_t next_purge; /* service clock: when shipped rows past retention are next deleted */
};

static struct bg_shipper *current; /* for the metrics callback */

static void wake(struct bg_shipper *s)
{
  uint64_t one = 1;
  ssize_t n = write(s->wake_fd, &one, sizeof one);
  (void)n; /* a full counter wakes the thread all the same */
}

static void drain_wake(struct bg_shipper *s)
{
  uint64_t v;
  ssize_t n = read(s->wake_fd, &v, sizeof v);
  (void)n;
}

/* In-process wake-up after a commit that wrote outbox rows (db.h's outbox hook): only the
 * first hint since the last fetch writes to the eventfd. */
static void hint(void)
{
  struct bg_shipper *s = current;
  if (s && !atomic_exchange(&s->hinted, true))
    wake(s);
}

static void refresh_backlog(struct bg_shipper *s, struct bg_dbc *c)
{
  PGresult *res = bg_dbc_exec(c, "bg_ship_backlog", 0, NULL, NULL);
  if (res && PQntuples(res) == 1)
    atomic_store(&s->backlog, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
  PQclear(res);
}

/* Appends text to a growing buffer. */
static bool add(char **buf, size_t *len, size_t *cap, const char *t, size_t n)
{
  if (*len + n + 1 > *cap) {
    size_t nc = *cap ? *cap : 8192;
    while (nc < *len + n + 1)
      nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
      return false;
    *buf = nb;
    *cap = nc;
  }
  memcpy(*buf + *len, t, n);
  *len += n;
  (*buf)[*len] = '\0';
  return true;
}

/* Audit's reply must acknowledge every event we sent, in order. */
static bool acknowledged(const struct bg_httpc_resp *resp, int n)
{
  json_t *j = bg_httpc_json(resp);
  json_t *results = json_object_get(j, "results");
  bool ok = json_is_array(results) && json_array_size(results) == (size_t)n;
  size_t i;
  json_t *v;
  json_array_foreach(results, i, v)
  {
    const char *st = json_string_value(json_object_get(v, "status"));
    ok = ok && st && (!strcmp(st, "appended") || !strcmp(st, "duplicate"));
  }
  json_decref(j);
  return ok;
}

/* Audit's answers that no retry changes: the events' content is refused (malformed, an ID
 * number in one, an id on the log with other content, a batch too large), not the moment. */
static bool refused_for_good(long status) { return status == 400 || status == 409 || status == 413 || status == 422; }

/* POSTs a body of n events; true when audit acknowledged every one. resp is the caller's. */
static bool deliver(struct bg_shipper *s, const char *body, size_t blen, int n, struct bg_httpc_resp *resp)
{
  char tok[4096];
  if (!bg_svc_token(s->cfg.svc, tok, sizeof tok)) {
    if (!s->failing)
      bg_warn("outbox: no client token for the audit service yet; retrying");
    s->failing = true;
    *resp = (struct bg_httpc_resp){0};
    return false;
  }
  struct bg_httpc_req req = {.method = "POST", .url = s->events_url, .bearer = tok,
                             .content_type = "application/json", .body = body, .body_len = blen,
                             .connect_timeout_ms = 1000, .timeout_ms = 10000};
  bool sent = bg_httpc_do(&req, resp);
  if (sent && resp->status == 200 && acknowledged(resp, n))
    return true;
  if (sent && refused_for_good(resp->status))
    return false; /* not a delivery failure: the caller narrows it down or records it */
  if (!s->failing)
    bg_warn("outbox: delivery to %s failed (%s); backing off", s->events_url,
            sent ? (resp->status == 200 ? "incomplete acknowledgement" : "refused") : resp->error);
  if (sent && resp->status != 200)
    bg_warn("outbox: audit answered %ld", resp->status);
  s->failing = true;
  return false;
}

/* The one row of res, which audit refused for good (resp): an outbox.event_refused event goes
 * on the log in its place — what was refused (seq, event id, type, the SHA-256 of the exact
 * text sent), why (audit's problem code) — and the row is marked shipped with the code, kept
 * past retention. Its id is derived from the row, so a retry after a crash is a duplicate, not
 * a second refusal. Nothing of the refused content goes out: it may be what audit refused (an
 * ID number). true when the row is settled. */
static bool record_refusal(struct bg_shipper *s, struct bg_dbc *c, PGresult *res, const struct bg_httpc_resp *refusal)
{
  const char *seq = PQgetvalue(res, 0, 0), *text = PQgetvalue(res, 0, 1), *event_id = PQgetvalue(res, 0, 2);
  json_t *pj = bg_httpc_json(refusal);
  const char *c0 = json_string_value(json_object_get(pj, "code"));
  char code[65] = "refused";
  if (c0 && strlen(c0) <= 64 && strspn(c0, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(c0) && *c0)
    snprintf(code, sizeof code, "%s", c0);
  json_decref(pj);
  json_t *orig = json_loadb(text, (size_t)PQgetlength(res, 0, 1), 0, NULL);
  const char *otype = json_string_value(json_object_get(orig, "type"));
  char digest[65], derived[BG_UUID_LEN], seed[256];
  bg_sha256_hex(text, (size_t)PQgetlength(res, 0, 1), digest);
  unsigned char h[32];
  snprintf(seed, sizeof seed, "bligate outbox refusal %s %s %s", s->schema, seq, event_id);
  bg_sha256(seed, strlen(seed), h);
  bg_uuid_v4_format(h, derived);
  long long seq_n = strtoll(seq, NULL, 10);
  json_t *ev = bg_event_new(NULL, "outbox.event_refused", "outbox_event", event_id, "failure");
  json_object_set_new(ev, "id", json_string(derived));
  json_object_set_new(ev, "actor", json_pack("{s:s}", "client_id", s->service));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "outbox", json_string(s->schema));
  json_object_set_new(d, "seq", json_integer(seq_n));
  json_object_set_new(d, "refusal", json_string(code));
  json_object_set_new(d, "status", json_integer(refusal->status));
  json_object_set_new(d, "event_sha256", json_string(digest));
  if (bg_event_type_valid(otype))
    json_object_set_new(d, "event_type", json_string(otype));
  json_decref(orig);
  json_t *batch = json_pack("{s:[o]}", "events", ev);
  char *body = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
  json_decref(batch);
  struct bg_httpc_resp resp;
  bool ok = body && deliver(s, body, strlen(body), 1, &resp);
  if (body)
    bg_httpc_resp_free(&resp);
  free(body);
  if (!ok) {
    bg_error("outbox: the refusal of %s.outbox seq %s (%s) could not be put on the log; the outbox waits", s->schema,
             seq, code);
    return false;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {seq, now_s, code};
  if (!bg_dbc_run(c, "bg_ship_refused", 3, p, NULL))
    return false; /* sent again: the refusal is a duplicate then */
  atomic_fetch_add(&s->refused, 1);
  bg_error("outbox: audit refused %s.outbox seq %s for good (%s); its refusal is on the log and the row is kept",
           s->schema, seq, code);
  return true;
}

/* One delivery: >0 rows shipped, 0 nothing to ship, -1 failed (back off). */
static int ship_batch(struct bg_shipper *s)
{
  struct bg_dbc *c = bg_db_acquire(s->db, 2000);
  if (!c)
    return -1;
  /* rows committed from here on hint again */
  atomic_store(&s->hinted, false);
  char lim[16];
  snprintf(lim, sizeof lim, "%d", s->narrow > 0 ? 1 : s->cfg.batch);
  const char *p[] = {lim};
  PGresult *res = bg_dbc_exec(c, "bg_ship_fetch", 1, p, NULL);
  int n = res ? PQntuples(res) : -1, rc = -1;
  char *body = NULL, *seqs = NULL;
  size_t blen = 0, bcap = 0, slen = 0, scap = 0;
  if (n <= 0) {
    if (n == 0) {
      atomic_store(&s->backlog, 0);
      s->narrow = 0;
    }
    rc = n < 0 ? -1 : 0;
    goto out;
  }
  bool ok = add(&body, &blen, &bcap, "{\"events\":[", 11) && add(&seqs, &slen, &scap, "{", 1);
  for (int i = 0; ok && i < n; i++) {
    const char *ev = PQgetvalue(res, i, 1), *seq = PQgetvalue(res, i, 0);
    ok = (i == 0 || (add(&body, &blen, &bcap, ",", 1) && add(&seqs, &slen, &scap, ",", 1))) &&
         add(&body, &blen, &bcap, ev, (size_t)PQgetlength(res, i, 1)) && add(&seqs, &slen, &scap, seq, strlen(seq));
  }
  ok = ok && add(&body, &blen, &bcap, "]}", 2) && add(&seqs, &slen, &scap, "}", 1);
  if (!ok)
    goto out;
  struct bg_httpc_resp resp;
  if (!deliver(s, body, blen, n, &resp)) {
    if (refused_for_good(resp.status)) {
      if (n > 1) {
        /* which of them? One at a time from here: the others go through, the refused one is
         * recorded as such */
        bg_warn("outbox: audit refused a batch of %d for good (%ld); sending them one at a time", n, resp.status);
        s->narrow = n;
        rc = 0;
      } else if (record_refusal(s, c, res, &resp)) {
        s->narrow = s->narrow > 0 ? s->narrow - 1 : 0;
        s->failing = false;
        rc = 1;
      }
    }
    bg_httpc_resp_free(&resp);
    goto out;
  }
  bg_httpc_resp_free(&resp);
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *pm[] = {seqs, now_s};
  /* If this fails the rows go again and audit acknowledges them as duplicates. */
  if (!bg_dbc_run(c, "bg_ship_mark", 2, pm, NULL))
    goto out;
  if (s->failing)
    bg_info("outbox: delivering to the audit service again");
  s->failing = false;
  if (s->narrow > 0)
    s->narrow--;
  atomic_fetch_add(&s->shipped, (unsigned long long)n);
  /* A short batch was everything there was: nothing is left (as of this look). Only a full
   * one, or a failure, needs the count. */
  if (n < s->cfg.batch && !s->narrow)
    atomic_store(&s->backlog, 0);
  else
    refresh_backlog(s, c);
  rc = n;
out:
  if (rc < 0) {
    atomic_fetch_add(&s->failures, 1);
    refresh_backlog(s, c);
  }
  PQclear(res);
  free(body);
  free(seqs);
  bg_db_release(c);
  return rc;
}

/* Waits for a wake-up (stop, flush, hint) or the timeout; true when woken early. Rows that
 * another process (a replica) commits are found by the poll: no schema has a NOTIFY trigger on
 * its outbox any more (it serialised every committing transaction on the notify queue). */
static bool wait_for_work(struct bg_shipper *s, int timeout_ms)
{
  struct pollfd fd = {.fd = s->wake_fd, .events = POLLIN};
  if (poll(&fd, 1, timeout_ms) <= 0)
    return false;
  drain_wake(s);
  return true;
}

/* Sleeps ms unless a flush or a stop comes first; new rows (hints) do not cut it short. Used
 * for the backoff after a failure, and after a wake-up by new rows to gather more before
 * shipping: one POST of many events instead of one per transaction. */
static void pause_ms(struct bg_shipper *s, int ms)
{
  int64_t until = bg_mono_us() + (int64_t)ms * 1000;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool run = s->running;
    pthread_mutex_unlock(&s->mu);
    int64_t left = until - bg_mono_us();
    if (!run || atomic_load(&s->urgent) || left <= 0)
      return;
    struct pollfd fd = {.fd = s->wake_fd, .events = POLLIN};
    if (poll(&fd, 1, (int)((left + 999) / 1000)) > 0)
      drain_wake(s);
  }
}

/* Deletes rows shipped more than retention_days ago, on the service's clock (so the test clock
 * moves it too): hourly, at once again after a full batch. Failures only wait for the next hour:
 * the rows are safe where they are. */
static void purge_shipped(struct bg_shipper *s)
{
  time_t now = bg_now();
  if (s->next_purge > now + 3600) /* the clock went back: do not wait for it to catch up */
    s->next_purge = now;
  if (s->cfg.retention_days <= 0 || now < s->next_purge)
    return;
  s->next_purge = now + 3600;
  struct bg_dbc *c = bg_db_acquire(s->db, 1000);
  if (!c)
    return;
  char cutoff[BG_TIME_LEN];
  bg_time_fmt(now - (time_t)s->cfg.retention_days * 86400, cutoff);
  const char *p[] = {cutoff};
  PGresult *res = bg_dbc_exec(c, "bg_ship_purge", 1, p, NULL);
  long n = 0;
  bool ok = res && PQntuples(res) == 1 && bg_parse_long(PQgetvalue(res, 0, 0), 0, PURGE_ROWS, &n);
  if (ok && n == PURGE_ROWS)
    s->next_purge = now;
  if (ok) {
    atomic_fetch_add(&s->purged, (unsigned long long)n);
    atomic_fetch_add(&s->purges, 1);
  }
  if (n)
    bg_info("outbox: %ld shipped rows older than %d days deleted", n, s->cfg.retention_days);
  PQclear(res);
  bg_db_release(c);
}

static void *loop(void *arg)
{
  struct bg_shipper *s = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int backoff = 0;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    bool run = s->running;
    pthread_mutex_unlock(&s->mu);
    if (!run)
      break;
    atomic_store(&s->urgent, false); /* a flush from here on is served by this round or the next */
    int n = ship_batch(s);
    if (n > 0) {
      pthread_mutex_lock(&s->mu);
      s->generation++;
      pthread_cond_broadcast(&s->cv);
      pthread_mutex_unlock(&s->mu);
    }
    if (n < 0) {
      /* exponential, with jitter so replicas do not retry in step */
      backoff = backoff ? backoff * 2 : 50;
      if (backoff > s->cfg.max_backoff_ms)
        backoff = s->cfg.max_backoff_ms;
      unsigned char r = 0;
      bg_random(&r, 1);
      pause_ms(s, backoff / 2 + (backoff / 2) * r / 255);
      continue;
    }
    backoff = 0;
    if (n < s->cfg.batch && !s->narrow) { /* caught up: sleep until something new, then gather */
      purge_shipped(s);
      bool woken = atomic_load(&s->hinted) || atomic_load(&s->urgent) || wait_for_work(s, s->cfg.poll_ms);
      if (woken)
        pause_ms(s, s->cfg.gather_ms);
    }
  }
  return NULL;
}

struct bg_shipper *bg_shipper_start(const struct bg_shipper_cfg *cfg)
{
  struct bg_shipper *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->cfg = *cfg;
  if (s->cfg.batch <= 0)
    s->cfg.batch = 200;
  if (s->cfg.poll_ms <= 0)
    s->cfg.poll_ms = 1000;
  if (s->cfg.max_backoff_ms <= 0)
    s->cfg.max_backoff_ms = 2000;
  if (s->cfg.gather_ms < 0)
    s->cfg.gather_ms = 0;
  s->db_url = strdup(cfg->db_url);
  s->schema = strdup(cfg->schema);
  s->service = strdup(cfg->service);
  s->audit_url = strdup(cfg->audit_url);
  size_t ul = strlen(cfg->audit_url) + sizeof "/internal/events";
  s->events_url = malloc(ul);
  if (s->events_url)
    snprintf(s->events_url, ul, "%s/internal/events", cfg->audit_url);
  s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s->db = s->db_url && s->schema ? bg_db_new(s->db_url, s->schema, 2, ship_stmts,
                                              sizeof ship_stmts / sizeof ship_stmts[0])
                                  : NULL;
  atomic_store(&s->backlog, -1);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->running = true;
  if (!s->db || !s->events_url || !s->service || !s->audit_url || s->wake_fd < 0 ||
      pthread_create(&s->thread, NULL, loop, s) != 0) {
    s->running = false;
    bg_shipper_stop(s);
    return NULL;
  }
  current = s;
  bg_db_set_outbox_hook(hint);
  bg_info("outbox: shipping %s.outbox to %s", s->schema, s->events_url);
  return s;
}

struct bg_shipper *bg_shipper_start_env(const char *service, const char *schema, struct bg_svc *svc)
{
  struct bg_shipper_cfg cfg = {
    .service = service,
    .schema = schema,
    .db_url = bg_cfg_str("BLIGATE_DB_URL", NULL),
    .audit_url = bg_cfg_str("BLIGATE_AUDIT_URL", NULL),
    .svc = svc,
    .batch = (int)bg_cfg_long("BLIGATE_OUTBOX_BATCH", 200, 1, 1000),
    .poll_ms = (int)bg_cfg_long("BLIGATE_OUTBOX_POLL_MS", 1000, 10, 60000),
    .max_backoff_ms = (int)bg_cfg_long("BLIGATE_OUTBOX_MAX_BACKOFF_MS", 2000, 10, 300000),
    .gather_ms = (int)bg_cfg_long("BLIGATE_OUTBOX_GATHER_MS", 50, 0, 1000),
    .retention_days = (int)bg_cfg_long("BLIGATE_OUTBOX_RETENTION_DAYS", 30, 0, 36500),
  };
  return bg_shipper_start(&cfg);
}

void bg_shipper_stop(struct bg_shipper *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  bool was = s->running;
  s->running = false;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->wake_fd >= 0)
    wake(s);
  if (was)
    pthread_join(s->thread, NULL);
  if (current == s) {
    bg_db_set_outbox_hook(NULL);
    current = NULL;
  }
  if (s->wake_fd >= 0)
    close(s->wake_fd);
  bg_db_free(s->db);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->db_url);
  free(s->schema);
  free(s->service);
  free(s->audit_url);
  free(s->events_url);
  free(s);
}

/* 1 shipped, 0 not yet, -1 unknown id or no database */
static int event_state(struct bg_shipper *s, const char *event_id)
{
  struct bg_dbc *c = bg_db_acquire(s->db, 1000);
  if (!c)
    return -1;
  const char *p[] = {event_id};
  PGresult *res = bg_dbc_exec(c, "bg_ship_state", 1, p, NULL);
  int st = res && PQntuples(res) == 1 ? (PQgetvalue(res, 0, 0)[0] == 't') : -1;
  PQclear(res);
  bg_db_release(c);
  return st;
}

bool bg_shipper_flush_event(struct bg_shipper *s, const char *event_id, int timeout_ms)
{
  if (!s || !event_id || !bg_uuid_valid(event_id))
    return false;
  int64_t deadline = bg_mono_us() + (int64_t)timeout_ms * 1000;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    uint64_t gen = s->generation;
    pthread_mutex_unlock(&s->mu);
    int st = event_state(s, event_id);
    if (st != 0)
      return st == 1;
    atomic_store(&s->urgent, true);
    wake(s);
    int64_t left = deadline - bg_mono_us();
    if (left <= 0)
      return false;
    /* until the next delivery (or 100 ms, to look again) */
    pthread_mutex_lock(&s->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (left < 100000 ? left : 100000) * 1000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (s->generation == gen && s->running)
      if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
        break;
    bool run = s->running;
    pthread_mutex_unlock(&s->mu);
    if (!run)
      return false;
  }
}

long long bg_shipper_backlog(struct bg_shipper *s) { return s ? atomic_load(&s->backlog) : -1; }

void bg_shipper_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  struct bg_shipper *s = current;
  if (!s)
    return;
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_outbox_backlog Outbox events not yet acknowledged by the audit service.\n"
                    "# TYPE bligate_outbox_backlog gauge\nbligate_outbox_backlog{service=\"%s\"} %lld\n"
                    "# HELP bligate_outbox_shipped_total Outbox events delivered to the audit service.\n"
                    "# TYPE bligate_outbox_shipped_total counter\nbligate_outbox_shipped_total{service=\"%s\"} %llu\n"
                    "# HELP bligate_outbox_failures_total Failed deliveries (audit unreachable or refusing).\n"
                    "# TYPE bligate_outbox_failures_total counter\nbligate_outbox_failures_total{service=\"%s\"} %llu\n"
                    "# HELP bligate_outbox_purges_total Runs of the purge of shipped rows past retention.\n"
                    "# TYPE bligate_outbox_purges_total counter\nbligate_outbox_purges_total{service=\"%s\"} %llu\n"
                    "# HELP bligate_outbox_purged_total Shipped rows deleted after their retention.\n"
                    "# TYPE bligate_outbox_purged_total counter\nbligate_outbox_purged_total{service=\"%s\"} %llu\n"
                    "# HELP bligate_outbox_refused_total Events the audit service refused for good; each has an "
                    "outbox.event_refused event on the log and its row kept.\n"
                    "# TYPE bligate_outbox_refused_total counter\nbligate_outbox_refused_total{service=\"%s\"} %llu\n",
                    s->service, atomic_load(&s->backlog), s->service, atomic_load(&s->shipped), s->service,
                    atomic_load(&s->failures), s->service, atomic_load(&s->purges), s->service,
                    atomic_load(&s->purged), s->service, atomic_load(&s->refused));
}
