/* Quarterly usage reviews (rule 7): the permission administrator generates the review of an
 * ended quarter from the log, anchored to a signed tree head (the report says exactly which
 * events it was computed from), signs it, and records its submission to the Labor Affairs
 * Bureau with the reference number. A quarter whose review is not submitted within 30 days of
 * its end is overdue: listed by GET /v1/audit/quarters and counted on /metrics.
 * What a review says is computed in oversight.c; this file fetches and records. */
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include "canon.h"
#include "ov.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const admin_only[] = {"permission_admin", NULL};

static bool time_col(PGresult *res, int row, int col, time_t *t)
{
  return !PQgetisnull(res, row, col) && bg_time_parse(PQgetvalue(res, row, col), t);
}

static json_t *review_json(PGresult *res, int row, bool with_report)
{
  time_t now = bg_now(), due = 0, sub = 0;
  bool submitted = !strcmp(PQgetvalue(res, row, OV_QR_STATE), "submitted");
  bool has_due = time_col(res, row, OV_QR_DUE, &due), has_sub = time_col(res, row, OV_QR_SUB_AT, &sub);
  json_t *j = json_pack(
    "{s:s, s:I, s:I, s:s, s:I, s:s, s:s, s:s, s:b, s:b, s:I, s:s, s:s, s:o, s:s, s:s, s:{s:o, s:o, s:o},"
    " s:{s:o, s:o, s:o}, s:s}",
    "id", PQgetvalue(res, row, OV_QR_ID), "year", aud_ov_col_int(res, row, OV_QR_YEAR), "quarter",
    aud_ov_col_int(res, row, OV_QR_QUARTER), "state", PQgetvalue(res, row, OV_QR_STATE), "version",
    aud_ov_col_int(res, row, OV_QR_VERSION), "period_start", PQgetvalue(res, row, OV_QR_START), "period_end",
    PQgetvalue(res, row, OV_QR_END), "due_at", PQgetvalue(res, row, OV_QR_DUE), "overdue",
    !submitted && has_due && now > due, "submitted_late", has_sub && has_due && sub > due, "tree_size",
    aud_ov_col_int(res, row, OV_QR_SIZE), "root_hash", PQgetvalue(res, row, OV_QR_ROOT), "report_sha256",
    PQgetvalue(res, row, OV_QR_SHA), "summary", aud_ov_col_json(res, row, OV_QR_SUMMARY), "generated_by",
    PQgetvalue(res, row, OV_QR_GEN_BY), "generated_at", PQgetvalue(res, row, OV_QR_GEN_AT), "signature",
    "account_id", aud_ov_col(res, row, OV_QR_SIGNED_BY), "name", aud_ov_col(res, row, OV_QR_SIGNED_NAME), "signed_at",
    aud_ov_col(res, row, OV_QR_SIGNED_AT), "submission", "account_id", aud_ov_col(res, row, OV_QR_SUB_BY),
    "submitted_at", aud_ov_col(res, row, OV_QR_SUB_AT), "reference_no", aud_ov_col(res, row, OV_QR_REF),
    "created_at", PQgetvalue(res, row, OV_QR_CREATED));
  if (j && with_report)
    json_object_set_new(j, "report", aud_ov_col_json(res, row, OV_QR_REPORT));
  return j;
}

static json_t *list_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return review_json(res, row, false);
}

/* Events about the given objects ($1, ids), of the given types ($2), before $3: joined from
 * the ids to the object index, and planned for the ids at hand on every call (bg_dbc_exec_sql)
 * so that a generic plan made on a small log cannot scan the whole log later. */
#define EVENTS_OF_OBJECTS                                                                                  \
  "SELECT e.idx, e.canonical FROM unnest($1::text[]) AS q(id) JOIN events e ON e.object_id = q.id"        \
  " WHERE e.type = ANY($2::text[]) AND e.idx < $3 ORDER BY e.idx"

/* Rows of (idx, canonical) as [{index, event}], res consumed; NULL when res is (a database
 * failure). */
static json_t *load_events(PGresult *res)
{
  if (!res)
    return NULL;
  json_t *out = json_array();
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *ev = json_loads(PQgetvalue(res, i, 1), JSON_REJECT_DUPLICATES, NULL);
    if (ev)
      json_array_append_new(out, json_pack("{s:I, s:o}", "index", aud_ov_col_int(res, i, 0), "event", ev));
  }
  PQclear(res);
  return out;
}

static bool forbid_unless(struct bg_request *r, bool ok, const char *why)
{
  if (!ok)
    bg_reply_problem(r, BG_P_FORBIDDEN, "%s", why);
  return ok;
}

static bool overseer(struct bg_request *r)
{
  return forbid_unless(r, aud_is_overseer(r),
                       "quarterly reviews are read by the permission administrator, IT staff, the Ethics Office "
                       "and the Director");
}

/* The review body of [start, end) from the first tree_size events of the log. */
static json_t *compute(struct bg_dbc *c, int year, int quarter, time_t start, time_t end, const char *tree_size)
{
  char from[BG_TIME_LEN], to[BG_TIME_LEN], q0[BG_TIME_LEN], q1[BG_TIME_LEN];
  time_t wstart = (end - AUD_UNUSED_DAYS * AUD_DAY < start ? end - AUD_UNUSED_DAYS * AUD_DAY : start) - AUD_DAY;
  bg_time_fmt(wstart, from);
  bg_time_fmt(end + AUD_DAY, to);
  bg_time_fmt(start, q0);
  bg_time_fmt(end, q1);
  const char *pu[] = {"{bli_query.executed,bli_query.failed,query_request.use_consumed,query_request.use_released}",
                      from, to, tree_size};
  const char *pa[] = {"{query_request.decided}", q0, q1, tree_size};
  const char *pp[] = {"{grants.changed,grants.suspended,account.updated,account.deactivated,permission_admin.handover}",
                      "1970-01-01T00:00:00Z", q1, tree_size};
  json_t *usage = load_events(bg_dbc_exec(c, "ov_ev_types", 4, pu, NULL));
  json_t *approvals = usage ? load_events(bg_dbc_exec(c, "ov_ev_types", 4, pa, NULL)) : NULL;
  json_t *perms = approvals ? load_events(bg_dbc_exec(c, "ov_ev_types", 4, pp, NULL)) : NULL;
  json_t *reqs = NULL, *body = NULL;
  if (perms) {
    /* the approved requests' submissions and uses, whenever they happened */
    json_t *ids = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(approvals, i, e)
    {
      const json_t *ev = json_object_get(e, "event");
      const char *rq = json_string_value(json_object_get(json_object_get(ev, "object"), "id"));
      if (rq && bg_uuid_valid(rq))
        json_array_append_new(ids, json_string(rq));
    }
    /* an array literal of UUIDs (checked above, so nothing to quote) */
    size_t n = json_array_size(ids), cap = 3 + n * 38;
    char *lit = malloc(cap);
    if (lit) {
      size_t len = 0;
      lit[len++] = '{';
      json_array_foreach(ids, i, e)
      {
        if (i)
          lit[len++] = ',';
        memcpy(lit + len, json_string_value(e), 36);
        len += 36;
      }
      lit[len++] = '}';
      lit[len] = '\0';
      const char *po[] = {lit, "{query_request.submitted,query_request.use_consumed,query_request.use_released}",
                          tree_size};
      reqs = load_events(bg_dbc_exec_sql(c, "events_of_objects", EVENTS_OF_OBJECTS, 3, po));
      free(lit);
    }
    json_decref(ids);
  }
  if (reqs) {
    struct aud_review_in in = {.year = year,
                               .quarter = quarter,
                               .start = start,
                               .end = end,
                               .office = &aud_ov.office,
                               .usage = usage,
                               .approvals = approvals,
                               .request_events = reqs,
                               .permissions = perms};
    body = aud_review_build(&in);
    /* when each unused grant was last used (before the 90 days), from the querier's own events */
    char cutoff[BG_TIME_LEN];
    bg_time_fmt(end - AUD_UNUSED_DAYS * AUD_DAY, cutoff);
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(body, "unused_grants"), i, g)
    {
      const char *pl[] = {json_string_value(json_object_get(g, "account_id")), cutoff, tree_size,
                          json_string_value(json_object_get(g, "item"))};
      PGresult *res = bg_dbc_exec(c, "ov_last_use", 4, pl, NULL);
      if (!res) {
        json_decref(body);
        body = NULL;
        break;
      }
      if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        json_object_set_new(g, "last_used_at", json_string(PQgetvalue(res, 0, 0)));
      PQclear(res);
    }
  }
  json_decref(usage);
  json_decref(approvals);
  json_decref(perms);
  json_decref(reqs);
  return body;
}

struct gen_body {
  long year, quarter;
};

void aud_h_reviews_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("year", BG_F_INT, true, struct gen_body, year, .imin = 2000, .imax = 2200),
    BG_FIELD("quarter", BG_F_INT, true, struct gen_body, quarter, .imin = 1, .imax = 4), BG_FIELD_END};
  struct gen_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  if (!forbid_unless(r, aud_has_any_role(r, admin_only), "only the permission administrator generates quarterly reviews"))
    return;
  time_t start, end, now = bg_now();
  if (!aud_quarter_bounds((int)b.year, (int)b.quarter, &start, &end)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "year", "range", "not a quarter of the calendar");
    return;
  }
  if (end > now) {
    bg_reply_problem(r, BG_P_QUARTER_NOT_ENDED, "%ld Q%ld ends at the bureau's midnight after its last day", b.year,
                     b.quarter);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  json_t *sth = NULL, *body = NULL, *report = NULL, *ev = NULL;
  PGresult *res = NULL;
  char *canon = NULL;
  if (!(sth = aud_anchor(c))) {
    bg_db_failed(r, c);
    goto done;
  }
  char size_s[24];
  snprintf(size_s, sizeof size_s, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(sth, "tree_size")));
  if (!(body = compute(c, (int)b.year, (int)b.quarter, start, end, size_s))) {
    bg_db_failed(r, c);
    goto done;
  }
  char s0[BG_TIME_LEN], s1[BG_TIME_LEN], due[BG_TIME_LEN], now_s[BG_TIME_LEN];
  bg_time_fmt(start, s0);
  bg_time_fmt(end, s1);
  bg_time_fmt(end + AUD_REVIEW_DUE_DAYS * AUD_DAY, due);
  bg_time_fmt(now, now_s);
  report = json_pack("{s:s, s:I, s:I, s:{s:s, s:s, s:s}, s:s, s:s, s:O, s:o}", "format", "bligate.quarterly-review/1", "year",
                     (json_int_t)b.year, "quarter", (json_int_t)b.quarter, "period", "start", s0, "end", s1,
                     "time_zone", "Asia/Taipei", "generated_at", now_s, "generated_by", r->token.sub, "tree_head", sth,
                     "office_hours", aud_office_hours_json(&aud_ov.office));
  json_object_update(report, body);
  size_t clen;
  const char *why = NULL;
  if (!(canon = aud_canon(report, &clen, &why))) {
    bg_log(BG_LOG_ERROR, r->request_id, "a review has no canonical form: %s", why ? why : "?");
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    goto done;
  }
  char sha[65], year_s[8], quarter_s[4], id[BG_UUID_LEN];
  bg_sha256_hex(canon, clen, sha);
  snprintf(year_s, sizeof year_s, "%ld", b.year);
  snprintf(quarter_s, sizeof quarter_s, "%ld", b.quarter);
  char *summary = bg_json_dump(json_object_get(body, "summary"));
  const char *root = json_string_value(json_object_get(sth, "root_hash"));
  bool created = false;
  struct bg_dberr err = {0};
  const char *pq[] = {year_s, quarter_s};
  if (!summary || !bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "ov_qr_lock_quarter", 2, pq, NULL)))
    goto failed;
  if (PQntuples(res) == 1) {
    if (strcmp(PQgetvalue(res, 0, OV_QR_STATE), "draft") != 0) {
      bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_REVIEW_STATE, "the review of %ld Q%ld is %s; it is not generated again", b.year,
                       b.quarter, PQgetvalue(res, 0, OV_QR_STATE));
      goto done_summary;
    }
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, OV_QR_ID));
    const char *pr[] = {id, size_s, root, canon, sha, summary, r->token.sub, now_s};
    if (!bg_dbc_run(c, "ov_qr_regenerate", 8, pr, NULL))
      goto failed;
  } else {
    created = true;
    bg_uuid_v4(id);
    const char *pi[] = {id, year_s, quarter_s, s0, s1, due, size_s, root, canon, sha, summary, r->token.sub, now_s};
    if (!bg_dbc_run(c, "ov_qr_insert", 13, pi, &err)) {
      if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
        bg_dbc_rollback(c);
        bg_reply_problem(r, BG_P_CONFLICT, "the review of this quarter was generated at the same moment; try again");
        goto done_summary;
      }
      goto failed;
    }
  }
  ev = bg_event_new(r, "audit.quarterly_review.generated", "quarterly_review", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "year", json_integer(b.year));
  json_object_set_new(d, "quarter", json_integer(b.quarter));
  json_object_set_new(d, "tree_size", json_integer(json_integer_value(json_object_get(sth, "tree_size"))));
  json_object_set_new(d, "root_hash", json_string(root));
  json_object_set_new(d, "report_sha256", json_string(sha));
  json_object_set(d, "summary", json_object_get(body, "summary"));
  json_object_set_new(d, "regenerated", json_boolean(!created));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  PQclear(res);
  const char *pg[] = {id};
  if (!(res = bg_dbc_exec(c, "ov_qr_get", 1, pg, NULL)) || PQntuples(res) != 1)
    goto failed;
  if (created) {
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/audit/quarterly-reviews/%s", id);
    bg_reply_header(r, "Location", loc);
  }
  bg_reply_json(r, created ? 201 : 200, review_json(res, 0, true));
  goto done_summary;
failed:
  bg_db_failed(r, c);
done_summary:
  free(summary);
done:
  PQclear(res);
  free(canon);
  json_decref(report);
  json_decref(body);
  json_decref(sth);
  bg_db_release(c);
}

void aud_h_reviews_list(struct bg_request *r)
{
  static const char *const states[] = {"draft", "signed", "submitted", NULL};
  struct bg_page_req pg;
  if (!bg_req_page(r, &pg))
    return;
  const char *state = bg_req_query(r, "state");
  bool known = !state;
  for (int i = 0; state && states[i]; i++)
    known = known || !strcmp(state, states[i]);
  if (!known) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "one of draft, signed, submitted");
    return;
  }
  if (!overseer(r))
    return;
  const char *p[] = {state, pg.after_ts, pg.after_id, pg.lim};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_qr_list", 4, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, OV_QR_CREATED, OV_QR_ID, list_row, NULL));
  PQclear(res);
}

/* The report names citizens (masked IDs and HMACs of its anomalies): every read of it is on the
 * log before the answer, as its export is, and without the event there is no report. */
void aud_h_reviews_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id) || !overseer(r))
    return;
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_qr_get", 1, p);
  if (!res)
    return;
  if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such quarterly review");
    PQclear(res);
    return;
  }
  json_t *ev = bg_event_new(r, "audit.quarterly_review.read", "quarterly_review", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "year", json_integer(aud_ov_col_int(res, 0, OV_QR_YEAR)));
  json_object_set_new(d, "quarter", json_integer(aud_ov_col_int(res, 0, OV_QR_QUARTER)));
  json_object_set_new(d, "version", json_integer(aud_ov_col_int(res, 0, OV_QR_VERSION)));
  json_object_set_new(d, "report_sha256", json_string(PQgetvalue(res, 0, OV_QR_SHA)));
  if (!aud_append_own(ev, r->request_id))
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the read could not be recorded on the log, so it is refused");
  else
    bg_reply_json(r, 200, review_json(res, 0, true));
  PQclear(res);
}

/* sign and submit: one step of the lifecycle, under the review's row lock, with its event */
static void step(struct bg_request *r, bool sign, const char *reference_no)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  if (!forbid_unless(r, aud_has_any_role(r, admin_only),
                     sign ? "only the permission administrator signs the quarterly review"
                          : "only the permission administrator records the submission"))
    return;
  json_t *me = NULL;
  long status = 0;
  /* the signature names the signer as accounts knows them now */
  if (sign && !(me = aud_account_get(r, r->token.sub, &status))) {
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the signer");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *res = NULL;
  if (!c)
    goto done;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id};
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "ov_qr_lock", 1, p, NULL)))
    goto failed;
  if (PQntuples(res) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such quarterly review");
    goto done;
  }
  const char *want = sign ? "draft" : "signed";
  if (strcmp(PQgetvalue(res, 0, OV_QR_STATE), want) != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_REVIEW_STATE, "the review is %s; %s", PQgetvalue(res, 0, OV_QR_STATE),
                     sign ? "only a draft is signed" : "only a signed review is submitted");
    goto done;
  }
  const char *name = json_string_value(json_object_get(me, "name"));
  const char *ps[] = {id, r->token.sub, name ? name : "", now_s};
  const char *pt[] = {id, r->token.sub, now_s, reference_no};
  if (!bg_dbc_run(c, sign ? "ov_qr_sign" : "ov_qr_submit", 4, sign ? ps : pt, NULL))
    goto failed;
  json_t *ev = bg_event_new(r, sign ? "audit.quarterly_review.signed" : "audit.quarterly_review.submitted",
                            "quarterly_review", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "year", json_integer(aud_ov_col_int(res, 0, OV_QR_YEAR)));
  json_object_set_new(d, "quarter", json_integer(aud_ov_col_int(res, 0, OV_QR_QUARTER)));
  json_object_set_new(d, "version", json_integer(aud_ov_col_int(res, 0, OV_QR_VERSION)));
  json_object_set_new(d, "tree_size", json_integer(aud_ov_col_int(res, 0, OV_QR_SIZE)));
  json_object_set_new(d, "root_hash", json_string(PQgetvalue(res, 0, OV_QR_ROOT)));
  /* the signature is over this digest of the report's canonical text */
  json_object_set_new(d, "report_sha256", json_string(PQgetvalue(res, 0, OV_QR_SHA)));
  if (!sign) {
    json_object_set_new(d, "reference_no", json_string(reference_no));
    json_object_set_new(d, "recipient", json_string("Labor Affairs Bureau"));
  }
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "ov_qr_get", 1, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  bg_reply_json(r, 200, review_json(res, 0, true));
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  json_decref(me);
  bg_db_release(c);
}

void aud_h_reviews_sign(struct bg_request *r)
{
  static const struct bg_field spec[] = {BG_FIELD_END};
  if (bg_json_parse(r, r->json, spec, &(char){0}))
    step(r, true, NULL);
}

struct submit_body {
  const char *reference_no;
};

void aud_h_reviews_submit(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reference_no", BG_F_STRING, true, struct submit_body, reference_no, .min = 1, .max = 100),
    BG_FIELD_END};
  struct submit_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  if (aud_has_national_id(json_object_get(r->json, "reference_no"))) {
    bg_reply_field_error(r, BG_P_VALIDATION, "reference_no", "national-id", "must not hold an ID number");
    return;
  }
  step(r, false, b.reference_no);
}

/* The whole review as one JSON document for the Labor Affairs Bureau and for auditors; the
 * export is itself on the log. */
void aud_h_reviews_export(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id) || !overseer(r))
    return;
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_qr_get", 1, p);
  if (!res)
    return;
  if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such quarterly review");
    PQclear(res);
    return;
  }
  json_t *ev = bg_event_new(r, "audit.quarterly_review.exported", "quarterly_review", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "report_sha256", json_string(PQgetvalue(res, 0, OV_QR_SHA)));
  if (!aud_append_own(ev, r->request_id)) {
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the export could not be recorded on the log, so it is refused");
    PQclear(res);
    return;
  }
  json_t *review = review_json(res, 0, false);
  json_t *doc = json_pack("{s:s, s:o, s:o, s:s}", "format", "bligate.quarterly-review-export/1", "review", review,
                          "report", aud_ov_col_json(res, 0, OV_QR_REPORT), "report_sha256",
                          PQgetvalue(res, 0, OV_QR_SHA));
  char disp[96];
  snprintf(disp, sizeof disp, "attachment; filename=\"quarterly-review-%s-Q%s.json\"", PQgetvalue(res, 0, OV_QR_YEAR),
           PQgetvalue(res, 0, OV_QR_QUARTER));
  bg_reply_header(r, "Content-Disposition", disp);
  bg_reply_json(r, 200, doc);
  PQclear(res);
}

/* ---- which quarters are due, and overdue ---- */

/* The quarters the bureau owes a review for: from the configured first quarter (default: the
 * quarter of the log's first event) to the current one, and any quarter reviewed anyway.
 * *overdue counts those past their due date without a submitted review. NULL on a failure. */
static json_t *quarters(struct bg_dbc *c, time_t now, long *overdue)
{
  PGresult *first = bg_dbc_exec(c, "ov_first_event", 0, NULL, NULL);
  PGresult *rev = first ? bg_dbc_exec(c, "ov_qr_all", 0, NULL, NULL) : NULL;
  if (!rev) {
    PQclear(first);
    return NULL;
  }
  int fy = aud_ov.review_from_year, fq = aud_ov.review_from_quarter, cy, cq;
  aud_quarter_of(now, &cy, &cq);
  time_t t0;
  if (!fy) {
    if (PQntuples(first) == 1 && bg_time_parse(PQgetvalue(first, 0, 0), &t0))
      aud_quarter_of(t0, &fy, &fq);
    else
      fy = cy, fq = cq;
  }
  /* (year * 4 + quarter - 1) numbers the quarters in order */
  long lo = fy * 4L + fq - 1, hi = cy * 4L + cq - 1;
  json_t *reviews = json_object();
  for (int i = 0; i < PQntuples(rev); i++) {
    long k = strtol(PQgetvalue(rev, i, 0), NULL, 10) * 4 + strtol(PQgetvalue(rev, i, 1), NULL, 10) - 1;
    char key[24];
    snprintf(key, sizeof key, "%ld", k);
    json_object_set_new(reviews, key, json_pack("{s:s, s:s, s:o}", "id", PQgetvalue(rev, i, 2), "state",
                                                PQgetvalue(rev, i, 3), "submitted_at", aud_ov_col(rev, i, 4)));
    if (k < lo)
      lo = k;
  }
  json_t *items = json_array();
  *overdue = 0;
  for (long k = lo; k <= hi; k++) {
    char key[24];
    snprintf(key, sizeof key, "%ld", k);
    json_t *rv = json_object_get(reviews, key);
    if (k < fy * 4L + fq - 1 && !rv)
      continue; /* before the bureau's first quarter and never reviewed */
    int y = (int)(k / 4), q = (int)(k % 4) + 1;
    time_t s, e, sub = 0;
    aud_quarter_bounds(y, q, &s, &e);
    time_t due = e + AUD_REVIEW_DUE_DAYS * AUD_DAY;
    const char *state = rv ? json_string_value(json_object_get(rv, "state")) : NULL;
    bool submitted = state && !strcmp(state, "submitted");
    const char *sub_s = rv ? json_string_value(json_object_get(rv, "submitted_at")) : NULL;
    bool has_sub = sub_s && bg_time_parse(sub_s, &sub);
    bool late = !submitted && now > due;
    *overdue += late;
    char s0[BG_TIME_LEN], s1[BG_TIME_LEN], d0[BG_TIME_LEN];
    json_array_append_new(items, json_pack("{s:i, s:i, s:s, s:s, s:s, s:b, s:o, s:o, s:O, s:b, s:b}", "year", y,
                                           "quarter", q, "period_start", bg_time_fmt(s, s0), "period_end",
                                           bg_time_fmt(e, s1), "due_at", bg_time_fmt(due, d0), "ended", e <= now,
                                           "review_id", rv ? json_incref(json_object_get(rv, "id")) : json_null(),
                                           "state", state ? json_string(state) : json_string("none"),
                                           "submitted_at", rv ? json_object_get(rv, "submitted_at") : json_null(),
                                           "overdue", late, "submitted_late", has_sub && sub > due));
  }
  json_decref(reviews);
  PQclear(first);
  PQclear(rev);
  return items;
}

void aud_h_quarters(struct bg_request *r)
{
  if (!overseer(r))
    return;
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  long overdue = 0;
  json_t *items = quarters(c, bg_now(), &overdue);
  if (!items)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, json_pack("{s:o, s:I}", "items", items, "overdue", (json_int_t)overdue));
  bg_db_release(c);
}

void aud_reviews_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  (void)ctx;
  struct bg_dbc *c = bg_db_acquire(aud.db, 1000);
  long overdue = 0;
  json_t *items = c ? quarters(c, bg_now(), &overdue) : NULL;
  bg_db_release(c);
  if (!items)
    return; /* no figure rather than a wrong one */
  json_decref(items);
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_quarterly_reviews_overdue Quarters whose review was not submitted within 30 days "
                    "of their end.\n# TYPE bligate_quarterly_reviews_overdue gauge\n"
                    "bligate_quarterly_reviews_overdue %ld\n",
                    overdue);
}
