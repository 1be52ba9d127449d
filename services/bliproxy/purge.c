/* Retention (rule 6: no copies beyond the case file, destroyed when the period ends). A job in
 * every replica destroys results whose retention date has passed — the ciphertext is cleared,
 * the record of who queried what stays for the audit — and puts one destruction event listing
 * the record ids on the log, in the same transaction. Replicas do not collide: rows are taken
 * with SKIP LOCKED. POST /internal/results/purge runs it at once (operators, tests).
 *
 * The same job finishes queries left pending by a crash between the audit append and the
 * outcome: their use is given back and the record marked failed, so no use is lost. */
#include "prx.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/job.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <stdlib.h>
#include <string.h>

/* The sweep's and the purge's events are the proxy's own doing (EVENTS.md) */
static json_t *job_actor(void) { return json_pack("{s:s}", "client_id", "bliproxy"); }

static long purge_batch(struct bg_dbc *c, const char *request_id, json_t *all)
{
  time_t now = bg_now();
  char today[BG_DATE_LEN], now_s[BG_TIME_LEN];
  bg_date_fmt(now, today);
  bg_time_fmt(now, now_s);
  const char *p[] = {today};
  PGresult *res = NULL;
  long n = -1;
  char *arr = NULL;
  json_t *ids = json_array();
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "q_expired", 1, p, NULL)))
    goto out;
  const char *latest = NULL; /* the latest retention date among them (ISO dates sort as text) */
  for (int i = 0; i < PQntuples(res); i++) {
    json_array_append_new(ids, json_string(PQgetvalue(res, i, 0)));
    if (!latest || strcmp(PQgetvalue(res, i, 1), latest) > 0)
      latest = PQgetvalue(res, i, 1);
  }
  if (json_array_size(ids) == 0) {
    bg_dbc_rollback(c);
    n = 0;
    goto out;
  }
  json_t *ev = bg_event_new(NULL, "bli_result.destroyed", "bli_query", NULL, "success");
  json_object_set_new(ev, "actor", job_actor());
  json_t *d = json_object_get(ev, "details");
  json_object_set(d, "record_ids", ids);
  json_object_set_new(d, "count", json_integer((json_int_t)json_array_size(ids)));
  json_object_set_new(d, "retention_until", json_string(latest));
  if (request_id)
    json_object_set_new(ev, "request_id", json_string(request_id));
  arr = prx_uuid_array(ids);
  const char *pd[] = {arr, now_s};
  bool destroyed = arr && bg_dbc_run(c, "q_destroy", 2, pd, NULL);
  if (!destroyed)
    json_decref(ev); /* bg_outbox_add takes it only when it is reached */
  if (!destroyed || !bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    if (c->in_tx)
      bg_dbc_rollback(c);
    goto out;
  }
  n = (long)json_array_size(ids);
  json_array_extend(all, ids);
  bg_info("destroyed %ld results whose retention ended before %s", n, today);
out:
  free(arr);
  json_decref(ids);
  PQclear(res);
  return n;
}

long prx_purge_run(const char *request_id, json_t **record_ids)
{
  struct bg_dbc *c = bg_db_acquire(prx.db, 2000);
  if (!c)
    return -1;
  json_t *all = json_array();
  long total = 0, n;
  while ((n = purge_batch(c, request_id, all)) > 0)
    total += n;
  bg_db_release(c);
  if (n < 0) {
    json_decref(all);
    return -1;
  }
  if (record_ids)
    *record_ids = all;
  else
    json_decref(all);
  return total;
}

/* Pending records older than PRX_STALE_S: the query was interrupted. */
static void finish_interrupted(void)
{
  struct bg_dbc *c = bg_db_acquire(prx.db, 2000);
  if (!c)
    return;
  char before[BG_TIME_LEN];
  bg_time_fmt(bg_now() - PRX_STALE_S, before);
  const char *p[] = {before};
  PGresult *res = NULL;
  if (bg_dbc_begin(c) && (res = bg_dbc_exec(c, "q_stale", 1, p, NULL))) {
    bool ok = true;
    for (int i = 0; ok && i < PQntuples(res); i++) {
      const char *qid = PQgetvalue(res, i, 0), *rid = PQgetvalue(res, i, 1), *cid = PQgetvalue(res, i, 2);
      bool released = prx_release(NULL, rid, cid, "interrupted");
      json_t *ev = bg_event_new(NULL, "bli_query.failed", "bli_query", qid, "failure");
      json_object_set_new(ev, "actor", job_actor()); /* the querier is named in the details */
      json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(res, i, 5), "id_masked",
                                                   PQgetvalue(res, i, 6)));
      json_t *d = json_object_get(ev, "details");
      json_object_set_new(d, "request_id", json_string(rid));
      json_object_set_new(d, "consumption_id", json_string(cid));
      json_object_set_new(d, "item", json_string(PQgetvalue(res, i, 4)));
      json_object_set_new(d, "querier_id", json_string(PQgetvalue(res, i, 3)));
      json_object_set_new(d, "code", json_string("interrupted"));
      json_object_set_new(d, "released", json_boolean(released));
      char *text = bg_json_dump(ev);
      /* whether its own event reached the log is not known: it is shipped (audit de-duplicates) */
      const char *pf[] = {qid, "interrupted", released ? "true" : "false", json_string_value(json_object_get(ev, "id")),
                          text, "false"};
      ok = text && bg_dbc_run(c, "q_failed", 6, pf, NULL);
      free(text);
      json_decref(ev);
    }
    if (ok && bg_dbc_commit(c) && PQntuples(res))
      bg_warn("finished %d interrupted queries (their uses given back)", PQntuples(res));
  }
  if (c->in_tx)
    bg_dbc_rollback(c);
  PQclear(res);
  bg_db_release(c);
}

/* How long a use owed back may stay unknown to workflow (404) before it counts as never taken:
 * its consume may still be waiting on a lock in workflow when the proxy gave up on it. */
#define PRX_OWED_GRACE_S 3600

/* Gives back the uses owed (releases_owed): a failure's release that did not get through, a
 * consume whose answer never came. Until workflow answers, the row stays and is tried again. */
static void settle_owed_releases(void)
{
  struct bg_dbc *c = bg_db_acquire(prx.db, 2000);
  if (!c)
    return;
  char grace[BG_TIME_LEN];
  bg_time_fmt(bg_now() - PRX_OWED_GRACE_S, grace);
  const char *p[] = {grace};
  PGresult *res = NULL;
  int settled = 0;
  if (bg_dbc_begin(c) && (res = bg_dbc_exec(c, "ro_due", 1, p, NULL))) {
    bool ok = true;
    for (int i = 0; ok && i < PQntuples(res); i++) {
      const char *cid = PQgetvalue(res, i, 0), *rid = PQgetvalue(res, i, 1), *why = PQgetvalue(res, i, 2);
      long st = prx_release_status(NULL, rid, cid, why);
      const char *ps[] = {cid};
      if (st == 0 || st >= 500)
        break; /* workflow is away: the rest wait for the next run, not a timeout each */
      const char *stmt = st == 200 ? "ro_settled" /* given back now (or before) */
                         : st == 404 && PQgetvalue(res, i, 3)[0] == 't' ? "ro_drop" /* never taken */
                                                                         : NULL;
      if (stmt) {
        ok = bg_dbc_run(c, stmt, 1, ps, NULL);
        settled++;
      }
    }
    if (ok && bg_dbc_commit(c) && settled)
      bg_info("gave back %d uses owed to workflow", settled);
  }
  if (c->in_tx)
    bg_dbc_rollback(c);
  PQclear(res);
  bg_db_release(c);
}

void prx_h_purge(struct bg_request *r)
{
  json_t *ids = NULL;
  settle_owed_releases(); /* at once too: an operator who fixed workflow need not wait for the hour */
  long n = prx_purge_run(r->request_id, &ids);
  if (n < 0) {
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the purge did not complete; it is retried on its schedule");
    return;
  }
  char today[BG_DATE_LEN];
  bg_reply_json(r, 200, json_pack("{s:I, s:o, s:s}", "destroyed", (json_int_t)n, "record_ids", ids, "before",
                                  bg_date_fmt(bg_now(), today)));
}

static struct bg_job *job;

static void job_run(void *arg)
{
  (void)arg;
  if (prx_purge_run(NULL, NULL) < 0)
    bg_warn("retention purge failed; it runs again on its schedule");
  finish_interrupted();
  settle_owed_releases();
}

void prx_purge_start(int interval_s) { job = bg_job_start("retention", (long)interval_s * 1000, job_run, NULL); }

void prx_purge_stop(void)
{
  bg_job_stop(job);
  job = NULL;
}
