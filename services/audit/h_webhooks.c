/* /v1/webhooks: the permission administrator subscribes other city systems to event types
 * (webhooks.c delivers). A subscription's creation and disabling are events on the log, in the
 * same transaction as the change; the signing secret is shown once, in the reply that creates
 * it, and never logged. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a subscriber may listen to: the approval steps other systems take part in, and the
 * changes they follow. */
static const char *const subscribable[] = {
  "permission_application.submitted", "permission_application.decided", "permission_application.resubmitted",
  "permission_application.withdrawn", "query_request.submitted", "query_request.decided", "query_request.cancelled",
  "external_application.submitted", "external_application.endorsed", "external_application.not_endorsed",
  "external_application.accepted", "external_application.rejected", "external_application.state_changed",
  "grants.changed", "grants.suspended", "account.created", "account.updated", "account.deactivated", NULL};

static bool admin_only(struct bg_request *r)
{
  if (bg_req_has_role(r, "permission_admin"))
    return true;
  bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator manages webhooks");
  return false;
}

static json_t *webhook_json(PGresult *res, int row)
{
  json_t *types = json_loads(PQgetvalue(res, row, 2), 0, NULL);
  return json_pack("{s:s, s:s, s:o, s:s?, s:s, s:s, s:s, s:s?}", "id", PQgetvalue(res, row, 0), "url",
                   PQgetvalue(res, row, 1), "event_types", types ? types : json_array(), "description",
                   PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3), "status", PQgetvalue(res, row, 4),
                   "created_by", PQgetvalue(res, row, 5), "created_at", PQgetvalue(res, row, 6), "disabled_at",
                   PQgetisnull(res, row, 7) ? NULL : PQgetvalue(res, row, 7));
}

static json_t *webhook_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return webhook_json(res, row);
}

/* The change and its event: the row is written in an open transaction, the event appended to
 * the log, then the row committed — no subscription without its event. */
static bool change_with_event(struct bg_request *r, const char *stmt, int n, const char *const *p, json_t *ev,
                              PGresult **out)
{
  struct bg_dbc *c = bg_db_for(r, aud_webhooks_db());
  if (!c) {
    json_decref(ev);
    return false;
  }
  PGresult *res = NULL;
  bool ok = bg_dbc_begin(c) && (res = bg_dbc_exec(c, stmt, n, p, NULL));
  if (ok && out && PQntuples(res) == 0) { /* nothing to change */
    bg_dbc_rollback(c);
    json_decref(ev);
    *out = res;
    bg_db_release(c);
    return true;
  }
  if (ok && !aud_append_own(ev, r->request_id)) {
    bg_dbc_rollback(c);
    PQclear(res);
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the change could not be recorded on the log, so it was not made");
    bg_db_release(c);
    return false;
  }
  if (ok)
    ev = NULL; /* aud_append_own took it */
  if (!ok || !bg_dbc_commit(c)) {
    json_decref(ev);
    PQclear(res);
    bg_db_failed(r, c);
    bg_db_release(c);
    return false;
  }
  if (out)
    *out = res;
  else
    PQclear(res);
  bg_db_release(c);
  return true;
}

struct webhook_body {
  const char *url, *description;
  json_t *event_types;
};

void aud_h_webhooks_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("url", BG_F_STRING, true, struct webhook_body, url, .min = 10, .max = 2000),
    BG_FIELD("event_types", BG_F_STR_ARRAY, true, struct webhook_body, event_types, .min = 1, .max = 50,
             .enumv = subscribable),
    BG_FIELD("description", BG_F_STRING, false, struct webhook_body, description, .min = 1, .max = 200),
    BG_FIELD_END};
  if (!admin_only(r))
    return;
  struct webhook_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  bool https = !strncmp(b.url, "https://", 8), http = !strncmp(b.url, "http://", 7);
  if (!(https || (http && aud_webhooks_allow_http())) || strpbrk(b.url, " \t\r\n\"<>\\^`{|}") ||
      strchr(b.url + (https ? 8 : 7), '@')) {
    bg_reply_field_error(r, BG_P_VALIDATION, "url", "format",
                         http ? "must be https:// (plain http is for development only)"
                              : "must be an https:// URL without credentials");
    return;
  }
  char id[BG_UUID_LEN], secret[64], now_s[BG_TIME_LEN];
  bg_uuid_v4(id);
  if (!aud_webhook_secret(secret)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  bg_time_fmt(bg_now(), now_s);
  char *types = json_dumps(b.event_types, JSON_COMPACT);
  const char *p[] = {id, b.url, types, b.description, secret, r->token.sub, now_s};
  json_t *ev = bg_event_new(r, "webhook.created", "webhook", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "url", json_string(b.url));
  json_object_set(json_object_get(ev, "details"), "event_types", b.event_types);
  bool ok = change_with_event(r, "wh_insert", 7, p, ev, NULL);
  free(types);
  if (ok) {
    const char *pg[] = {id};
    PGresult *res = bg_db_fetch(r, aud_webhooks_db(), "wh_get", 1, pg);
    if (res && PQntuples(res) == 1) {
      json_t *out = webhook_json(res, 0);
      json_object_set_new(out, "secret", json_string(secret));
      char loc[96];
      bg_fmt(loc, sizeof loc, "/v1/webhooks/%s", id);
      bg_reply_header(r, "Location", loc);
      bg_reply_json(r, 201, out);
    } else if (res) {
      bg_reply_problem(r, BG_P_INTERNAL, NULL);
    }
    PQclear(res);
  }
  OPENSSL_cleanse(secret, sizeof secret);
}

void aud_h_webhooks_list(struct bg_request *r)
{
  struct bg_page_req pg;
  if (!admin_only(r) || !bg_req_page(r, &pg))
    return;
  const char *p[] = {pg.after_ts, pg.after_id, pg.lim};
  PGresult *res = bg_db_fetch(r, aud_webhooks_db(), "wh_list", 3, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, 6, 0, webhook_row, NULL));
  PQclear(res);
}

void aud_h_webhooks_get(struct bg_request *r)
{
  const char *id;
  if (!admin_only(r) || !bg_req_uuid_param(r, 0, &id))
    return;
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, aud_webhooks_db(), "wh_get", 1, p);
  if (res && PQntuples(res) == 1)
    bg_reply_json(r, 200, webhook_json(res, 0));
  else if (res)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such webhook");
  PQclear(res);
}

void aud_h_webhooks_delete(struct bg_request *r)
{
  const char *id;
  if (!admin_only(r) || !bg_req_uuid_param(r, 0, &id))
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  json_t *ev = bg_event_new(r, "webhook.disabled", "webhook", id, "success");
  PGresult *res = NULL;
  if (!change_with_event(r, "wh_disable", 2, p, ev, &res))
    return;
  bool changed = PQntuples(res) == 1;
  PQclear(res);
  if (changed) {
    bg_reply_empty(r, 204);
    return;
  }
  /* already disabled (nothing to do), or unknown */
  const char *pg[] = {id};
  PGresult *w = bg_db_fetch(r, aud_webhooks_db(), "wh_get", 1, pg);
  if (w && PQntuples(w) == 1)
    bg_reply_empty(r, 204);
  else if (w)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such webhook");
  PQclear(w);
}

void aud_h_webhook_deliveries(struct bg_request *r)
{
  const char *id;
  int limit;
  if (!admin_only(r) || !bg_req_uuid_param(r, 0, &id) || !bg_req_limit(r, &limit))
    return;
  /* the cursor is the last listed delivery's log index (base64url of its decimal) */
  const char *cursor = bg_req_query(r, "cursor");
  char after[24] = "", lim[16];
  if (cursor) {
    size_t n = 0;
    unsigned char *raw = strlen(cursor) < 40 ? bg_b64_decode(cursor, &n) : NULL;
    long v;
    bool ok = raw && n > 0 && n < sizeof after && bg_parse_long((const char *)raw, 0, 1L << 62, &v);
    if (ok)
      snprintf(after, sizeof after, "%ld", v);
    free(raw);
    if (!ok) {
      bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
      return;
    }
  }
  snprintf(lim, sizeof lim, "%d", limit + 1);
  const char *pw[] = {id};
  PGresult *w = bg_db_fetch(r, aud_webhooks_db(), "wh_get", 1, pw);
  if (!w)
    return;
  if (PQntuples(w) != 1) {
    PQclear(w);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such webhook");
    return;
  }
  PQclear(w);
  const char *p[] = {id, cursor ? after : NULL, lim};
  PGresult *res = bg_db_fetch(r, aud_webhooks_db(), "wh_deliveries", 3, p);
  if (!res)
    return;
  json_t *items = json_array();
  int rows = PQntuples(res);
  for (int i = 0; i < rows && i < limit; i++) {
    long long idx = strtoll(PQgetvalue(res, i, 2), NULL, 10);
    long tries = 0;
    bg_parse_long(PQgetvalue(res, i, 6), 0, 1000000, &tries);
    json_t *attempts = json_loads(PQgetvalue(res, i, 10), 0, NULL);
    json_array_append_new(
      items, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s?, s:s?, s:o}", "id", PQgetvalue(res, i, 0),
                       "webhook_id", PQgetvalue(res, i, 1), "event_index", (json_int_t)idx, "event_id",
                       PQgetvalue(res, i, 3), "event_type", PQgetvalue(res, i, 4), "state", PQgetvalue(res, i, 5),
                       "attempts", (int)tries, "created_at", PQgetvalue(res, i, 7),
                       "next_attempt_at", PQgetisnull(res, i, 8) ? NULL : PQgetvalue(res, i, 8), "delivered_at",
                       PQgetisnull(res, i, 9) ? NULL : PQgetvalue(res, i, 9), "attempt_log",
                       attempts ? attempts : json_array()));
  }
  char *next = NULL;
  if (rows > limit) {
    const char *last = PQgetvalue(res, limit - 1, 2);
    next = bg_b64url_encode(last, strlen(last));
  }
  bg_reply_json(r, 200, json_pack("{s:o, s:s?}", "items", items, "next_cursor", next));
  free(next);
  PQclear(res);
}
