/* Query registrations (rule 5, Form 2): registered with the legal basis and the relevance
 * before any query, approved by the supervisor of the querier's unit (the Director when a
 * supervisor is the querier or the requester), usable for a limited window, each (subject,
 * item) a limited number of times. A colleague of the same unit may be the requester. */
#include "wf.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_me(struct bg_request *r, PGresult *res, int col)
{
  return !PQgetisnull(res, 0, col) && !strcmp(PQgetvalue(res, 0, col), r->token.sub);
}

/* An integration client's unit (docs/integration.md): its scope approvals:decide:<unit> (or,
 * to read only, approvals:read:<unit>). False for staff tokens. */
static bool client_unit(struct bg_request *r, bool decide, char unit[64])
{
  return r->token.is_client &&
         (bg_token_scope_arg(&r->token, "approvals:decide:", unit, 64) ||
          (!decide && bg_token_scope_arg(&r->token, "approvals:read:", unit, 64))) &&
         bg_uuid_valid(unit);
}

/* Object-level access: the people on the form, the supervisor and the business reviewers of
 * its unit, whoever decided it, and the overseers; an integration client of the unit. Other
 * units see nothing. */
static bool may_read(struct bg_request *r, PGresult *res)
{
  char unit[64];
  if (r->token.is_client)
    return client_unit(r, false, unit) && !strcmp(PQgetvalue(res, 0, QR_UNIT), unit);
  return wf_is_overseer(r) || is_me(r, res, QR_QUERIER) || is_me(r, res, QR_REQUESTER) ||
         is_me(r, res, QR_SUBMITTED_BY) || is_me(r, res, QR_DECIDED_BY) ||
         ((bg_req_has_role(r, "supervisor") || bg_req_has_role(r, "business_reviewer")) &&
          !strcmp(PQgetvalue(res, 0, QR_UNIT), r->token.unit));
}

/* Would the caller decide this request (by the claims in the token)? */
static bool decides(struct bg_request *r, PGresult *res)
{
  if (is_me(r, res, QR_QUERIER) || is_me(r, res, QR_REQUESTER))
    return false;
  if (!strcmp(PQgetvalue(res, 0, QR_DECIDER_ROLE), "director"))
    return bg_req_has_role(r, "director");
  return bg_req_has_role(r, "supervisor") && !strcmp(PQgetvalue(res, 0, QR_UNIT), r->token.unit);
}

/* Full national IDs: the querier, the requester, and the deciding supervisor (before the
 * decision: whoever decides it). Everyone else sees the mask. */
static bool full_ids(struct bg_request *r, PGresult *res)
{
  return is_me(r, res, QR_QUERIER) || is_me(r, res, QR_REQUESTER) || is_me(r, res, QR_DECIDED_BY) ||
         (!strcmp(PQgetvalue(res, 0, QR_STATE), "pending") && decides(r, res));
}

/* The request (row 0 of res) with its subjects, read on c. Showing full IDs is an audit event
 * on c (in the caller's transaction when there is one). NULL after replying. */
static json_t *request_with_subjects(struct bg_request *r, struct bg_dbc *c, PGresult *res, bool full)
{
  const char *p[] = {PQgetvalue(res, 0, QR_ID)};
  PGresult *subj = bg_dbc_exec(c, "qs_list", 1, p, NULL);
  json_t *list = subj ? wf_subjects_json(subj, full, true) : NULL;
  if (!list) {
    if (subj)
      bg_reply_problem(r, BG_P_INTERNAL, "a subject's ID could not be read");
    else
      bg_db_failed(r, c);
    PQclear(subj);
    return NULL;
  }
  if (full && !wf_record_disclosure(r, c, "query_request", p[0], subj)) {
    json_decref(list);
    PQclear(subj);
    bg_db_failed(r, c);
    return NULL;
  }
  PQclear(subj);
  json_t *o = wf_request_json(res, 0);
  json_object_set_new(o, "subjects", list);
  return o;
}

/* ---- submission ---- */

struct qr_body {
  const char *querier_id, *requester_id, *legal_basis_id, *article, *relevance, *case_reference;
  long max_uses;
  json_t *subjects;
};

void wf_h_requests_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("querier_id", BG_F_UUID, false, struct qr_body, querier_id),
    BG_FIELD("requester_id", BG_F_UUID, false, struct qr_body, requester_id),
    BG_FIELD("legal_basis_id", BG_F_UUID, false, struct qr_body, legal_basis_id),
    BG_FIELD("article", BG_F_STRING, false, struct qr_body, article, .max = 100),
    BG_FIELD("relevance", BG_F_STRING, false, struct qr_body, relevance, .max = 2000),
    BG_FIELD("case_reference", BG_F_STRING, true, struct qr_body, case_reference, .min = 1, .max = 100),
    BG_FIELD("max_uses", BG_F_INT, false, struct qr_body, max_uses, .imin = 1, .imax = 3),
    BG_FIELD("subjects", BG_F_ARRAY, true, struct qr_body, subjects, .min = 1, .max = 50),
    BG_FIELD_END};
  struct qr_body b = {.max_uses = 1};
  json_t *items = NULL, *querier = NULL, *requester = NULL, *sealed = NULL, *out = NULL;
  struct bg_dbc *c = NULL;
  PGresult *res = NULL;
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)) || !wf_check_legal_statement(r, b.legal_basis_id, b.article, b.relevance) ||
      !wf_check_case_reference(r, b.case_reference) || !(items = wf_parse_subjects(r, b.subjects)))
    return;
  const char *querier_id = b.querier_id ? b.querier_id : r->token.sub;
  const char *requester_id = b.requester_id ? b.requester_id : r->token.sub;
  if (strcmp(r->token.sub, querier_id) != 0 && strcmp(r->token.sub, requester_id) != 0) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "register a request as its querier or as its requester");
    goto done;
  }
  long st = wf_account_get(r, querier_id, &querier);
  if (st != 200 && st != 404) {
    wf_reply_accounts_down(r, st);
    goto done;
  }
  if (st == 404 || !wf_is_active(querier) || !wf_has_role(querier, "querier")) {
    bg_reply_field_error(r, BG_P_QUERIER_INVALID, "querier_id", "invalid", "not an active account with the querier role");
    goto done;
  }
  if (!strcmp(requester_id, querier_id)) {
    requester = json_incref(querier);
  } else {
    st = wf_account_get(r, requester_id, &requester);
    if (st != 200 && st != 404) {
      wf_reply_accounts_down(r, st);
      goto done;
    }
    if (st == 404 || !wf_is_active(requester)) {
      bg_reply_field_error(r, BG_P_REQUESTER_INVALID, "requester_id", "invalid", "not an active account");
      goto done;
    }
    if (strcmp(wf_str(requester, "unit_id"), wf_str(querier, "unit_id")) != 0) {
      bg_reply_field_error(r, BG_P_REQUESTER_OTHER_UNIT, "requester_id", "other-unit",
                           "a querier queries for colleagues of their own unit only (rule 5)");
      goto done;
    }
  }
  if (!wf_check_coverage(r, b.legal_basis_id, items) || !wf_check_grants(r, querier_id, items))
    goto done;
  if (!(sealed = wf_seal_subjects(b.subjects))) {
    bg_reply_problem(r, BG_P_INTERNAL, "the subjects could not be stored");
    goto done;
  }
  if (!(c = bg_db_for(r, wf.db)))
    goto done;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN], max[24];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  snprintf(max, sizeof max, "%ld", b.max_uses);
  struct wf_new_request q = {
    .id = id, .unit_id = wf_str(querier, "unit_id"), .querier_id = querier_id, .querier_name = wf_str(querier, "name"),
    .requester_id = requester_id, .requester_name = wf_str(requester, "name"),
    .requester_unit_id = wf_str(requester, "unit_id"), .submitted_by = r->token.sub,
    .legal_basis_id = b.legal_basis_id, .article = b.article, .relevance = b.relevance,
    .case_reference = b.case_reference, .decider_role = wf_decider_role(querier, requester),
    .external_application_id = NULL, .now = now_s, .max_uses = (int)b.max_uses,
    .subject_count = (int)json_array_size(sealed)};
  if (!bg_dbc_begin(c) || !wf_insert_request_row(c, &q))
    goto failed;
  size_t i;
  json_t *s;
  json_array_foreach(sealed, i, s)
  {
    char sid[BG_UUID_LEN], seq[24];
    bg_uuid_v4(sid);
    snprintf(seq, sizeof seq, "%zu", i + 1);
    char *its = bg_json_dump(json_object_get(s, "items"));
    const char *ps[] = {sid, id, seq, wf_str(s, "name"), wf_str(s, "id_hmac"), wf_str(s, "id_masked"),
                        wf_str(s, "id_enc"), its};
    bool ok = its && bg_dbc_run(c, "qs_insert", 8, ps, NULL);
    free(its);
    if (!ok)
      goto failed;
  }
  const char *pu[] = {id, max}, *pg[] = {id, now_s};
  if (!bg_dbc_run(c, "qu_insert", 2, pu, NULL) || !(res = bg_dbc_exec(c, "qr_get", 2, pg, NULL)) ||
      PQntuples(res) != 1)
    goto failed;
  out = wf_request_json(res, 0);
  json_t *ev = bg_event_new(r, "query_request.submitted", "query_request", id, "success");
  json_object_set_new(ev, "subjects", wf_event_subjects(sealed));
  json_object_set_new(ev, "purpose", json_pack("{s:s, s:O, s:O, s:O, s:O}", "form", "F2", "registration_no",
                                               json_object_get(out, "registration_no"), "legal_basis",
                                               json_object_get(out, "legal_basis"), "article",
                                               json_object_get(out, "article"), "case_reference",
                                               json_object_get(out, "case_reference")));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "querier_id", json_string(querier_id));
  json_object_set_new(d, "requester_id", json_string(requester_id));
  json_object_set_new(d, "unit_id", json_string(q.unit_id));
  json_object_set(d, "items", items);
  json_object_set_new(d, "subject_count", json_integer(q.subject_count));
  json_object_set_new(d, "max_uses", json_integer(b.max_uses));
  json_object_set_new(d, "decider_role", json_string(q.decider_role));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto failed;
  /* the reply shows the subjects masked: the caller just sent the full numbers, and an
   * Idempotency-Key replay keeps this body in the database */
  json_t *subjects = json_array();
  json_array_foreach(sealed, i, s)
    json_array_append_new(subjects, json_pack("{s:i, s:O, s:O, s:O}", "seq", (int)i + 1, "name",
                                              json_object_get(s, "name"), "national_id_masked",
                                              json_object_get(s, "id_masked"), "items", json_object_get(s, "items")));
  json_object_set_new(out, "subjects", subjects);
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/query-requests/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, out);
  out = NULL;
  goto done;
failed:
  bg_db_failed(r, c);
done:
  json_decref(out);
  PQclear(res);
  bg_db_release(c);
  json_decref(items);
  json_decref(querier);
  json_decref(requester);
  json_decref(sealed);
}

/* ---- reads ---- */

struct list_ctx {
  struct bg_request *r;
};

static json_t *list_row(PGresult *res, int i, void *arg)
{
  (void)arg;
  return wf_request_json(res, i);
}

static const char *const states[] = {"pending", "approved", "rejected", "cancelled", "expired", NULL};

void wf_h_requests_list(struct bg_request *r)
{
  struct bg_page_req pg;
  char now_s[BG_TIME_LEN];
  const char *unit, *querier, *requester, *from, *to, *state = bg_req_query(r, "state");
  if (!bg_req_page(r, &pg) || !wf_uuid_query(r, "unit_id", &unit) ||
      !wf_uuid_query(r, "querier_id", &querier) || !wf_uuid_query(r, "requester_id", &requester) ||
      !wf_date_filters(r, &from, &to))
    return;
  bool state_ok = !state;
  for (const char *const *s = states; state && *s; s++)
    state_ok |= !strcmp(*s, state);
  if (!state_ok) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "is not a request state");
    return;
  }
  char client_of[64] = "";
  if (r->token.is_client && !client_unit(r, false, client_of)) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "the client's scope names no unit");
    return;
  }
  bool all = !r->token.is_client && wf_is_overseer(r);
  bool unit_scope = bg_req_has_role(r, "supervisor") || bg_req_has_role(r, "business_reviewer");
  bg_time_fmt(bg_now(), now_s);
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  /* an integration client sees its unit's requests and is nobody on them */
  const char *p[] = {all ? "true" : "false", client_of[0] ? "00000000-0000-0000-0000-000000000000" : r->token.sub,
                     client_of[0] ? client_of : unit_scope && r->token.unit[0] ? r->token.unit : NULL,
                     state, unit, querier, requester, from, to, pg.after_ts, pg.after_id, pg.lim, now_s};
  PGresult *res = bg_dbc_exec(c, "qr_list", 13, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, pg.limit, QR_CREATED, QR_ID, list_row, NULL));
  PQclear(res);
  bg_db_release(c);
}

void wf_h_requests_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  PGresult *res = bg_dbc_exec(c, "qr_get", 2, p, NULL);
  json_t *o;
  if (!res)
    bg_db_failed(r, c);
  else if (PQntuples(res) == 0 || !may_read(r, res))
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such query request");
  else if ((o = request_with_subjects(r, c, res, full_ids(r, res))))
    bg_reply_json(r, 200, o);
  PQclear(res);
  bg_db_release(c);
}

/* ---- decision ---- */

struct decision_body {
  const char *decision, *reason, *on_behalf_of;
  long valid_days;
};

/* Moves a linked Form 3 application along with its request (same transaction). */
static bool follow_application(struct bg_dbc *c, const char *request_id, const char *state, const char *reason,
                               const char *now_s, struct bg_request *r)
{
  const char *p[] = {request_id};
  PGresult *app = bg_dbc_exec(c, "ea_by_request", 1, p, NULL);
  if (!app)
    return false;
  bool ok = true;
  if (PQntuples(app) == 1) {
    const char *ps[] = {PQgetvalue(app, 0, 0), state, reason, now_s};
    json_t *ev = bg_event_new(r, "external_application.state_changed", "external_application",
                              PQgetvalue(app, 0, 0), "success");
    json_object_set_new(json_object_get(ev, "details"), "state", json_string(state));
    json_object_set_new(json_object_get(ev, "details"), "close_reason", reason ? json_string(reason) : json_null());
    json_object_set_new(json_object_get(ev, "details"), "query_request_id", json_string(request_id));
    ok = bg_dbc_run(c, "ea_set_state", 4, ps, NULL) && bg_outbox_add(c, ev);
  }
  PQclear(app);
  return ok;
}

void wf_h_requests_decide(struct bg_request *r)
{
  static const char *const decisions[] = {"approve", "reject", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("decision", BG_F_ENUM, true, struct decision_body, decision, .enumv = decisions),
    BG_FIELD("reason", BG_F_STRING, false, struct decision_body, reason, .min = 1, .max = 1000),
    BG_FIELD("valid_days", BG_F_INT, false, struct decision_body, valid_days, .imin = 1, .imax = 30),
    BG_FIELD("on_behalf_of", BG_F_UUID, false, struct decision_body, on_behalf_of),
    BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct decision_body b = {.valid_days = 0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  bool approve = !strcmp(b.decision, "approve");
  if (!approve && !b.reason) {
    bg_reply_field_error(r, BG_P_VALIDATION, "reason", "required", "a rejection states its reason");
    return;
  }
  if (!approve && b.valid_days) {
    bg_reply_field_error(r, BG_P_VALIDATION, "valid_days", "unexpected", "only an approval sets the window");
    return;
  }
  /* An integration client (the city's document system) records the decision a named person
   * took there: it must be that unit's client and name the decider; staff decide as
   * themselves. The same rules then apply to the decider as to a signed-in one. */
  char client_of[64] = "";
  if (r->token.is_client && !client_unit(r, true, client_of)) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "deciding needs the scope approvals:decide:<unit>");
    return;
  }
  if (!b.on_behalf_of != !client_of[0]) {
    bg_reply_field_error(r, BG_P_VALIDATION, "on_behalf_of", client_of[0] ? "required" : "unexpected",
                         client_of[0] ? "name the person who decided in your system"
                                      : "staff decide as themselves; only an integration client names the decider");
    return;
  }
  const char *decider = client_of[0] ? b.on_behalf_of : r->token.sub;
  struct bg_dbc *c = NULL;
  PGresult *res = NULL;
  json_t *me = NULL, *out = NULL;
  char now_s[BG_TIME_LEN], until[BG_TIME_LEN];
  time_t now = bg_now();
  bg_time_fmt(now, now_s);
  const char *p[] = {id, now_s};
  if (!(c = bg_db_for(r, wf.db)))
    return;
  if (!(res = bg_dbc_exec(c, "qr_get", 2, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(res) == 0 || (client_of[0] && strcmp(PQgetvalue(res, 0, QR_UNIT), client_of) != 0)) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such query request");
    goto done;
  }
  /* nobody approves a request they asked for or will query, whatever their role */
  if (!strcmp(PQgetvalue(res, 0, QR_QUERIER), decider) || !strcmp(PQgetvalue(res, 0, QR_REQUESTER), decider)) {
    bg_reply_problem(r, BG_P_SELF_APPROVAL, "the %s decides a request of its querier or requester",
                     !strcmp(PQgetvalue(res, 0, QR_DECIDER_ROLE), "director") ? "Director" : "unit's supervisor");
    goto done;
  }
  /* the decider's current roles and unit, not the token's */
  bg_db_release(c);
  c = NULL;
  if (!(me = wf_account_active(r, decider)))
    goto done;
  bool director = !strcmp(PQgetvalue(res, 0, QR_DECIDER_ROLE), "director");
  bool ok = director ? wf_has_role(me, "director")
                     : wf_has_role(me, "supervisor") && !strcmp(wf_str(me, "unit_id"), PQgetvalue(res, 0, QR_UNIT));
  if (!ok) {
    bg_reply_problem(r, BG_P_NOT_REQUEST_DECIDER, "this request is decided by %s",
                     director ? "the Director" : "the supervisor of the querier's unit");
    goto done;
  }
  /* no data for one who has left since asking (Form 2's requester, Form 3's applicant): checked
   * as at submission, a rejection still goes through */
  if (approve && !wf_check_requester_active(r, PQgetvalue(res, 0, QR_REQUESTER), "requester"))
    goto done;
  /* nor for a querier who is no longer one of the unit's (left, the role gone, moved): nobody
   * could use the registration (the proxy refuses all three) */
  if (approve && !wf_check_querier_of_unit(r, PQgetvalue(res, 0, QR_QUERIER), PQgetvalue(res, 0, QR_UNIT)))
    goto done;
  PQclear(res);
  res = NULL;
  if (!(c = bg_db_for(r, wf.db)))
    goto done;
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "qr_lock", 2, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  if (strcmp(PQgetvalue(res, 0, QR_STATE), "pending") != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_REQUEST_NOT_PENDING, "the request is %s", PQgetvalue(res, 0, QR_STATE));
    goto done;
  }
  long days = b.valid_days ? b.valid_days : wf.window_days;
  bg_time_fmt(now + (time_t)days * 86400, until);
  const char *pd[] = {id, approve ? "approved" : "rejected", b.decision, decider, wf_str(me, "name"), now_s,
                      b.reason, approve ? until : NULL};
  PGresult *upd = bg_dbc_exec(c, "qr_decide", 8, pd, NULL);
  bool updated = upd && PQntuples(upd) == 1;
  PQclear(upd);
  if (!updated)
    goto failed;
  if (!PQgetisnull(res, 0, QR_EXTERNAL) &&
      !follow_application(c, id, approve ? "approved" : "closed", approve ? NULL : "request_rejected", now_s, r))
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "qr_get", 2, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  json_t *ev = bg_event_new(r, "query_request.decided", "query_request", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "decision", json_string(b.decision));
  json_object_set_new(d, "registration_no", json_string(PQgetvalue(res, 0, QR_NO)));
  json_object_set_new(d, "decider_role", json_string(PQgetvalue(res, 0, QR_DECIDER_ROLE)));
  json_object_set_new(d, "valid_until", wf_col(res, 0, QR_VALID_UNTIL));
  /* both identities: the client that recorded it (the event's actor) and who decided */
  if (client_of[0])
    json_object_set_new(d, "on_behalf_of", json_pack("{s:s, s:s}", "account_id", decider, "name",
                                                      wf_str(me, "name")));
  /* the deciding person read the subjects in full before deciding; an integration client, which
   * only relays a decision taken in its own system, is shown them masked, as on its GET */
  if (!bg_outbox_add(c, ev) || !(out = request_with_subjects(r, c, res, !client_of[0])))
    goto failed_quiet;
  if (!bg_dbc_commit(c))
    goto failed;
  bg_reply_json(r, 200, out);
  out = NULL;
  goto done;
failed_quiet:
  if (r->replied) {
    if (c && c->in_tx)
      bg_dbc_rollback(c);
    goto done;
  }
failed:
  bg_db_failed(r, c);
done:
  json_decref(out);
  json_decref(me);
  PQclear(res);
  bg_db_release(c);
}

/* ---- cancel ---- */

struct cancel_body {
  const char *reason;
};

void wf_h_requests_cancel(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reason", BG_F_STRING, false, struct cancel_body, reason, .min = 1, .max = 1000), BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct cancel_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  PGresult *res = NULL, *used = NULL, *upd = NULL;
  json_t *out = NULL;
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "qr_lock", 2, p, NULL)))
    goto failed;
  if (PQntuples(res) == 0 || !may_read(r, res)) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such query request");
    goto done;
  }
  if (!is_me(r, res, QR_QUERIER) && !is_me(r, res, QR_REQUESTER)) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_FORBIDDEN, "the querier or the requester cancels a request");
    goto done;
  }
  char state[16];
  snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, QR_STATE));
  if (strcmp(state, "pending") != 0 && strcmp(state, "approved") != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_REQUEST_CLOSED, "the request is %s", state);
    goto done;
  }
  /* consumes hold the request row shared while they take a use: with it locked here, the
   * count below is final */
  const char *pi[] = {id};
  if (!(used = bg_dbc_exec(c, "qr_used", 1, pi, NULL)))
    goto failed;
  if (strcmp(PQgetvalue(used, 0, 0), "0") != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_REQUEST_IN_USE, "%s use(s) taken", PQgetvalue(used, 0, 0));
    goto done;
  }
  const char *pc[] = {id, r->token.sub, now_s, b.reason};
  if (!(upd = bg_dbc_exec(c, "qr_cancel", 4, pc, NULL)) || PQntuples(upd) != 1)
    goto failed;
  if (!PQgetisnull(res, 0, QR_EXTERNAL) && !follow_application(c, id, "closed", "request_cancelled", now_s, r))
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "qr_get", 2, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  json_t *ev = bg_event_new(r, "query_request.cancelled", "query_request", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "registration_no", json_string(PQgetvalue(res, 0, QR_NO)));
  json_object_set_new(json_object_get(ev, "details"), "previous_state", json_string(state));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto failed;
  out = wf_request_json(res, 0);
  bg_reply_json(r, 200, out);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  PQclear(used);
  PQclear(upd);
  bg_db_release(c);
}
