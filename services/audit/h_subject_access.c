/* Subject-access reports (Personal Data Protection Act; rule 9): a citizen asks what was done
 * with their data. The permission administrator or the Ethics Office posts the citizen's ID
 * number (in the body only: it is hashed here with the key the events carry and goes nowhere
 * else) and gets every access to that person's BLI data on the log -- each query and each
 * later view: when, which item, which unit and person, under which legal basis and
 * registration -- with an inclusion proof of each event against a signed tree head, for the
 * reply to the citizen. The request is logged with its 15-day due date. */
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include "canon.h"
#include "ov.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAR_MAX_ACCESSES 2000

static const char *const answerers[] = {"permission_admin", "ethics_officer", NULL};

static bool may(struct bg_request *r)
{
  if (aud_has_any_role(r, answerers))
    return true;
  bg_reply_problem(r, BG_P_FORBIDDEN, "subject-access requests are answered by the permission administrator and the "
                                      "Ethics Office");
  return false;
}

static json_t *sar_json(PGresult *res, int row, bool with_report)
{
  json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:s, s:s}", "id", PQgetvalue(res, row, OV_SAR_ID),
                        "subject_masked", PQgetvalue(res, row, OV_SAR_MASKED), "reference",
                        aud_ov_col(res, row, OV_SAR_REF), "received_on", PQgetvalue(res, row, OV_SAR_RECEIVED),
                        "due_on", PQgetvalue(res, row, OV_SAR_DUE), "tree_size", aud_ov_col_int(res, row, OV_SAR_SIZE),
                        "access_count", aud_ov_col_int(res, row, OV_SAR_COUNT), "requested_by",
                        PQgetvalue(res, row, OV_SAR_BY), "created_at", PQgetvalue(res, row, OV_SAR_CREATED));
  json_object_set_new(j, "extension",
                      PQgetisnull(res, row, OV_SAR_EXT_AT)
                        ? json_null()
                        : json_pack("{s:s, s:s, s:s}", "extended_by", PQgetvalue(res, row, OV_SAR_EXT_BY),
                                    "extended_at", PQgetvalue(res, row, OV_SAR_EXT_AT), "reason",
                                    PQgetvalue(res, row, OV_SAR_EXT_REASON)));
  if (j && with_report)
    json_object_set_new(j, "report", aud_ov_col_json(res, row, OV_SAR_REPORT));
  return j;
}

/* A name from accounts for the letter to the citizen, cached per report; null when unknown. */
static json_t *name_of(struct bg_request *r, json_t *cache, const char *kind, const char *id)
{
  if (!id)
    return json_null();
  char key[64];
  snprintf(key, sizeof key, "%s:%s", kind, id);
  json_t *hit = json_object_get(cache, key);
  if (hit)
    return json_incref(hit);
  long status;
  json_t *x = !strcmp(kind, "unit") ? aud_unit_get(r, id, &status) : aud_account_get(r, id, &status);
  json_t *name = json_incref(json_object_get(x, "name"));
  json_decref(x);
  if (!name)
    name = json_null();
  json_object_set(cache, key, name);
  return name;
}

static const char *s_of(const json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }

/* a member for "s:o": a new reference, or null when absent */
static json_t *opt(json_t *v) { return v ? json_incref(v) : json_null(); }

/* One access as the citizen reads it; view events take the purpose of the query they show. */
static json_t *access_json(struct bg_request *r, json_t *names, const json_t *ev, const json_t *query, json_int_t index,
                           const char *leaf)
{
  const json_t *d = json_object_get(ev, "details"), *actor = json_object_get(ev, "actor");
  bool view = !strcmp(s_of(ev, "type"), "bli_query.viewed");
  const json_t *src = view ? query : ev;
  const json_t *purpose = json_object_get(src, "purpose"), *lb = json_object_get(purpose, "legal_basis");
  const char *who = view ? s_of(d, "viewer_id") : s_of(d, "querier_id");
  const char *unit = view ? s_of(actor, "unit_id") : s_of(d, "unit_id");
  if (!unit)
    unit = s_of(actor, "unit_id");
  time_t t = 0;
  char local[32] = "";
  if (bg_time_parse(s_of(ev, "time"), &t))
    aud_local_fmt(t, local);
  const char *reg = s_of(json_object_get(src, "details"), "registration_no");
  if (!reg)
    reg = s_of(purpose, "registration_no");
  const json_t *obj = json_object_get(ev, "object");
  json_t *a = json_pack(
    "{s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "kind",
    view ? "view" : "query", "index", index, "time", s_of(ev, "time"), "local_time", local, "item",
    opt(json_object_get(d, "item")), "query_id", opt(json_object_get(obj, "id")), "request_id",
    opt(json_object_get(d, "request_id")), "registration_no", reg ? json_string(reg) : json_null(), "legal_basis",
    lb ? json_pack("{s:o, s:o, s:o}", "id", opt(json_object_get(lb, "id")), "code", opt(json_object_get(lb, "code")),
                   "law_name", opt(json_object_get(lb, "law_name")))
       : json_null(),
    "article", opt(json_object_get(purpose, "article")), "unit_id", unit ? json_string(unit) : json_null(),
    "unit_name", name_of(r, names, "unit", unit), "account_id", who ? json_string(who) : json_null(), "name",
    name_of(r, names, "account", who), "role", view ? opt(json_object_get(d, "viewer_role")) : json_string("querier"),
    "outcome", opt(json_object_get(ev, "outcome")), "leaf_hash", leaf);
  return a;
}

struct sar_body {
  const char *national_id, *reference, *received_on;
};

void aud_h_sar_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct sar_body, national_id),
    BG_FIELD("reference", BG_F_STRING, false, struct sar_body, reference, .min = 1, .max = 100),
    BG_FIELD("received_on", BG_F_DATE, false, struct sar_body, received_on), BG_FIELD_END};
  struct sar_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !may(r))
    return;
  time_t now = bg_now(), received;
  char today[BG_DATE_LEN], received_s[BG_DATE_LEN], due_s[BG_DATE_LEN];
  bg_date_fmt(now, today);
  if (b.received_on && (!aud_date_start(b.received_on, &received) || strcmp(b.received_on, today) > 0)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "received_on", "range", "a date of the calendar, not after today");
    return;
  }
  if (!b.received_on)
    aud_date_start(today, &received);
  bg_date_fmt(received, received_s);
  bg_date_fmt(received + AUD_SAR_DUE_DAYS * AUD_DAY, due_s);
  if (b.reference && aud_has_national_id(json_object_get(r->json, "reference"))) {
    bg_reply_field_error(r, BG_P_VALIDATION, "reference", "national-id", "must not hold an ID number");
    return;
  }
  char hmac[65], masked[11];
  if (!bg_id_hmac(b.national_id, hmac)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  bg_twid_mask(b.national_id, masked);
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  json_t *sth = NULL, *names = json_object(), *accesses = json_array(), *queries = json_object(), *report = NULL;
  PGresult *res = NULL;
  char *canon = NULL;
  if (!(sth = aud_anchor(c)))
    goto failed;
  json_int_t size = json_integer_value(json_object_get(sth, "tree_size"));
  unsigned char sth_root[AUD_HASH_LEN];
  if (!aud_hash_unhex(json_string_value(json_object_get(sth, "root_hash")), sth_root))
    goto failed;
  char size_s[24], lim[16];
  snprintf(size_s, sizeof size_s, "%" JSON_INTEGER_FORMAT, size);
  snprintf(lim, sizeof lim, "%d", SAR_MAX_ACCESSES + 1);
  const char *ps[] = {hmac, size_s, "{bli_query.executed,bli_query.viewed}", lim};
  if (!(res = bg_dbc_exec(c, "ov_subject", 4, ps, NULL)))
    goto failed;
  int n = PQntuples(res), take = n > SAR_MAX_ACCESSES ? SAR_MAX_ACCESSES : n;
  json_t **evs = calloc((size_t)(take ? take : 1), sizeof *evs);
  if (!evs)
    goto failed;
  for (int i = 0; i < take; i++) {
    evs[i] = json_loads(PQgetvalue(res, i, 2), JSON_REJECT_DUPLICATES, NULL);
    if (evs[i] && !strcmp(s_of(evs[i], "type"), "bli_query.executed") && s_of(json_object_get(evs[i], "object"), "id"))
      json_object_set(queries, s_of(json_object_get(evs[i], "object"), "id"), evs[i]);
  }
  bool ok = true;
  for (int i = 0; ok && i < take; i++) {
    if (!evs[i])
      continue;
    uint64_t index = strtoull(PQgetvalue(res, i, 0), NULL, 10);
    unsigned char proof[AUD_MAX_PROOF][AUD_HASH_LEN], leaf[AUD_HASH_LEN], root[AUD_HASH_LEN];
    int np = aud_db_inclusion(c, index, (uint64_t)size, proof, leaf, root);
    /* the proof must lead to the signed head the report names */
    if (np < 0 || memcmp(root, sth_root, AUD_HASH_LEN) != 0) {
      bg_log(BG_LOG_ERROR, r->request_id, "no inclusion proof of event %" PRIu64 " in the tree of %" JSON_INTEGER_FORMAT,
             index, size);
      ok = false;
      break;
    }
    const json_t *q = json_object_get(queries, s_of(json_object_get(evs[i], "object"), "id")
                                                 ? s_of(json_object_get(evs[i], "object"), "id")
                                                 : "");
    json_t *a = access_json(r, names, evs[i], q, (json_int_t)index, PQgetvalue(res, i, 1));
    if (!a) {
      bg_log(BG_LOG_ERROR, r->request_id, "event %" PRIu64 " could not be described", index);
      ok = false;
      break;
    }
    json_t *path = json_array();
    for (int k = 0; k < np; k++) {
      char hex[2 * AUD_HASH_LEN + 1];
      aud_hash_hex(proof[k], hex);
      json_array_append_new(path, json_string(hex));
    }
    json_object_set_new(a, "audit_path", path);
    json_object_set_new(a, "event", json_string(PQgetvalue(res, i, 2)));
    json_array_append_new(accesses, a);
  }
  for (int i = 0; i < take; i++)
    json_decref(evs[i]);
  free(evs);
  if (!ok)
    goto failed;
  char now_s[BG_TIME_LEN], id[BG_UUID_LEN], count_s[16];
  bg_time_fmt(now, now_s);
  bg_uuid_v4(id);
  snprintf(count_s, sizeof count_s, "%zu", json_array_size(accesses));
  report = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:s, s:O, s:I, s:b, s:o, s:s}", "format",
                     "bligate.subject-access-report/1", "id", id, "subject", "id_masked", masked, "id_hmac", hmac,
                     "reference", b.reference ? json_string(b.reference) : json_null(), "received_on", received_s,
                     "due_on", due_s, "generated_at", now_s, "tree_head", sth, "access_count",
                     (json_int_t)json_array_size(accesses), "truncated", n > SAR_MAX_ACCESSES, "accesses", accesses,
                     "verification",
                     "each event's leaf hash is SHA-256(0x00 || event) (the exact text in `event`); its audit_path "
                     "is an RFC 9162 inclusion proof against tree_head, whose signature checks with "
                     "GET /v1/audit/keys");
  accesses = NULL;
  size_t clen;
  const char *why = NULL;
  if (!report || !(canon = aud_canon(report, &clen, &why)))
    goto failed;
  const char *pi[] = {id,     hmac,     masked, b.reference, received_s, due_s, size_s, count_s,
                      canon,  r->token.sub, now_s};
  json_t *ev = bg_event_new(r, "audit.subject_access.reported", "subject_access_report", id, "success");
  /* the request is about the person: it is found by the next search for them */
  json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", hmac, "id_masked", masked));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "received_on", json_string(received_s));
  json_object_set_new(d, "due_on", json_string(due_s));
  json_object_set_new(d, "access_count", json_integer(json_integer_value(json_object_get(report, "access_count"))));
  json_object_set_new(d, "tree_size", json_integer(size));
  if (b.reference)
    json_object_set_new(d, "reference", json_string(b.reference));
  if (!bg_dbc_begin(c) || !bg_dbc_run(c, "ov_sar_insert", 11, pi, NULL)) {
    json_decref(ev);
    goto failed;
  }
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  PQclear(res);
  const char *pg[] = {id};
  if (!(res = bg_dbc_exec(c, "ov_sar_get", 1, pg, NULL)) || PQntuples(res) != 1)
    goto failed;
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/audit/subject-access-reports/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, sar_json(res, 0, true));
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  free(canon);
  json_decref(report);
  json_decref(sth);
  json_decref(names);
  json_decref(accesses);
  json_decref(queries);
  bg_db_release(c);
}

static json_t *list_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return sar_json(res, row, false);
}

void aud_h_sar_list(struct bg_request *r)
{
  struct bg_page_req pg;
  if (!bg_req_page(r, &pg) || !may(r))
    return;
  const char *p[] = {pg.after_ts, pg.after_id, pg.lim};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_sar_list", 3, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, OV_SAR_CREATED, OV_SAR_ID, list_row, NULL));
  PQclear(res);
}

/* Reading a report again reads about a person: it is recorded on the log first. */
void aud_h_sar_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id) || !may(r))
    return;
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_sar_get", 1, p);
  if (!res)
    return;
  if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such subject-access report");
    PQclear(res);
    return;
  }
  json_t *report = aud_ov_col_json(res, 0, OV_SAR_REPORT);
  json_t *ev = bg_event_new(r, "audit.subject_access.read", "subject_access_report", id, "success");
  json_object_set(ev, "subject", json_object_get(report, "subject"));
  json_decref(report);
  if (!aud_append_own(ev, r->request_id))
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the read could not be recorded on the log, so it is refused");
  else
    bg_reply_json(r, 200, sar_json(res, 0, true));
  PQclear(res);
}

struct extend_body {
  const char *reason;
};

/* The one extension the law allows: 15 more days, with the reason (which the reply to the
 * citizen must give). */
void aud_h_sar_extend(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reason", BG_F_STRING, true, struct extend_body, reason, .min = 2, .max = 1000), BG_FIELD_END};
  struct extend_body b = {0};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id) || !bg_json_parse(r, r->json, spec, &b) || !may(r))
    return;
  if (aud_has_national_id(json_object_get(r->json, "reason"))) {
    bg_reply_field_error(r, BG_P_VALIDATION, "reason", "national-id", "must not hold an ID number");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  PGresult *res = NULL;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id};
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "ov_sar_lock", 1, p, NULL)))
    goto failed;
  if (PQntuples(res) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such subject-access report");
    goto done;
  }
  if (!PQgetisnull(res, 0, OV_SAR_EXT_AT)) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_CONFLICT, "the request was extended on %s; the law allows one extension",
                     PQgetvalue(res, 0, OV_SAR_EXT_AT));
    goto done;
  }
  char today[BG_DATE_LEN];
  bg_date_fmt(bg_now(), today);
  if (strcmp(today, PQgetvalue(res, 0, OV_SAR_DUE)) > 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_CONFLICT, "the period ended on %s; an extension is given within it",
                     PQgetvalue(res, 0, OV_SAR_DUE));
    goto done;
  }
  const char *pe[] = {id, r->token.sub, now_s, b.reason};
  if (!bg_dbc_run(c, "ov_sar_extend", 4, pe, NULL))
    goto failed;
  json_t *ev = bg_event_new(r, "audit.subject_access.extended", "subject_access_report", id, "success");
  json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(res, 0, OV_SAR_HMAC),
                                               "id_masked", PQgetvalue(res, 0, OV_SAR_MASKED)));
  json_object_set_new(json_object_get(ev, "details"), "reason", json_string(b.reason));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "ov_sar_get", 1, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  bg_reply_json(r, 200, sar_json(res, 0, false));
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  bg_db_release(c);
}
