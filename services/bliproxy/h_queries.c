/* /v1/bli/queries: a BLI query, in the order of DESIGN.md §4, each refusal with its own code
 * and no upstream call before every check has passed; then the records of past queries and
 * their results, read again while retained (each reading an event on the log). */
#include "prx.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct query_body {
  const char *request_id, *subject_id, *national_id, *item;
};

static const char *str(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static const char *opt_str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* The retention date: the bureau's date retention_days from now. */
static void retention_date(time_t now, char out[BG_DATE_LEN])
{
  bg_date_fmt(now + (time_t)prx.retention_days * 86400, out);
}

static char *hex_bytea(const unsigned char *b, size_t n)
{
  char *s = malloc(2 * n + 3);
  if (s) {
    memcpy(s, "\\x", 2);
    bg_hex(b, n, s + 2);
  }
  return s;
}

/* After the use was consumed, the query did not run: the use goes back, the record says why,
 * and an event (shipped from the outbox) says so. appended: the query's own event is on the log;
 * otherwise it is shipped from the outbox too. */
static void fail_query(struct bg_request *r, const char *qid, const json_t *use, bool appended,
                       enum bg_problem p, const char *detail)
{
  const char *request_id = str(use, "request_id"), *cid = str(use, "consumption_id");
  bool released = prx_release(r, request_id, cid, bg_problem_code(p));
  json_t *ev = bg_event_new(r, "bli_query.failed", "bli_query", qid, "failure");
  json_t *subj = json_object_get(use, "subject");
  json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", str(use, "subject_hmac"), "id_masked",
                                               str(subj, "national_id_masked")));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "request_id", json_string(request_id));
  json_object_set_new(d, "consumption_id", json_string(cid));
  json_object_set_new(d, "item", json_string(str(use, "item")));
  json_object_set_new(d, "querier_id", json_string(r->token.sub));
  json_object_set_new(d, "code", json_string(bg_problem_code(p)));
  json_object_set_new(d, "released", json_boolean(released));
  char *text = bg_json_dump(ev);
  const char *pf[] = {qid, bg_problem_code(p), released ? "true" : "false", str(ev, "id"), text,
                      appended ? "true" : "false"};
  /* a connection of its own (none is held across the BLI call); without one the record stays
   * pending and the interrupted-query sweep finishes it */
  struct bg_dbc *c = bg_db_acquire(prx.db, 2000);
  if (!text || !c || !bg_dbc_run(c, "q_failed", 6, pf, NULL))
    bg_log(BG_LOG_ERROR, r->request_id, "query %s failed and its record could not say so", qid);
  bg_db_release(c);
  free(text);
  json_decref(ev);
  bg_reply_problem(r, p, "%s; the use of the request was %s", detail, released ? "given back" : "not given back yet");
}

void prx_h_query_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("request_id", BG_F_UUID, true, struct query_body, request_id),
    BG_FIELD("subject_id", BG_F_UUID, false, struct query_body, subject_id),
    BG_FIELD("national_id", BG_F_NATIONAL_ID, false, struct query_body, national_id),
    BG_FIELD("item", BG_F_ENUM, true, struct query_body, item, .enumv = bg_bli_codes),
    BG_FIELD_END};
  struct query_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  if (!b.subject_id == !b.national_id) {
    bg_reply_field_error(r, BG_P_VALIDATION, b.subject_id ? "national_id" : "subject_id", "exclusive",
                         "name the subject by exactly one of subject_id and national_id");
    return;
  }
  /* 2: session live, account active, grant effective (accounts) */
  if (!prx_check_access(r, b.item))
    return;
  /* 3: one use of (request, subject, item) for this querier (workflow) */
  json_t *use = NULL;
  if (!prx_consume(r, b.request_id, b.subject_id, b.national_id, b.item, &use))
    return;
  json_t *subj = json_object_get(use, "subject"), *parties = json_object_get(use, "parties");
  char *nid = strdup(str(subj, "national_id"));
  /* the number is not kept in the reply object any longer than needed */
  json_object_del(subj, "national_id");
  char hmac_s[65] = "";
  json_t *purpose = json_object_get(use, "purpose");
  struct bg_dbc *c = NULL;
  time_t now = bg_now();
  char now_s[BG_TIME_LEN], until[BG_DATE_LEN], qid[BG_UUID_LEN];
  bg_time_fmt(now, now_s);
  retention_date(now, until);
  bg_uuid_v4(qid);
  if (!nid || !bg_id_hmac(nid, hmac_s)) {
    prx_release(r, b.request_id, str(use, "consumption_id"), "internal-error");
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    goto done;
  }
  json_object_set_new(use, "subject_hmac", json_string(hmac_s));
  /* 4: the record and its event in one transaction, then the event on the log before anything
   * is asked of BLI */
  json_t *ev = bg_event_new(r, "bli_query.executed", "bli_query", qid, "success");
  json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", hmac_s, "id_masked",
                                               str(subj, "national_id_masked")));
  json_object_set(ev, "purpose", purpose);
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "request_id", json_string(b.request_id));
  json_object_set_new(d, "consumption_id", json_string(str(use, "consumption_id")));
  json_object_set_new(d, "item", json_string(b.item));
  json_object_set_new(d, "querier_id", json_string(r->token.sub));
  json_object_set_new(d, "unit_id", json_string(str(parties, "unit_id")));
  json_object_set_new(d, "registration_no", json_string(str(use, "registration_no")));
  json_object_set_new(d, "retention_until", json_string(until));
  char *ev_text = bg_json_dump(ev);
  const char *pi[] = {qid, b.request_id, str(use, "registration_no"), str(use, "consumption_id"), r->token.sub,
                      str(parties, "querier_name"), str(parties, "unit_id"), str(parties, "requester_id"),
                      opt_str(parties, "external_application_id"), opt_str(parties, "applicant_id"),
                      str(subj, "id"), hmac_s, str(subj, "national_id_masked"), b.item, now_s, until,
                      str(ev, "id"), ev_text};
  if (!(c = bg_db_for(r, prx.db))) {
    prx_release(r, b.request_id, str(use, "consumption_id"), bg_problem_code(BG_P_DB_UNAVAILABLE));
    goto done_ev;
  }
  if (!ev_text || !bg_dbc_run(c, "q_insert", 18, pi, NULL)) {
    prx_release(r, b.request_id, str(use, "consumption_id"), bg_problem_code(BG_P_DB_UNAVAILABLE));
    bg_db_failed(r, c);
    goto done_ev;
  }
  /* No connection is held across the audit append and the BLI call (seconds, with retries):
   * with the pool's 16 taken by slow BLI calls, every view, list and new query would wait. */
  bg_db_release(c);
  c = NULL;
  if (!prx_audit_append_event(r, ev_text)) {
    fail_query(r, qid, use, false, BG_P_AUDIT_UNAVAILABLE, "the audit log did not acknowledge the query's event");
    goto done_ev;
  }
  /* 5: BLI */
  json_t *record = NULL;
  enum prx_up_result up = prx_upstream_query(r->request_id, nid, b.item, &record);
  OPENSSL_cleanse(nid, strlen(nid));
  static const struct {
    enum bg_problem p;
    const char *detail;
  } failures[] = {
    [PRX_UP_FAILED] = {BG_P_UPSTREAM_FAILED, "BLI failed to answer"},
    [PRX_UP_TIMEOUT] = {BG_P_UPSTREAM_TIMEOUT, "BLI did not answer in time"},
    [PRX_UP_BAD] = {BG_P_UPSTREAM_BAD_RESPONSE, "BLI's answer could not be used"},
    [PRX_UP_OPEN] = {BG_P_UPSTREAM_CIRCUIT_OPEN, "BLI has been failing; calls are paused"},
    [PRX_UP_BUSY] = {BG_P_UPSTREAM_BUSY, "too many BLI calls are in progress"},
  };
  if (up != PRX_UP_OK && up != PRX_UP_NO_RECORD) {
    fail_query(r, qid, use, true, failures[up].p, failures[up].detail);
    goto done_ev;
  }
  /* 6: the result sealed, the record completed */
  json_t *doc = json_pack("{s:b, s:o, s:s, s:{s:s, s:s}}", "found", up == PRX_UP_OK, "record",
                          record ? record : json_null(), "subject_name", str(subj, "name"), "subject", "id_hmac",
                          hmac_s, "id_masked", str(subj, "national_id_masked"));
  size_t slen = 0;
  const char *kid = NULL;
  unsigned char *sealed = prx_seal(qid, b.item, doc, &slen, &kid);
  char *sealed_hex = sealed ? hex_bytea(sealed, slen) : NULL;
  char got_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), got_s);
  const char *ps[] = {qid, up == PRX_UP_OK ? "true" : "false", got_s, kid, sealed_hex};
  c = sealed_hex ? bg_db_acquire(prx.db, 2000) : NULL;
  PGresult *res = c ? bg_dbc_exec(c, "q_succeeded", 5, ps, NULL) : NULL;
  free(sealed);
  free(sealed_hex);
  if (!res || PQntuples(res) != 1) {
    /* BLI answered but the result could not be kept: nothing is released that is not on record */
    PQclear(res);
    json_decref(doc);
    bg_db_release(c);
    c = NULL;
    fail_query(r, qid, use, true, BG_P_DB_UNAVAILABLE, "the result could not be stored");
    goto done_ev;
  }
  json_t *out = prx_query_json(res, 0, doc);
  PQclear(res);
  json_decref(doc);
  json_object_set_new(out, "watermark", prx_watermark(r->token.sub, str(parties, "querier_name"),
                                                       str(parties, "unit_id"), got_s));
  json_object_set(out, "purpose", purpose);
  char loc[128];
  bg_fmt(loc, sizeof loc, "/v1/bli/queries/%s", qid);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, out);
done_ev:
  free(ev_text);
  json_decref(ev);
done:
  if (nid) {
    OPENSSL_cleanse(nid, strlen(nid));
    free(nid);
  }
  if (c)
    bg_db_release(c);
  json_decref(use);
}

static json_t *meta_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return prx_query_json(res, row, NULL);
}

void prx_h_query_list(struct bg_request *r)
{
  struct bg_page_req pg;
  const char *request_id = bg_req_query(r, "request_id");
  if (!bg_req_page(r, &pg))
    return;
  if (request_id && !bg_uuid_valid(request_id)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "request_id", "format", "is not a UUID");
    return;
  }
  if (!prx_check_session(r, NULL, 0))
    return;
  /* rule 4: the supervisor oversees the unit's queries (today's unit and roles, from accounts) */
  const char *unit = bg_req_has_role(r, "supervisor") && r->token.unit[0] ? r->token.unit : NULL;
  const char *p[] = {r->token.sub, pg.after_ts, pg.after_id, pg.lim, unit, request_id};
  PGresult *res = request_id ? bg_db_fetch(r, prx.db, "q_list_request", 6, p) : bg_db_fetch(r, prx.db, "q_list", 5, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, Q_CREATED, Q_ID, meta_row, NULL));
  PQclear(res);
}

/* Who the caller is to a record: the querier, the requester or the applicant; NULL for anyone
 * else (who learns nothing, not even that the record exists). */
const char *prx_reader_role(const struct bg_request *r, PGresult *res, int row)
{
  if (!strcmp(PQgetvalue(res, row, Q_QUERIER), r->token.sub))
    return "querier";
  /* a Form 3 applicant is also the linked request's requester: they read as the applicant */
  if (!PQgetisnull(res, row, Q_APPLICANT) && !strcmp(PQgetvalue(res, row, Q_APPLICANT), r->token.sub))
    return "applicant";
  if (!strcmp(PQgetvalue(res, row, Q_REQUESTER), r->token.sub))
    return "requester";
  return NULL;
}

bool prx_result_gone(PGresult *res, int row)
{
  char today[BG_DATE_LEN];
  bg_date_fmt(bg_now(), today);
  const char *state = PQgetvalue(res, row, Q_STATE);
  return !strcmp(state, "destroyed") ||
         (!strcmp(state, "succeeded") && strcmp(PQgetvalue(res, row, Q_RETENTION), today) < 0);
}

void prx_h_query_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  char reader[256];
  if (!prx_check_session(r, reader, sizeof reader))
    return;
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, prx.db, "q_get", 1, p);
  if (!res)
    return;
  const char *role = PQntuples(res) == 1 ? prx_reader_role(r, res, 0) : NULL;
  if (!role) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such query");
  } else if (prx_result_gone(res, 0)) {
    bg_reply_problem(r, BG_P_RESULT_DESTROYED, "the result's retention ended on %s", PQgetvalue(res, 0, Q_RETENTION));
  } else {
    json_t *events = json_array();
    int held;
    json_t *out = prx_read_result(r, res, 0, role, NULL, events);
    if (!out) {
      bg_reply_problem(r, BG_P_INTERNAL, "the stored result cannot be opened");
    } else if (json_array_size(events) && !prx_audit_append(r, events)) {
      json_decref(out);
      bg_reply_problem(r, BG_P_AUDIT_UNAVAILABLE, "the audit log did not acknowledge this reading");
    } else if (json_array_size(events) && (held = prx_reads_still_held(r, events)) != 1) {
      json_decref(out);
      if (held == 0)
        bg_reply_problem(r, BG_P_RESULT_DESTROYED, "the result was destroyed (its retention ended) while it was read");
    } else {
      char at[BG_TIME_LEN];
      if (json_object_get(out, "data"))
        json_object_set_new(out, "watermark", prx_watermark(r->token.sub, reader[0] ? reader : NULL,
                                                            r->token.unit[0] ? r->token.unit : NULL,
                                                            bg_time_fmt(bg_now(), at)));
      bg_reply_json(r, 200, out);
    }
    json_decref(events);
  }
  PQclear(res);
}
