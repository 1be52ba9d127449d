/* Approval webhooks: other city systems (the document and approval systems) subscribe to event
 * types and receive each matching event of the log as a CloudEvents 1.0 JSON document, signed
 * the Standard Webhooks way (HMAC-SHA256 over "<id>.<timestamp>.<body>"), at least once,
 * retried with exponential backoff for at least BLIGATE_WEBHOOK_RETRY_HOURS (24). Every
 * delivery and attempt is recorded.
 *
 * Matching reads the log itself (by index, after each subscription's cursor), so an event can
 * reach a subscriber only once it is on the log, and none is missed across restarts. Replicas
 * share the work without doubling it: subscriptions and due deliveries are claimed with
 * SKIP LOCKED, and a delivery is leased (next_attempt_at moved ahead) while it is being tried. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/job.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define WCOLS "w.id, w.url, array_to_json(w.event_types), w.description, w.status, w.created_by, " TS("w.created_at") \
              ", " TS("w.disabled_at")
#define DCOLS "d.id, d.webhook_id, d.event_index, d.event_id, d.event_type, d.state, d.attempts, " TS("d.created_at") \
              ", " TS("d.next_attempt_at") ", " TS("d.delivered_at")

static const struct bg_db_stmt stmts[] = {
  {"wh_insert", "INSERT INTO webhooks (id, url, event_types, description, secret, status, created_by, created_at,"
                " cursor) SELECT $1, $2, ARRAY(SELECT json_array_elements_text($3::json)), $4, $5, 'active', $6, $7,"
                " (SELECT tree_size - 1 FROM log_state WHERE id = 1)"},
  {"wh_get", "SELECT " WCOLS " FROM webhooks w WHERE w.id = $1"},
  {"wh_list", "SELECT " WCOLS " FROM webhooks w WHERE ($1::timestamptz IS NULL OR (w.created_at, w.id) >"
              " ($1::timestamptz, $2::uuid)) ORDER BY w.created_at, w.id LIMIT $3"},
  {"wh_disable", "UPDATE webhooks SET status = 'disabled', disabled_at = $2 WHERE id = $1 AND status = 'active'"
                 " RETURNING id"},
  {"wh_deliveries", "SELECT " DCOLS ", (SELECT coalesce(json_agg(json_build_object('n', a.n, 'at', " TS("a.at")
                    ", 'status_code', a.status_code, 'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.n),"
                    " '[]') FROM webhook_attempts a WHERE a.delivery_id = d.id)"
                    " FROM webhook_deliveries d WHERE d.webhook_id = $1 AND ($2::bigint IS NULL OR d.event_index > $2)"
                    " ORDER BY d.event_index LIMIT $3"},
  /* fan-out: the events after one subscription's cursor that it wants become deliveries */
  {"wh_active", "SELECT id FROM webhooks WHERE status = 'active' ORDER BY created_at"},
  {"wh_match", "WITH w AS (SELECT id, cursor, event_types FROM webhooks WHERE id = $1 AND status = 'active'"
               "  FOR UPDATE SKIP LOCKED),"
               " e AS (SELECT l.idx, l.event_id, l.type, l.source FROM events l, w WHERE l.idx > w.cursor"
               "  ORDER BY l.idx LIMIT 1000),"
               /* only from the service that owns the type: another client's event of that shape
                * (any holder of events:append can write one) is no approval to pass on, signed */
               " ins AS (INSERT INTO webhook_deliveries (id, webhook_id, event_index, event_id, event_type, state,"
               "  created_at, next_attempt_at) SELECT gen_random_uuid(), w.id, e.idx, e.event_id, e.type, 'pending',"
               "  $2, $2 FROM e, w WHERE e.type = ANY (w.event_types) AND e.source = CASE split_part(e.type, '.', 1)"
               "  WHEN 'query_request' THEN 'workflow' WHEN 'external_application' THEN 'workflow'"
               "  ELSE 'accounts' END ON CONFLICT DO NOTHING RETURNING 1)"
               " UPDATE webhooks SET cursor = (SELECT max(idx) FROM e) WHERE id IN (SELECT id FROM w)"
               " AND EXISTS (SELECT 1 FROM e) RETURNING (SELECT count(*) FROM ins)"},
  /* claim due deliveries: leased for two minutes while they are tried */
  {"wh_claim", "UPDATE webhook_deliveries d SET next_attempt_at = $1::timestamptz + interval '2 minutes'"
               " FROM (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1"
               "  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) x,"
               " webhooks w, events l"
               " WHERE d.id = x.id AND w.id = d.webhook_id AND l.idx = d.event_index"
               " RETURNING d.id, d.attempts, " TS("d.created_at") ", w.url, w.secret, w.status, l.canonical, l.idx"},
  {"wh_attempt", "INSERT INTO webhook_attempts (delivery_id, n, at, status_code, error, duration_ms)"
                 " VALUES ($1, $2, $3, $4, $5, $6)"},
  /* $3: delivered | pending | failed; $4 the next try */
  {"wh_outcome", "UPDATE webhook_deliveries SET attempts = $2, state = $3, next_attempt_at = $4,"
                 " delivered_at = CASE WHEN $3 = 'delivered' THEN $5::timestamptz END WHERE id = $1"},
  {"wh_pending", "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"},
};

static struct {
  struct bg_db *db;
  bool allow_http;
  long interval_ms, timeout_ms, retry_s;
  struct bg_job *job;
  atomic_ullong delivered, failed_attempts;
  atomic_llong pending;
} wh;

struct bg_db *aud_webhooks_db(void) { return wh.db; }
bool aud_webhooks_allow_http(void) { return wh.allow_http; }

/* ---- the pieces a receiver checks ---- */

bool aud_webhook_secret(char out[64])
{
  unsigned char raw[32];
  if (!bg_random(raw, sizeof raw))
    return false;
  char *b64 = bg_b64_encode(raw, sizeof raw);
  bool ok = b64 && bg_fmt(out, 64, "whsec_%s", b64);
  free(b64);
  return ok;
}

/* v1,<base64 HMAC-SHA256(key, "<msg id>.<timestamp>.<body>")>, the key being the base64 after
 * "whsec_" (Standard Webhooks). */
static bool sign(const char *secret, const char *msg_id, long long ts, const char *body, char *out, size_t outlen)
{
  size_t klen = 0;
  unsigned char *key = strncmp(secret, "whsec_", 6) == 0 ? bg_b64_decode(secret + 6, &klen) : NULL;
  size_t blen = strlen(body), cap = blen + 128;
  char *msg = key ? malloc(cap) : NULL;
  int head = msg ? snprintf(msg, cap, "%s.%lld.", msg_id, ts) : -1;
  unsigned char mac[32];
  unsigned int mlen = 0;
  bool ok = head > 0 && (size_t)head + blen < cap;
  if (ok) {
    memcpy(msg + head, body, blen);
    ok = HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, (size_t)head + blen, mac, &mlen) &&
         mlen == sizeof mac;
  }
  free(msg);
  if (key)
    OPENSSL_cleanse(key, klen);
  free(key);
  char *b64 = ok ? bg_b64_encode(mac, mlen) : NULL;
  ok = b64 && bg_fmt(out, outlen, "v1,%s", b64);
  free(b64);
  return ok;
}

/* The CloudEvents 1.0 document of a log entry; msg_id gets the event's id. */
static char *cloudevent(const char *canonical, long long idx, char msg_id[64])
{
  json_error_t je;
  json_t *ev = json_loads(canonical, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_object(ev)) {
    json_decref(ev);
    return NULL;
  }
  const char *kind = json_string_value(json_object_get(json_object_get(ev, "object"), "kind"));
  const char *oid = json_string_value(json_object_get(json_object_get(ev, "object"), "id"));
  char type[160], source[96], subject[160];
  bg_fmt(type, sizeof type, "tw.gov.bligate.%s", json_string_value(json_object_get(ev, "type")));
  bg_fmt(source, sizeof source, "/bligate/%s", json_string_value(json_object_get(ev, "source")));
  bool has_subject = kind && oid && bg_fmt(subject, sizeof subject, "%s/%s", kind, oid);
  const char *eid = json_string_value(json_object_get(ev, "id"));
  if (!eid || !bg_fmt(msg_id, 64, "%s", eid)) {
    json_decref(ev);
    return NULL;
  }
  json_t *ce = json_pack("{s:s, s:O, s:s, s:s, s:s?, s:O, s:s, s:I, s:o}", "specversion", "1.0", "id",
                         json_object_get(ev, "id"), "source", source, "type", type, "subject",
                         has_subject ? subject : NULL, "time", json_object_get(ev, "time"), "datacontenttype",
                         "application/json", "bligateindex", (json_int_t)idx, "data", ev);
  char *out = ce ? json_dumps(ce, JSON_COMPACT) : NULL;
  json_decref(ce);
  return out;
}

/* ---- the dispatcher ---- */

static long backoff_s(int attempts)
{
  /* 30 s, 1, 2, 4 ... minutes, at most an hour between tries */
  long s = 30L << (attempts > 7 ? 7 : attempts - 1);
  return s > 3600 ? 3600 : s;
}

static void deliver(struct bg_dbc *c, PGresult *res, int i)
{
  const char *id = PQgetvalue(res, i, 0), *url = PQgetvalue(res, i, 3), *secret = PQgetvalue(res, i, 4);
  long attempts = 0;
  bg_parse_long(PQgetvalue(res, i, 1), 0, 1000000, &attempts);
  time_t created = 0, now = bg_now();
  bg_time_parse(PQgetvalue(res, i, 2), &created);
  long long idx = strtoll(PQgetvalue(res, i, 7), NULL, 10);
  char now_s[BG_TIME_LEN], next_s[BG_TIME_LEN], n_s[24], code_s[24] = "", ms_s[24];
  bg_time_fmt(now, now_s);
  long status = 0;
  char err[160] = "";
  int64_t t0 = bg_mono_us();
  bool disabled = strcmp(PQgetvalue(res, i, 5), "active") != 0;
  char msg_id[64];
  char *body = disabled ? NULL : cloudevent(PQgetvalue(res, i, 6), idx, msg_id);
  if (disabled) {
    bg_fmt(err, sizeof err, "the subscription is disabled");
  } else if (!body) {
    bg_fmt(err, sizeof err, "the event could not be rendered");
  } else if (!wh.allow_http && strncmp(url, "https://", 8) != 0) {
    bg_fmt(err, sizeof err, "plain http is not allowed (BLIGATE_WEBHOOK_ALLOW_HTTP)");
  } else {
    /* the message id is the event's: a receiver de-duplicates repeated deliveries by it */
    char sig[128], h_id[96], h_ts[64], h_sig[160];
    if (!sign(secret, msg_id, (long long)now, body, sig, sizeof sig) ||
        !bg_fmt(h_id, sizeof h_id, "%s", msg_id) || !bg_fmt(h_ts, sizeof h_ts, "%lld", (long long)now) ||
        !bg_fmt(h_sig, sizeof h_sig, "%s", sig)) {
      bg_fmt(err, sizeof err, "cannot sign");
    } else {
      struct bg_httpc_header extra[] = {{"webhook-id", h_id}, {"webhook-timestamp", h_ts}, {"webhook-signature", h_sig}};
      struct bg_httpc_req req = {.method = "POST", .url = url, .content_type = "application/cloudevents+json",
                                 .body = body, .body_len = strlen(body), .timeout_ms = wh.timeout_ms,
                                 .connect_timeout_ms = 5000, .max_response = 64 << 10, .headers = extra,
                                 .nheaders = 3};
      struct bg_httpc_resp resp;
      if (bg_httpc_do(&req, &resp))
        status = resp.status;
      else
        bg_fmt(err, sizeof err, "%s", resp.error);
      bg_httpc_resp_free(&resp);
    }
  }
  free(body);
  bool ok = status >= 200 && status < 300;
  if (!ok && !err[0])
    bg_fmt(err, sizeof err, "the receiver answered %ld", status);
  long n = attempts + 1;
  /* retried for at least retry_s after the event was matched; a disabled subscription stops */
  bool give_up = !ok && (disabled || now + backoff_s((int)n) > created + wh.retry_s + 3600);
  const char *state = ok ? "delivered" : give_up ? "failed" : "pending";
  bg_time_fmt(now + backoff_s((int)n), next_s);
  snprintf(n_s, sizeof n_s, "%ld", n);
  if (status)
    snprintf(code_s, sizeof code_s, "%ld", status);
  snprintf(ms_s, sizeof ms_s, "%lld", (long long)((bg_mono_us() - t0) / 1000));
  const char *pa[] = {id, n_s, now_s, status ? code_s : NULL, ok ? NULL : err, ms_s};
  const char *po[] = {id, n_s, state, ok || give_up ? NULL : next_s, now_s};
  if (!bg_dbc_begin(c) || !bg_dbc_run(c, "wh_attempt", 6, pa, NULL) || !bg_dbc_run(c, "wh_outcome", 5, po, NULL) ||
      !bg_dbc_commit(c)) {
    if (c->in_tx)
      bg_dbc_rollback(c);
    bg_warn("webhook delivery %s: the outcome could not be recorded; it will be tried again", id);
    return;
  }
  if (ok)
    atomic_fetch_add(&wh.delivered, 1);
  else
    atomic_fetch_add(&wh.failed_attempts, 1);
  if (!ok)
    bg_warn("webhook delivery %s attempt %ld failed: %s%s", id, n, err, give_up ? " (given up)" : "");
}

static void run_once(void)
{
  struct bg_dbc *c = bg_db_acquire(wh.db, 2000);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  PGresult *subs = bg_dbc_exec(c, "wh_active", 0, NULL, NULL);
  for (int i = 0; subs && i < PQntuples(subs); i++) {
    const char *p[] = {PQgetvalue(subs, i, 0), now_s};
    PGresult *m;
    /* a subscription behind by more than a batch catches up within this round */
    for (int round = 0; round < 50 && (m = bg_dbc_exec(c, "wh_match", 2, p, NULL)); round++) {
      bool more = PQntuples(m) == 1;
      PQclear(m);
      if (!more)
        break;
    }
  }
  PQclear(subs);
  for (;;) {
    const char *p[] = {now_s, "16"};
    PGresult *due = bg_dbc_exec(c, "wh_claim", 2, p, NULL);
    int n = due ? PQntuples(due) : 0;
    for (int i = 0; i < n; i++)
      deliver(c, due, i);
    PQclear(due);
    if (n < 16)
      break;
    bg_time_fmt(bg_now(), now_s);
  }
  PGresult *pend = bg_dbc_exec(c, "wh_pending", 0, NULL, NULL);
  if (pend && PQntuples(pend) == 1)
    atomic_store(&wh.pending, strtoll(PQgetvalue(pend, 0, 0), NULL, 10));
  PQclear(pend);
  bg_db_release(c);
}

void aud_webhooks_kick(void) { bg_job_kick(wh.job); }

static void job_run(void *arg)
{
  (void)arg;
  run_once();
}

bool aud_webhooks_start(const char *db_url)
{
  wh.allow_http = bg_cfg_bool("BLIGATE_WEBHOOK_ALLOW_HTTP", false);
  wh.interval_ms = bg_cfg_long("BLIGATE_WEBHOOK_INTERVAL_MS", 1000, 50, 60000);
  wh.timeout_ms = bg_cfg_long("BLIGATE_WEBHOOK_TIMEOUT_MS", 10000, 100, 60000);
  wh.retry_s = bg_cfg_long("BLIGATE_WEBHOOK_RETRY_HOURS", 24, 24, 24 * 30) * 3600;
  wh.db = bg_db_new(db_url, "audit", 3, stmts, sizeof stmts / sizeof stmts[0]);
  return wh.db && (wh.job = bg_job_start("webhooks", wh.interval_ms, job_run, NULL));
}

void aud_webhooks_stop(void)
{
  bg_job_stop(wh.job);
  wh.job = NULL;
  bg_db_free(wh.db);
}

void aud_webhooks_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  (void)ctx;
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_webhook_deliveries_pending Webhook deliveries not yet delivered or given up.\n"
                    "# TYPE bligate_webhook_deliveries_pending gauge\nbligate_webhook_deliveries_pending %lld\n"
                    "# HELP bligate_webhook_delivered_total Webhook deliveries acknowledged by their receiver.\n"
                    "# TYPE bligate_webhook_delivered_total counter\nbligate_webhook_delivered_total %llu\n"
                    "# HELP bligate_webhook_failed_attempts_total Webhook attempts that failed.\n"
                    "# TYPE bligate_webhook_failed_attempts_total counter\nbligate_webhook_failed_attempts_total %llu\n",
                    (long long)atomic_load(&wh.pending), atomic_load(&wh.delivered), atomic_load(&wh.failed_attempts));
}
