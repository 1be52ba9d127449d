/* External applications (rule 5, Form 3): an agency or district office applies to the
 * bureau's responsible business unit, stating the legal basis and the relevance; its own
 * supervisor endorses it; a business reviewer of that unit accepts it (naming a querier, which
 * makes a linked query request for the unit's supervisor to approve) or rejects it with an
 * opinion. The applicant then sees which subjects and items have been queried. */
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

/* Applicants see their own unit's applications; reviewers (and the supervisor) of the target
 * unit those addressed to it; the assigned querier theirs; the overseers all. */
static bool may_read(struct bg_request *r, PGresult *res)
{
  return wf_is_overseer(r) || !strcmp(PQgetvalue(res, 0, EA_APPLICANT_UNIT), r->token.unit) ||
         ((bg_req_has_role(r, "business_reviewer") || bg_req_has_role(r, "supervisor")) &&
          !strcmp(PQgetvalue(res, 0, EA_TARGET), r->token.unit)) ||
         is_me(r, res, EA_QUERIER);
}

/* Full national IDs: the applicant who wrote them and the querier who will query them. */
static bool full_ids(struct bg_request *r, PGresult *res)
{
  return is_me(r, res, EA_APPLICANT) || is_me(r, res, EA_QUERIER);
}

static bool closed_state(const char *s)
{
  return !strcmp(s, "not_endorsed") || !strcmp(s, "rejected") || !strcmp(s, "closed");
}

/* The application (row 0) with its subjects; NULL after replying. */
static json_t *with_subjects(struct bg_request *r, struct bg_dbc *c, PGresult *res, bool full)
{
  const char *p[] = {PQgetvalue(res, 0, EA_ID)};
  PGresult *subj = bg_dbc_exec(c, "eas_list", 1, p, NULL);
  json_t *list = subj ? wf_subjects_json(subj, full, false) : NULL;
  if (!list) {
    if (subj)
      bg_reply_problem(r, BG_P_INTERNAL, "a subject's ID could not be read");
    else
      bg_db_failed(r, c);
    PQclear(subj);
    return NULL;
  }
  if (full && !wf_record_disclosure(r, c, "external_application", p[0], subj)) {
    json_decref(list);
    PQclear(subj);
    bg_db_failed(r, c);
    return NULL;
  }
  PQclear(subj);
  json_t *o = wf_application_json(res, 0);
  json_object_set_new(o, "subjects", list);
  return o;
}

/* ---- submission ---- */

struct ea_body {
  const char *target_unit_id, *applicant_title, *phone, *fax, *legal_basis_id, *article, *relevance, *case_reference;
  json_t *subjects;
};

void wf_h_apps_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("target_unit_id", BG_F_UUID, true, struct ea_body, target_unit_id),
    BG_FIELD("applicant_title", BG_F_STRING, false, struct ea_body, applicant_title, .min = 1, .max = 50),
    BG_FIELD("phone", BG_F_STRING, true, struct ea_body, phone, .min = 1, .max = 30),
    BG_FIELD("fax", BG_F_STRING, false, struct ea_body, fax, .min = 1, .max = 30),
    BG_FIELD("legal_basis_id", BG_F_UUID, false, struct ea_body, legal_basis_id),
    BG_FIELD("article", BG_F_STRING, false, struct ea_body, article, .max = 100),
    BG_FIELD("relevance", BG_F_STRING, false, struct ea_body, relevance, .max = 2000),
    BG_FIELD("case_reference", BG_F_STRING, false, struct ea_body, case_reference, .min = 1, .max = 100),
    BG_FIELD("subjects", BG_F_ARRAY, true, struct ea_body, subjects, .min = 1, .max = 100),
    BG_FIELD_END};
  if (!bg_req_has_role(r, "external_applicant")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "Form 3 is for staff of agencies and district offices (external_applicant)");
    return;
  }
  struct ea_body b = {0};
  json_t *items = NULL, *me = NULL, *unit = NULL, *sealed = NULL, *out = NULL;
  struct bg_dbc *c = NULL;
  PGresult *res = NULL;
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)) || !wf_check_legal_statement(r, b.legal_basis_id, b.article, b.relevance) ||
      !wf_check_case_reference(r, b.case_reference) || !(items = wf_parse_subjects(r, b.subjects)))
    return;
  if (!(me = wf_caller(r)))
    goto done;
  if (!wf_has_role(me, "external_applicant")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "Form 3 is for staff of agencies and district offices (external_applicant)");
    goto done;
  }
  long st = wf_unit_get(r, b.target_unit_id, &unit);
  if (st != 200 && st != 404) {
    wf_reply_accounts_down(r, st);
    goto done;
  }
  /* the bureau's business units are its sections */
  if (st == 404 || strcmp(wf_str(unit, "kind"), "section") != 0 ||
      !strcmp(b.target_unit_id, wf_str(me, "unit_id"))) {
    bg_reply_field_error(r, BG_P_TARGET_UNIT_INVALID, "target_unit_id", "invalid",
                         "name a business unit (section) of the bureau");
    goto done;
  }
  /* and the applicant's is an agency's or a district office's: a business unit's staff register
   * with Form 2 in their own unit (rule 5), whatever roles an account was given */
  json_t *own = NULL;
  long ost = wf_unit_get(r, wf_str(me, "unit_id"), &own);
  const char *kind = ost == 200 ? wf_str(own, "kind") : "";
  bool external = !strcmp(kind, "district_office") || !strcmp(kind, "agency");
  json_decref(own);
  if (ost != 200 && ost != 404) {
    wf_reply_accounts_down(r, ost);
    goto done;
  }
  if (!external) {
    bg_reply_problem(r, BG_P_UNIT_NOT_ELIGIBLE, "Form 3 is for agencies and district offices; a business unit's"
                     " staff register a query with Form 2");
    goto done;
  }
  if (!wf_check_coverage(r, b.legal_basis_id, items))
    goto done;
  if (!(sealed = wf_seal_subjects(b.subjects))) {
    bg_reply_problem(r, BG_P_INTERNAL, "the subjects could not be stored");
    goto done;
  }
  if (!(c = bg_db_for(r, wf.db)))
    goto done;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN], count[24];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  snprintf(count, sizeof count, "%zu", json_array_size(sealed));
  const char *title = b.applicant_title ? b.applicant_title : wf_str(me, "title");
  const char *pa[] = {id,           r->token.sub, wf_str(me, "name"), wf_str(me, "unit_id"), title, b.phone, b.fax,
                      b.target_unit_id, b.legal_basis_id, b.article, b.relevance, b.case_reference, count, now_s};
  if (!bg_dbc_begin(c) || !bg_dbc_run(c, "ea_insert", 14, pa, NULL))
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
    bool ok = its && bg_dbc_run(c, "eas_insert", 8, ps, NULL);
    free(its);
    if (!ok)
      goto failed;
  }
  const char *pg[] = {id, now_s};
  if (!(res = bg_dbc_exec(c, "ea_get", 2, pg, NULL)) || PQntuples(res) != 1)
    goto failed;
  out = wf_application_json(res, 0);
  json_t *ev = bg_event_new(r, "external_application.submitted", "external_application", id, "success");
  json_object_set_new(ev, "subjects", wf_event_subjects(sealed));
  json_object_set_new(ev, "purpose", json_pack("{s:s, s:O, s:O, s:O}", "form", "F3", "application_no",
                                               json_object_get(out, "application_no"), "legal_basis",
                                               json_object_get(out, "legal_basis"), "article",
                                               json_object_get(out, "article")));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "target_unit_id", json_string(b.target_unit_id));
  json_object_set_new(d, "applicant_unit_id", json_string(wf_str(me, "unit_id")));
  json_object_set(d, "items", items);
  json_object_set_new(d, "subject_count", json_integer((json_int_t)json_array_size(sealed)));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto failed;
  /* masked in the reply, as for Form 2: the caller just sent the numbers */
  json_t *subjects = json_array();
  json_array_foreach(sealed, i, s)
    json_array_append_new(subjects, json_pack("{s:i, s:O, s:O, s:O}", "seq", (int)i + 1, "name",
                                              json_object_get(s, "name"), "national_id_masked",
                                              json_object_get(s, "id_masked"), "items", json_object_get(s, "items")));
  json_object_set_new(out, "subjects", subjects);
  char loc[96];
  snprintf(loc, sizeof loc, "/v1/external-applications/%s", id);
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
  json_decref(me);
  json_decref(unit);
  json_decref(sealed);
}

/* ---- reads ---- */

static json_t *list_row(PGresult *res, int i, void *arg)
{
  (void)arg;
  return wf_application_json(res, i);
}

static const char *const states[] = {"submitted", "endorsed", "not_endorsed", "accepted", "rejected",
                                     "approved",  "closed",   NULL};

void wf_h_apps_list(struct bg_request *r)
{
  struct bg_page_req pg;
  char now_s[BG_TIME_LEN];
  const char *target, *applicant_unit, *from, *to, *state = bg_req_query(r, "state");
  if (!bg_req_page(r, &pg) ||
      !wf_uuid_query(r, "target_unit_id", &target) || !wf_uuid_query(r, "applicant_unit_id", &applicant_unit) ||
      !wf_date_filters(r, &from, &to))
    return;
  bool state_ok = !state;
  for (const char *const *s = states; state && *s; s++)
    state_ok |= !strcmp(*s, state);
  if (!state_ok) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "is not an application state");
    return;
  }
  bool reviewer = bg_req_has_role(r, "business_reviewer") || bg_req_has_role(r, "supervisor");
  bg_time_fmt(bg_now(), now_s);
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  const char *p[] = {wf_is_overseer(r) ? "true" : "false", r->token.unit[0] ? r->token.unit : NULL,
                     reviewer ? "true" : "false", r->token.sub, state, target, applicant_unit, from, to,
                     pg.after_ts, pg.after_id, now_s, pg.lim};
  PGresult *res = bg_dbc_exec(c, "ea_list", 13, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, pg.limit, EA_CREATED, EA_ID, list_row, NULL));
  PQclear(res);
  bg_db_release(c);
}

/* Reads the application visible to the caller; replies 404 and returns NULL otherwise. */
static PGresult *read_visible(struct bg_request *r, struct bg_dbc *c, const char *id, const char *now_s)
{
  const char *p[] = {id, now_s};
  PGresult *res = bg_dbc_exec(c, "ea_get", 2, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
    return NULL;
  }
  if (PQntuples(res) == 0 || !may_read(r, res)) {
    PQclear(res);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application");
    return NULL;
  }
  return res;
}

void wf_h_apps_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  PGresult *res = read_visible(r, c, id, now_s);
  json_t *o;
  if (res && (o = with_subjects(r, c, res, full_ids(r, res))))
    bg_reply_json(r, 200, o);
  PQclear(res);
  bg_db_release(c);
}

void wf_h_apps_results(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  PGresult *res = read_visible(r, c, id, now_s), *rs = NULL;
  if (!res)
    goto done;
  const char *p[] = {id, PQgetisnull(res, 0, EA_QR_ID) ? NULL : PQgetvalue(res, 0, EA_QR_ID)};
  if (!(rs = bg_dbc_exec(c, "ea_results", 2, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  json_t *subjects = json_array();
  bool complete = p[1] != NULL && PQntuples(rs) > 0;
  int done_pairs = 0, pairs = 0;
  for (int i = 0; i < PQntuples(rs); i++) {
    json_t *items = json_loads(PQgetvalue(rs, i, 3), 0, NULL);
    json_t *uses = PQgetisnull(rs, i, 4) ? NULL : json_loads(PQgetvalue(rs, i, 4), 0, NULL);
    json_t *list = json_array();
    size_t k;
    json_t *it;
    json_array_foreach(items, k, it)
    {
      json_t *u = json_object_get(uses, json_string_value(it));
      json_t *at = json_array_get(u, 1);
      bool done_ = json_integer_value(json_array_get(u, 0)) > 0 && json_is_string(at);
      pairs++;
      done_pairs += done_;
      complete &= done_;
      json_array_append_new(list, json_pack("{s:O, s:b, s:O}", "item", it, "done", done_, "done_at",
                                            done_ ? at : json_null()));
    }
    long seq = 0;
    bg_parse_long(PQgetvalue(rs, i, 0), 0, 1000, &seq);
    json_array_append_new(subjects, json_pack("{s:i, s:s, s:s, s:o}", "seq", (int)seq, "name", PQgetvalue(rs, i, 1),
                                              "national_id_masked", PQgetvalue(rs, i, 2), "items", list));
    json_decref(items);
    json_decref(uses);
  }
  json_t *app = wf_application_json(res, 0);
  /* the data itself comes from the proxy, which keeps it; until then this lists what is done */
  bg_reply_json(r, 200, json_pack("{s:s, s:O, s:O, s:O, s:b, s:i, s:i, s:o}", "application_id", id,
                                  "application_no", json_object_get(app, "application_no"), "state",
                                  json_object_get(app, "state"), "query_request", json_object_get(app, "query_request"),
                                  "complete", complete, "done", done_pairs, "total", pairs, "subjects", subjects));
  json_decref(app);
done:
  PQclear(res);
  PQclear(rs);
  bg_db_release(c);
}

/* ---- endorsement ---- */

struct endorse_body {
  const char *decision, *comment;
};

/* A decision step on an application: 404 when unknown; 403 for the applicant (own-application)
 * and anyone not entitled (not-your-decision); 409 out of turn or closed. `step_state` is the
 * state the step acts on. Returns the locked row (inside a transaction on c) or NULL after
 * replying. */
static PGresult *lock_for_step(struct bg_request *r, struct bg_dbc *c, const char *id, const char *now_s,
                               const char *step_state)
{
  const char *p[] = {id, now_s};
  PGresult *res = NULL;
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "ea_lock", 2, p, NULL)) || PQntuples(res) != 1) {
    PQclear(res);
    bg_db_failed(r, c);
    return NULL;
  }
  const char *state = PQgetvalue(res, 0, EA_STATE);
  if (strcmp(state, step_state) != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, closed_state(state) ? BG_P_APP_CLOSED : BG_P_DECISION_OUT_OF_TURN, "the application is %s",
                     state);
    PQclear(res);
    return NULL;
  }
  return res;
}

void wf_h_apps_endorse(struct bg_request *r)
{
  static const char *const decisions[] = {"endorse", "refuse", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("decision", BG_F_ENUM, true, struct endorse_body, decision, .enumv = decisions),
    BG_FIELD("comment", BG_F_STRING, false, struct endorse_body, comment, .min = 1, .max = 1000), BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct endorse_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  bool endorse = !strcmp(b.decision, "endorse");
  if (!endorse && !b.comment) {
    bg_reply_field_error(r, BG_P_VALIDATION, "comment", "required", "a refusal states its reason");
    return;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  json_t *me = NULL, *out = NULL;
  PGresult *res = NULL, *upd = NULL;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  if (!(res = bg_dbc_exec(c, "ea_get", 2, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  /* one who may not read it learns nothing, not even that it exists (as on GET) */
  if (PQntuples(res) == 0 || !may_read(r, res)) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application");
    goto done;
  }
  if (is_me(r, res, EA_APPLICANT)) {
    bg_reply_problem(r, BG_P_OWN_APPLICATION, "the supervisor of your unit endorses your application");
    goto done;
  }
  bg_db_release(c);
  c = NULL;
  if (!(me = wf_caller(r)))
    goto done;
  if (!wf_has_role(me, "supervisor") || strcmp(wf_str(me, "unit_id"), PQgetvalue(res, 0, EA_APPLICANT_UNIT)) != 0) {
    bg_reply_problem(r, BG_P_NOT_DECIDER, "the supervisor of the applicant's unit endorses it");
    goto done;
  }
  /* an endorsement vouches for the applicant's need: one who has left needs nothing (a refusal
   * still closes it) */
  if (endorse && !wf_check_requester_active(r, PQgetvalue(res, 0, EA_APPLICANT), "applicant"))
    goto done;
  PQclear(res);
  res = NULL;
  if (!(c = bg_db_for(r, wf.db)) || !(res = lock_for_step(r, c, id, now_s, "submitted")))
    goto done;
  const char *pe[] = {id, endorse ? "endorsed" : "not_endorsed", b.decision, r->token.sub, wf_str(me, "name"), now_s,
                      b.comment};
  if (!(upd = bg_dbc_exec(c, "ea_endorse", 7, pe, NULL)) || PQntuples(upd) != 1)
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "ea_get", 2, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  json_t *ev = bg_event_new(r, endorse ? "external_application.endorsed" : "external_application.not_endorsed",
                            "external_application", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "application_no", json_string(PQgetvalue(res, 0, EA_NO)));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto failed;
  out = wf_application_json(res, 0);
  bg_reply_json(r, 200, out);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  json_decref(me);
  PQclear(res);
  PQclear(upd);
  bg_db_release(c);
}

/* ---- review by the business unit ---- */

struct review_body {
  const char *decision, *querier_id, *reason, *opinion;
};

static json_t *app_items(PGresult *subj)
{
  json_t *all = json_array();
  for (int i = 0; i < PQntuples(subj); i++) {
    json_t *items = json_loads(PQgetvalue(subj, i, 6), 0, NULL);
    json_t *missing = wf_items_missing(items, all);
    json_array_extend(all, missing);
    json_decref(missing);
    json_decref(items);
  }
  return all;
}

void wf_h_apps_review(struct bg_request *r)
{
  static const char *const decisions[] = {"accept", "reject", NULL};
  /* "unclear" is a reason of its own: Form 3 is not accepted when the legal basis or the
   * relevance is stated unclearly */
  static const char *const reasons[] = {"unclear", "no_legal_basis", "not_social_welfare_business", "other", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("decision", BG_F_ENUM, true, struct review_body, decision, .enumv = decisions),
    BG_FIELD("querier_id", BG_F_UUID, false, struct review_body, querier_id),
    BG_FIELD("reason", BG_F_ENUM, false, struct review_body, reason, .enumv = reasons),
    BG_FIELD("opinion", BG_F_STRING, false, struct review_body, opinion, .min = 1, .max = 2000), BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct review_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  bool accept = !strcmp(b.decision, "accept");
  const char *field = NULL, *code = "required";
  if (accept && !b.querier_id)
    field = "querier_id";
  else if (accept && b.reason)
    field = "reason", code = "unexpected";
  else if (!accept && !b.reason)
    field = "reason";
  else if (!accept && !b.opinion)
    field = "opinion";
  else if (!accept && b.querier_id)
    field = "querier_id", code = "unexpected";
  if (field) {
    bg_reply_field_error(r, BG_P_VALIDATION, field, code,
                         accept ? "an acceptance names the querier (and no rejection reason)"
                                : "a rejection gives its reason and opinion (and no querier)");
    return;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  json_t *me = NULL, *querier = NULL, *items = NULL, *out = NULL;
  PGresult *res = NULL, *subj = NULL, *upd = NULL;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  const char *pi[] = {id};
  if (!(res = bg_dbc_exec(c, "ea_get", 2, p, NULL)) || !(subj = bg_dbc_exec(c, "eas_list", 1, pi, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(res) == 0 || !may_read(r, res)) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application");
    goto done;
  }
  if (is_me(r, res, EA_APPLICANT)) {
    bg_reply_problem(r, BG_P_OWN_APPLICATION, "a business reviewer of the target unit reviews it");
    goto done;
  }
  char target[BG_UUID_LEN];
  snprintf(target, sizeof target, "%s", PQgetvalue(res, 0, EA_TARGET));
  items = app_items(subj);
  bg_db_release(c);
  c = NULL;
  if (!(me = wf_caller(r)))
    goto done;
  if (!wf_has_role(me, "business_reviewer") || strcmp(wf_str(me, "unit_id"), target) != 0) {
    bg_reply_problem(r, BG_P_NOT_DECIDER, "a business reviewer of the target unit reviews it");
    goto done;
  }
  /* out of turn before anything about the querier (checked again under the lock) */
  const char *state = PQgetvalue(res, 0, EA_STATE);
  if (strcmp(state, "endorsed") != 0) {
    bg_reply_problem(r, closed_state(state) ? BG_P_APP_CLOSED : BG_P_DECISION_OUT_OF_TURN, "the application is %s",
                     state);
    goto done;
  }
  if (accept) {
    long st = wf_account_get(r, b.querier_id, &querier);
    if (st != 200 && st != 404) {
      wf_reply_accounts_down(r, st);
      goto done;
    }
    if (st == 404 || !wf_is_active(querier) || !wf_has_role(querier, "querier") ||
        strcmp(wf_str(querier, "unit_id"), target) != 0) {
      bg_reply_field_error(r, BG_P_QUERIER_INVALID, "querier_id", "invalid",
                           "name an active querier of the target unit");
      goto done;
    }
    if (!wf_check_grants(r, b.querier_id, items))
      goto done;
    /* the applicant becomes the linked request's requester, who must be active (as on Form 2) */
    if (!wf_check_requester_active(r, PQgetvalue(res, 0, EA_APPLICANT), "applicant"))
      goto done;
  }
  PQclear(res);
  res = NULL;
  if (!(c = bg_db_for(r, wf.db)) || !(res = lock_for_step(r, c, id, now_s, "endorsed")))
    goto done;
  char qid[BG_UUID_LEN] = "";
  json_t *ev = NULL;
  if (accept) {
    bg_uuid_v4(qid);
    /* the linked Form 2: requested by the applicant, queried by the assigned querier of the
     * target unit, approved by that unit's supervisor (never the querier: then the Director) */
    json_t *applicant = json_pack("{s:s, s:s}", "unit_id", PQgetvalue(res, 0, EA_APPLICANT_UNIT), "name",
                                  PQgetvalue(res, 0, EA_APPLICANT_NAME));
    struct wf_new_request q = {
      .id = qid, .unit_id = target, .querier_id = b.querier_id, .querier_name = wf_str(querier, "name"),
      .requester_id = PQgetvalue(res, 0, EA_APPLICANT), .requester_name = PQgetvalue(res, 0, EA_APPLICANT_NAME),
      .requester_unit_id = PQgetvalue(res, 0, EA_APPLICANT_UNIT), .submitted_by = r->token.sub,
      .legal_basis_id = PQgetvalue(res, 0, EA_LB_ID), .article = PQgetvalue(res, 0, EA_ARTICLE),
      .relevance = PQgetvalue(res, 0, EA_RELEVANCE),
      .case_reference = PQgetisnull(res, 0, EA_CASE) ? PQgetvalue(res, 0, EA_NO) : PQgetvalue(res, 0, EA_CASE),
      .decider_role = wf_decider_role(querier, applicant), .external_application_id = id, .now = now_s,
      .max_uses = 1, .subject_count = PQntuples(subj)};
    const char *pq[] = {qid, id}, *pu[] = {qid, "1"};
    bool ok = wf_insert_request_row(c, &q) && bg_dbc_run(c, "qs_copy", 2, pq, NULL) &&
              bg_dbc_run(c, "qu_insert", 2, pu, NULL);
    json_decref(applicant);
    if (!ok)
      goto failed;
    json_t *qev = bg_event_new(r, "query_request.submitted", "query_request", qid, "success");
    json_t *subjects = json_array();
    for (int i = 0; i < PQntuples(subj); i++)
      json_array_append_new(subjects, json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(subj, i, 5), "id_masked",
                                                PQgetvalue(subj, i, 3)));
    json_object_set_new(qev, "subjects", subjects);
    json_object_set_new(qev, "purpose", json_pack("{s:s, s:s, s:s, s:s}", "form", "F3", "application_no",
                                                  PQgetvalue(res, 0, EA_NO), "legal_basis_id",
                                                  PQgetvalue(res, 0, EA_LB_ID), "article",
                                                  PQgetvalue(res, 0, EA_ARTICLE)));
    json_t *d = json_object_get(qev, "details");
    json_object_set_new(d, "external_application_id", json_string(id));
    json_object_set_new(d, "querier_id", json_string(b.querier_id));
    json_object_set_new(d, "requester_id", json_string(PQgetvalue(res, 0, EA_APPLICANT)));
    json_object_set_new(d, "unit_id", json_string(target));
    json_object_set(d, "items", items);
    json_object_set_new(d, "decider_role", json_string(q.decider_role));
    if (!bg_outbox_add(c, qev))
      goto failed;
  }
  const char *pr[] = {id,        accept ? "accepted" : "rejected", b.decision, r->token.sub, wf_str(me, "name"), now_s,
                      b.reason,  b.opinion, accept ? b.querier_id : NULL, accept ? wf_str(querier, "name") : NULL,
                      accept ? qid : NULL};
  if (!(upd = bg_dbc_exec(c, "ea_review", 11, pr, NULL)) || PQntuples(upd) != 1)
    goto failed;
  PQclear(res);
  if (!(res = bg_dbc_exec(c, "ea_get", 2, p, NULL)) || PQntuples(res) != 1)
    goto failed;
  ev = bg_event_new(r, accept ? "external_application.accepted" : "external_application.rejected",
                    "external_application", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "application_no", json_string(PQgetvalue(res, 0, EA_NO)));
  if (accept) {
    json_object_set_new(d, "querier_id", json_string(b.querier_id));
    json_object_set_new(d, "query_request_id", json_string(qid));
  } else {
    json_object_set_new(d, "reason", json_string(b.reason));
  }
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto failed;
  out = wf_application_json(res, 0);
  bg_reply_json(r, 200, out);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  json_decref(me);
  json_decref(querier);
  json_decref(items);
  PQclear(res);
  PQclear(subj);
  PQclear(upd);
  bg_db_release(c);
}
