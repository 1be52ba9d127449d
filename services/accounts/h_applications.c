/* Permission applications (rule 2, Form 1): submitted by staff, decided in order by the
 * applicant's unit supervisor (the Director for a supervisor's own), the permission
 * administrator and the head of the Secretariat, whose approval sets the effective date and
 * changes the grants in the same transaction. */
#include "acct.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = {"new", "revoke", "change_items", "change_of_duties", NULL};
static const char *const states[] = {"pending_supervisor", "pending_admin", "pending_head", "returned",
                                     "approved",           "rejected",      "withdrawn",    NULL};

/* Column indexes of PACOLS */
enum { PA_ID, PA_FORM, PA_APPLICANT, PA_TYPE, PA_ITEMS, PA_OTHER, PA_REASON, PA_PDPA, PA_ENV, PA_TARGET, PA_UNIT,
       PA_UNIT_NAME, PA_TITLE, PA_NAME, PA_NID, PA_PHONE, PA_EMAIL, PA_EGOV, PA_STATE, PA_ROUND, PA_EFFECTIVE,
       PA_CREATED, PA_UPDATED, PA_CLOSED };

static json_t *col(PGresult *res, int row, int c)
{
  return PQgetisnull(res, row, c) ? json_null() : json_string(PQgetvalue(res, row, c));
}

/* An integer column (PostgreSQL's text form of a small integer; 0 if it is not one). */
static int int_col(PGresult *res, int row, int c)
{
  long v = 0;
  return bg_parse_long(PQgetvalue(res, row, c), -1000000, 1000000, &v) ? (int)v : 0;
}

static int step_of(const char *state)
{
  if (!strcmp(state, "pending_supervisor"))
    return 1;
  if (!strcmp(state, "pending_admin"))
    return 2;
  if (!strcmp(state, "pending_head"))
    return 3;
  return 0;
}

static bool is_open(const char *state) { return step_of(state) || !strcmp(state, "returned"); }

/* Whose eyes see the full national ID on the form: the applicant and the administrators. */
static bool full_id(struct bg_request *r, PGresult *res)
{
  return !strcmp(PQgetvalue(res, 0, PA_APPLICANT), r->token.sub) || bg_req_has_role(r, "permission_admin") ||
         bg_req_has_role(r, "permission_unit_head");
}

json_t *acct_application_json(PGresult *res, int row, bool show_id)
{
  char masked[11];
  bg_twid_mask(PQgetvalue(res, row, PA_NID), masked);
  json_t *items = json_loads(PQgetvalue(res, row, PA_ITEMS), 0, NULL);
  json_t *o = json_pack(
    "{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:{s:b, s:b}, s:o, s:s, s:o, s:i, s:o, s:s, s:s, s:o}", "id",
    PQgetvalue(res, row, PA_ID), "form_no", PQgetvalue(res, row, PA_FORM), "applicant_id",
    PQgetvalue(res, row, PA_APPLICANT), "type", PQgetvalue(res, row, PA_TYPE), "items", items ? items : json_array(),
    "other_text", col(res, row, PA_OTHER), "reason", PQgetvalue(res, row, PA_REASON), "acknowledgements", "pdpa_read",
    PQgetvalue(res, row, PA_PDPA)[0] == 't', "environment_ready", PQgetvalue(res, row, PA_ENV)[0] == 't',
    "target_unit_id", col(res, row, PA_TARGET), "state", PQgetvalue(res, row, PA_STATE), "effective_date",
    col(res, row, PA_EFFECTIVE), "round", int_col(res, row, PA_ROUND), "closed_at", col(res, row, PA_CLOSED),
    "created_at", PQgetvalue(res, row, PA_CREATED), "updated_at", PQgetvalue(res, row, PA_UPDATED), "applicant",
    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "unit_id", PQgetvalue(res, row, PA_UNIT), "unit_name",
              PQgetvalue(res, row, PA_UNIT_NAME), "title", PQgetvalue(res, row, PA_TITLE), "name",
              PQgetvalue(res, row, PA_NAME), "national_id_masked", masked, "phone", col(res, row, PA_PHONE), "email",
              col(res, row, PA_EMAIL), "egov_account", col(res, row, PA_EGOV)));
  int step = step_of(PQgetvalue(res, row, PA_STATE));
  json_object_set_new(o, "current_step", step ? json_integer(step) : json_null());
  if (show_id)
    json_object_set_new(json_object_get(o, "applicant"), "national_id", json_string(PQgetvalue(res, row, PA_NID)));
  return o;
}

static json_t *trail(struct bg_dbc *c, const char *id)
{
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "pa_decisions", 1, p, NULL);
  if (!res)
    return NULL;
  json_t *a = json_array();
  for (int i = 0; i < PQntuples(res); i++)
    json_array_append_new(
      a, json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "round", int_col(res, i, 0), "step",
                   int_col(res, i, 1), "decider_id", PQgetvalue(res, i, 2), "decider_name",
                   PQgetvalue(res, i, 3), "decider_title", PQgetvalue(res, i, 4), "decider_role",
                   PQgetvalue(res, i, 5), "decision", PQgetvalue(res, i, 6), "comment", col(res, i, 7),
                   "effective_date", col(res, i, 8), "decided_at", PQgetvalue(res, i, 9)));
  PQclear(res);
  return a;
}

/* May the caller read this application? The applicant, the overseers, and the supervisor of
 * the applicant's unit (and the Director, who decides supervisors' own applications). */
static bool may_read(struct bg_request *r, PGresult *res)
{
  return !strcmp(PQgetvalue(res, 0, PA_APPLICANT), r->token.sub) || bg_req_has_role(r, "permission_admin") ||
         bg_req_has_role(r, "permission_unit_head") || bg_req_has_role(r, "director") ||
         (bg_req_has_role(r, "supervisor") && !strcmp(PQgetvalue(res, 0, PA_UNIT), r->token.unit));
}

struct app_body {
  const char *type, *other_text, *reason, *target_unit_id;
  json_t *items, *ack;
};

struct ack_body {
  int pdpa, env;
};

/* Parses and checks a submission or resubmission; replies and returns false on error. */
static bool parse_app(struct bg_request *r, struct app_body *b)
{
  static const struct bg_field spec[] = {
    BG_FIELD("type", BG_F_ENUM, true, struct app_body, type, .enumv = types),
    BG_FIELD("items", BG_F_STR_ARRAY, false, struct app_body, items, .max = 9),
    BG_FIELD("other_text", BG_F_STRING, false, struct app_body, other_text, .min = 1, .max = 200),
    BG_FIELD("reason", BG_F_STRING, true, struct app_body, reason, .min = 2, .max = 1000),
    BG_FIELD("acknowledgements", BG_F_OBJECT, true, struct app_body, ack),
    BG_FIELD("new_unit_id", BG_F_UUID, false, struct app_body, target_unit_id),
    BG_FIELD_END};
  if (!bg_json_parse(r, r->json, spec, b) || !bg_req_no_twid(r))
    return false;
  struct ack_body ack;
  static const struct bg_field ack_spec[] = {
    BG_FIELD("pdpa_read", BG_F_BOOL, true, struct ack_body, pdpa),
    BG_FIELD("environment_ready", BG_F_BOOL, true, struct ack_body, env),
    BG_FIELD_END};
  json_t *errors = json_array();
  if (!bg_json_parse_into(b->ack, ack_spec, &ack, errors, "acknowledgements.")) {
    bool unknown = false;
    size_t k;
    json_t *e;
    json_array_foreach(errors, k, e) unknown |= !strcmp(json_string_value(json_object_get(e, "code")), "unknown");
    bg_reply_problem_errors(r, unknown ? BG_P_UNKNOWN_FIELD : BG_P_VALIDATION, errors,
                            "acknowledgements hold exactly pdpa_read and environment_ready");
    return false;
  }
  json_decref(errors);
  if (ack.pdpa != 1 || ack.env != 1) {
    bg_reply_field_error(r, BG_P_ACK_REQUIRED, ack.pdpa != 1 ? "acknowledgements.pdpa_read"
                                                             : "acknowledgements.environment_ready",
                         "required", "confirm you read the Personal Data Protection Act and the rules, and that "
                                     "your certificate and card reader are ready");
    return false;
  }
  size_t i;
  json_t *v;
  json_array_foreach(b->items, i, v) if (!bg_bli_item(json_string_value(v)))
  {
    char d[120];
    snprintf(d, sizeof d, "'%s' is not a BLI item code", json_string_value(v));
    bg_reply_field_error(r, BG_P_ITEM_UNKNOWN, "items", "unknown", d);
    return false;
  }
  bool needs_items = strcmp(b->type, "revoke") != 0;
  if (needs_items && json_array_size(b->items) == 0 && !b->other_text) {
    bg_reply_field_error(r, BG_P_VALIDATION, "items", "required", "name at least one item (or other_text)");
    return false;
  }
  if (b->other_text && !*b->other_text) {
    bg_reply_field_error(r, BG_P_VALIDATION, "other_text", "required", "describe the other item");
    return false;
  }
  return true;
}

/* Rule 2: the items are a querier's. Someone without the role (it was removed, and the grants
 * suspended with it) applies for none — an approval would bring them back — only gives them up
 * (revoke). The caller's roles are the database's (acct_session_hook). Replies when false. */
static bool querier_ok(struct bg_request *r, const char *type)
{
  if (!strcmp(type, "revoke") || bg_req_has_role(r, "querier"))
    return true;
  bg_reply_problem(r, BG_P_APPLICANT_NOT_QUERIER, "query permissions are for queriers: the permission administrator"
                   " gives you the querier role first");
  return false;
}

void acct_h_apps_post(struct bg_request *r)
{
  struct app_body b = {0};
  /* an "other" item without its text: the form's free-text box left empty */
  json_t *other = json_object_get(r->json, "other_text");
  if (other && json_is_string(other) && json_string_length(other) == 0) {
    bg_reply_field_error(r, BG_P_VALIDATION, "other_text", "required", "describe the other item");
    return;
  }
  if (!parse_app(r, &b))
    return;
  if (strcmp(b.type, "change_of_duties") != 0 && b.target_unit_id) {
    bg_reply_field_error(r, BG_P_VALIDATION, "new_unit_id", "unexpected", "only for change_of_duties");
    return;
  }
  if (!querier_ok(r, b.type))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  const char *target = b.target_unit_id ? b.target_unit_id : (!strcmp(b.type, "change_of_duties") ? r->token.unit : NULL);
  /* Rules 2 and 5: query permissions are for the bureau's business units (sections); agencies
   * and district offices ask a business unit for a query with Form 3. Giving items up is for
   * anyone. */
  if (strcmp(b.type, "revoke") != 0) {
    const char *pu[] = {target ? target : r->token.unit};
    PGresult *k = bg_dbc_exec(c, "unit_kind", 1, pu, NULL);
    if (!k) {
      bg_db_failed(r, c);
      bg_db_release(c);
      return;
    }
    bool unknown = PQntuples(k) == 0, eligible = !unknown && !strcmp(PQgetvalue(k, 0, 0), "section");
    PQclear(k);
    if (!eligible) {
      if (unknown && target)
        bg_reply_field_error(r, BG_P_UNIT_UNKNOWN, "new_unit_id", "unknown", "no such unit");
      else
        bg_reply_problem(r, BG_P_UNIT_NOT_ELIGIBLE, "%s is not one of the bureau's business units; agencies and"
                         " district offices ask one for a query with Form 3", target ? "the new unit" : "your unit");
      bg_db_release(c);
      return;
    }
  }
  char *items = b.items ? bg_json_dump(b.items) : strdup("[]");
  struct bg_dberr err;
  PGresult *res = NULL;
  const char *p[] = {id, r->token.sub, b.type, items, b.other_text, b.reason, "true", "true", target, now_s};
  if (!bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  if (!(res = bg_dbc_exec(c, "pa_insert", 10, p, &err))) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
      bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_APP_PENDING_EXISTS, "finish or withdraw the open one first");
    } else if (!strcmp(err.sqlstate, "23503")) {
      bg_dbc_rollback(c);
      bg_reply_field_error(r, BG_P_UNIT_UNKNOWN, "new_unit_id", "unknown", "no such unit");
    } else {
      bg_db_failed(r, c);
    }
    goto done;
  }
  json_t *app = acct_application_json(res, 0, true);
  json_t *ev = bg_event_new(r, "permission_application.submitted", "permission_application", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set(d, "form_no", json_object_get(app, "form_no"));
  json_object_set(d, "type", json_object_get(app, "type"));
  json_object_set(d, "items", json_object_get(app, "items"));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    json_decref(app);
    bg_db_failed(r, c);
    goto done;
  }
  json_object_set_new(app, "decisions", json_array());
  char loc[96];
  snprintf(loc, sizeof loc, "/v1/permission-applications/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, app);
done:
  free(items);
  PQclear(res);
  bg_db_release(c);
}

struct list_ctx {
  struct bg_request *r;
};

static json_t *app_row(PGresult *res, int row, void *arg)
{
  struct list_ctx *l = arg;
  bool show = !strcmp(PQgetvalue(res, row, PA_APPLICANT), l->r->token.sub) ||
              bg_req_has_role(l->r, "permission_admin") || bg_req_has_role(l->r, "permission_unit_head");
  return acct_application_json(res, row, show);
}

void acct_h_apps_list(struct bg_request *r)
{
  int limit;
  if (!bg_req_limit(r, &limit))
    return;
  const char *state = bg_req_query(r, "state"), *unit = bg_req_query(r, "unit_id"),
             *applicant = bg_req_query(r, "applicant_id"), *mine = bg_req_query(r, "mine");
  bool ok_state = !state;
  for (const char *const *s = states; state && *s; s++)
    ok_state |= !strcmp(*s, state);
  if (!ok_state) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "is not an application state");
    return;
  }
  if ((unit && !bg_uuid_valid(unit)) || (applicant && !bg_uuid_valid(applicant))) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, unit && !bg_uuid_valid(unit) ? "unit_id" : "applicant_id", "invalid",
                         "must be a UUID");
    return;
  }
  if (mine && strcmp(mine, "true") && strcmp(mine, "false")) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "mine", "invalid", "must be true or false");
    return;
  }
  if (mine && !strcmp(mine, "true"))
    applicant = r->token.sub;
  bool all = bg_req_has_role(r, "permission_admin") || bg_req_has_role(r, "permission_unit_head") ||
             bg_req_has_role(r, "director");
  if (!all) {
    /* a supervisor sees their unit's; anyone else only their own */
    if (bg_req_has_role(r, "supervisor") && (!applicant || strcmp(applicant, r->token.sub) != 0)) {
      if (unit && strcmp(unit, r->token.unit) != 0) {
        bg_reply_problem(r, BG_P_FORBIDDEN, "a supervisor sees their own unit's applications");
        return;
      }
      unit = r->token.unit;
    } else if (!applicant || strcmp(applicant, r->token.sub) != 0) {
      if (applicant) {
        bg_reply_problem(r, BG_P_FORBIDDEN, "you see your own applications");
        return;
      }
      applicant = r->token.sub;
    }
  }
  char ts[BG_TIME_LEN], cid[BG_UUID_LEN], lim[16];
  const char *cur = bg_req_query(r, "cursor");
  if (cur && !bg_cursor_parse(cur, ts, sizeof ts, cid, sizeof cid)) {
    bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
    return;
  }
  snprintf(lim, sizeof lim, "%d", limit + 1);
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {state, unit, applicant, cur ? ts : NULL, cur ? cid : NULL, lim};
  PGresult *res = bg_dbc_exec(c, "pa_list", 6, p, NULL);
  struct list_ctx l = {r};
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, limit, PA_CREATED, PA_ID, app_row, &l));
  PQclear(res);
  bg_db_release(c);
}

void acct_h_apps_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "pa_get", 1, p, NULL);
  json_t *t = NULL;
  if (!res) {
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0 || !may_read(r, res)) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application");
  } else if (!(t = trail(c, id))) {
    bg_db_failed(r, c);
  } else {
    json_t *app = acct_application_json(res, 0, full_id(r, res));
    json_object_set_new(app, "decisions", t);
    bg_reply_json(r, 200, app);
  }
  PQclear(res);
  bg_db_release(c);
}

/* ---- decisions ---- */

struct decision_body {
  const char *decision, *comment, *effective_date;
};

/* The role that decides `step` for this applicant, and whether the caller holds it for them. */
static const char *step_role(int step, bool applicant_is_supervisor)
{
  switch (step) {
  case 1: return applicant_is_supervisor ? "director" : "supervisor";
  case 2: return "permission_admin";
  default: return "permission_unit_head";
  }
}

static bool can_decide(struct bg_request *r, int step, bool applicant_is_supervisor, const char *app_unit)
{
  const char *role = step_role(step, applicant_is_supervisor);
  if (!bg_req_has_role(r, role))
    return false;
  /* a supervisor decides for their own unit only */
  return step != 1 || applicant_is_supervisor || !strcmp(r->token.unit, app_unit);
}

/* Makes the applicant's grants what an approved application (row 0 of app, PACOLS) says, from
 * `effective`, in the caller's transaction; the grants.changed event's details get
 * revoked_items, granted_items and effective_date. `new` adds its items (one held already keeps
 * its date); `change_items` and `revoke` also end the grants they leave out; a change of duties
 * makes the grants exactly its items, each from `effective` — the permission for the new
 * duties starts on its date, whatever was held for the old ones. */
static bool set_grants(struct bg_dbc *c, PGresult *app, const char *effective, const char *now_s, json_t *d)
{
  const char *applicant = PQgetvalue(app, 0, PA_APPLICANT), *type = PQgetvalue(app, 0, PA_TYPE);
  const char *app_id = PQgetvalue(app, 0, PA_ID);
  bool replace = strcmp(type, "new") != 0, duties = !strcmp(type, "change_of_duties");
  json_t *list = strcmp(type, "revoke") != 0 ? json_loads(PQgetvalue(app, 0, PA_ITEMS), 0, NULL) : NULL;
  if (!list)
    list = json_array();
  bool ok = true;
  if (replace) {
    char *keep = bg_json_dump(list);
    const char *pr[] = {applicant, keep, type, now_s};
    PGresult *rev = bg_dbc_exec(c, "grants_revoke_except", 4, pr, NULL);
    free(keep);
    ok = rev != NULL;
    json_t *revoked = json_array();
    for (int i = 0; rev && i < PQntuples(rev); i++)
      json_array_append_new(revoked, json_string(PQgetvalue(rev, i, 0)));
    json_object_set_new(d, "revoked_items", revoked);
    PQclear(rev);
  }
  /* items whose grant a change of unit or title suspended stay suspended: a change of duties
   * for the new unit re-confirms them (the others' application was for the old duties) */
  json_t *granted = json_array(), *kept = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v)
  {
    char gid[BG_UUID_LEN];
    bg_uuid_v4(gid);
    const char *pg[] = {gid, applicant, json_string_value(v), app_id, effective, now_s};
    PGresult *res = ok ? bg_dbc_exec(c, duties ? "grant_put" : "grant_add", 6, pg, NULL) : NULL;
    ok = res != NULL;
    bool stays_suspended = ok && !duties && PQgetvalue(res, 0, 0)[0] != 't';
    json_array_append(stays_suspended ? kept : granted, v);
    PQclear(res);
  }
  json_decref(list);
  json_object_set_new(d, "granted_items", granted);
  if (json_array_size(kept))
    json_object_set_new(d, "kept_suspended_items", kept);
  else
    json_decref(kept);
  json_object_set_new(d, "effective_date", json_string(effective));
  return ok;
}

/* Applies an approved application's items to the applicant's grants (same transaction). A
 * change of duties for a unit the applicant is not in yet (approved in advance, rule 2) changes
 * nothing now: it is applied at the move (acct_cod_carry_over). */
static bool apply_grants(struct bg_dbc *c, PGresult *app, const char *effective, json_t *ev)
{
  const char *applicant = PQgetvalue(app, 0, PA_APPLICANT), *type = PQgetvalue(app, 0, PA_TYPE);
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  json_t *d = json_object_get(ev, "details");
  if (!strcmp(type, "change_of_duties")) {
    const char *pa[] = {applicant};
    PGresult *acc = bg_dbc_exec(c, "account_get", 1, pa, NULL);
    bool moved = acc && PQntuples(acc) && !PQgetisnull(app, 0, PA_TARGET) &&
                 !strcmp(PQgetvalue(acc, 0, 3), PQgetvalue(app, 0, PA_TARGET));
    PQclear(acc);
    if (!acc)
      return false;
    if (!moved) {
      json_object_set_new(d, "carry_over_to_unit_id", json_string(PQgetvalue(app, 0, PA_TARGET)));
      json_object_set_new(d, "effective_date", json_string(effective));
      return true;
    }
    const char *pu[] = {PQgetvalue(app, 0, PA_ID), now_s};
    if (!bg_dbc_run(c, "cod_used", 2, pu, NULL))
      return false;
  }
  return set_grants(c, app, effective, now_s, d);
}

bool acct_cod_carry_over(struct bg_request *r, struct bg_dbc *c, const char *account_id, const char *unit_id,
                         const char *now_s, json_t **duties)
{
  *duties = NULL;
  const char *pc[] = {account_id, unit_id};
  PGresult *app = bg_dbc_exec(c, "cod_advance", 2, pc, NULL);
  if (!app)
    return false;
  if (PQntuples(app) == 0) {
    PQclear(app);
    return true;
  }
  const char *app_id = PQgetvalue(app, 0, PA_ID);
  const char *pu[] = {app_id, now_s};
  json_t *ev = bg_event_new(r, "grants.changed", "account", account_id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "application_id", json_string(app_id));
  json_object_set_new(d, "type", json_string("change_of_duties"));
  json_object_set_new(d, "target_unit_id", json_string(unit_id));
  bool ok = bg_dbc_run(c, "cod_used", 2, pu, NULL) && set_grants(c, app, PQgetvalue(app, 0, PA_EFFECTIVE), now_s, d);
  if (ok)
    *duties = json_pack("{s:s, s:s}", "grants", "carried_over", "application_id", app_id);
  if (!ok || !bg_outbox_add(c, ev)) {
    if (!ok)
      json_decref(ev);
    json_decref(*duties);
    *duties = NULL;
    ok = false;
  }
  PQclear(app);
  return ok;
}

void acct_h_apps_decide(struct bg_request *r)
{
  static const char *const decisions[] = {"approve", "reject", "return", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("decision", BG_F_ENUM, true, struct decision_body, decision, .enumv = decisions),
    BG_FIELD("comment", BG_F_STRING, false, struct decision_body, comment, .min = 1, .max = 1000),
    BG_FIELD("effective_date", BG_F_DATE, false, struct decision_body, effective_date),
    BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct decision_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  if (strcmp(b.decision, "approve") != 0 && !b.comment) {
    bg_reply_field_error(r, BG_P_VALIDATION, "comment", "required",
                         !strcmp(b.decision, "reject") ? "a rejection states its reason" : "say what to correct");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  PGresult *app = NULL, *acc = NULL, *upd = NULL;
  struct bg_dberr err;
  const char *p[] = {id};
  char now_s[BG_TIME_LEN], today[BG_DATE_LEN];
  time_t now = bg_now();
  bg_time_fmt(now, now_s);
  bg_date_fmt(now, today);
  /* The row lock serialises deciders: a racing second decision sees the new state. */
  if (!bg_dbc_begin(c) || !(app = bg_dbc_exec(c, "pa_lock", 1, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(app) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application");
    goto done;
  }
  const char *state = PQgetvalue(app, 0, PA_STATE), *applicant = PQgetvalue(app, 0, PA_APPLICANT);
  if (!is_open(state)) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_APP_CLOSED, "the application is %s", state);
    goto done;
  }
  if (!strcmp(applicant, r->token.sub)) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_OWN_APPLICATION, NULL);
    goto done;
  }
  /* The applicant's row is locked after the application's (the order everywhere an application
   * is decided): the unit and roles checked below, and the grants an approval changes, cannot
   * change under it — a change of unit or role, or a suspension, waits for this decision and
   * then acts on its result. */
  const char *pa[] = {applicant};
  if (!(acc = bg_dbc_exec(c, "account_get_lock", 1, pa, NULL)) || PQntuples(acc) == 0) {
    bg_db_failed(r, c);
    goto done;
  }
  bool sup = acct_roles_has(PQgetvalue(acc, 0, 5), "supervisor");
  int step = step_of(state);
  const char *unit = PQgetvalue(app, 0, PA_UNIT);
  if (!step || !can_decide(r, step, sup, unit)) {
    bool other = false;
    for (int s = 1; s <= 3; s++)
      other |= s != step && can_decide(r, s, sup, unit);
    bg_dbc_rollback(c);
    if (other)
      bg_reply_problem(r, BG_P_DECISION_OUT_OF_TURN, "the application is %s", state);
    else
      bg_reply_problem(r, BG_P_NOT_DECIDER, "step %d is decided by the %s", step ? step : 1,
                       step_role(step ? step : 1, sup));
    goto done;
  }
  /* Decided for the unit it was filed in: step 1 is that unit's supervisor, and the items are
   * for the duties there. Once the applicant has moved, nobody decides it (an approval would
   * hand the new unit grants its supervisor never saw); the applicant withdraws it and applies
   * from the new unit, or resubmits it from there when it was returned. Except a change of
   * duties into the unit the applicant has now moved to: it was filed for exactly that (rule
   * 2, applied for before the change) and takes effect when approved. */
  bool into_here = !strcmp(PQgetvalue(app, 0, PA_TYPE), "change_of_duties") && !PQgetisnull(app, 0, PA_TARGET) &&
                   !strcmp(PQgetvalue(app, 0, PA_TARGET), PQgetvalue(acc, 0, 3));
  if (strcmp(PQgetvalue(acc, 0, 3), unit) != 0 && !into_here) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_APPLICANT_UNIT_CHANGED, "the applicant has moved to another unit since applying;"
                     " they withdraw it and apply from the new unit");
    goto done;
  }
  /* the role may have gone (its grants suspended with it) since the application was sent */
  if (!strcmp(b.decision, "approve") && strcmp(PQgetvalue(app, 0, PA_TYPE), "revoke") != 0 &&
      !acct_roles_has(PQgetvalue(acc, 0, 5), "querier")) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_APPLICANT_NOT_QUERIER, "the applicant no longer holds the querier role; reject the"
                     " application, or approve it once the role is back");
    goto done;
  }
  /* Three signatures are three people (Form 1): one who holds the roles of two steps (a
   * supervisor who also heads the Secretariat, say) decides only one of them. */
  const char *pw[] = {id, PQgetvalue(app, 0, PA_ROUND), r->token.sub};
  PGresult *mine = bg_dbc_exec(c, "pa_decided_by", 3, pw, NULL);
  if (!mine) {
    bg_db_failed(r, c);
    goto done;
  }
  bool decided_before = PQntuples(mine) > 0;
  PQclear(mine);
  if (decided_before) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_DECIDER, "you decided an earlier step of this application: another person decides this one");
    goto done;
  }
  const char *eff = NULL;
  if (!strcmp(b.decision, "approve") && step == 3) {
    if (!b.effective_date) {
      bg_dbc_rollback(c);
      bg_reply_field_error(r, BG_P_VALIDATION, "effective_date", "required", "the final approval sets the date");
      goto done;
    }
    if (strcmp(b.effective_date, today) < 0) {
      bg_dbc_rollback(c);
      bg_reply_field_error(r, BG_P_EFFECTIVE_DATE_PAST, "effective_date", "past", "today or later");
      goto done;
    }
    eff = b.effective_date;
  } else if (b.effective_date) {
    bg_dbc_rollback(c);
    bg_reply_field_error(r, BG_P_VALIDATION, "effective_date", "unexpected", "only the final approval sets the date");
    goto done;
  }
  char did[BG_UUID_LEN], stepstr[4];
  bg_uuid_v4(did);
  snprintf(stepstr, sizeof stepstr, "%d", step);
  const char *pd[] = {did, id, PQgetvalue(app, 0, PA_ROUND), stepstr, r->token.sub, step_role(step, sup), b.decision,
                      b.comment, eff, now_s};
  if (!bg_dbc_run(c, "pa_decision_insert", 10, pd, &err)) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
      bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_DECISION_OUT_OF_TURN, "this step was decided already");
    } else {
      bg_db_failed(r, c);
    }
    goto done;
  }
  const char *next;
  if (!strcmp(b.decision, "reject"))
    next = "rejected";
  else if (!strcmp(b.decision, "return"))
    next = "returned";
  else
    next = step == 1 ? "pending_admin" : step == 2 ? "pending_head" : "approved";
  const char *ps[] = {id, next, eff, now_s};
  if (!(upd = bg_dbc_exec(c, "pa_set_state", 4, ps, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  json_t *ev = bg_event_new(r, "permission_application.decided", "permission_application", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "step", json_integer(step));
  json_object_set_new(d, "decision", json_string(b.decision));
  json_object_set_new(d, "state", json_string(next));
  json_object_set_new(d, "applicant_id", json_string(applicant));
  if (!strcmp(next, "approved")) {
    json_t *gev = bg_event_new(r, "grants.changed", "account", applicant, "success");
    json_object_set_new(json_object_get(gev, "details"), "application_id", json_string(id));
    json_object_set_new(json_object_get(gev, "details"), "type", json_string(PQgetvalue(app, 0, PA_TYPE)));
    if (!apply_grants(c, upd, eff, gev)) {
      json_decref(gev);
      json_decref(ev);
      bg_db_failed(r, c);
      goto done;
    }
    if (!bg_outbox_add(c, gev)) {
      json_decref(ev);
      bg_db_failed(r, c);
      goto done;
    }
  }
  json_t *t = NULL;
  if (!bg_outbox_add(c, ev) || !(t = trail(c, id)) || !bg_dbc_commit(c)) {
    json_decref(t);
    bg_db_failed(r, c);
    goto done;
  }
  json_t *out = acct_application_json(upd, 0, full_id(r, upd));
  json_object_set_new(out, "decisions", t);
  bg_reply_json(r, 200, out);
done:
  PQclear(app);
  PQclear(acc);
  PQclear(upd);
  bg_db_release(c);
}

/* The applicant corrects a returned application and sends it back to step 1. */
void acct_h_apps_resubmit(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  PGresult *app = NULL, *upd = NULL;
  char *items = NULL;
  const char *p[] = {id};
  if (!bg_dbc_begin(c) || !(app = bg_dbc_exec(c, "pa_lock", 1, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(app) == 0 || strcmp(PQgetvalue(app, 0, PA_APPLICANT), r->token.sub) != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application of yours");
    goto done;
  }
  if (strcmp(PQgetvalue(app, 0, PA_STATE), "returned") != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, is_open(PQgetvalue(app, 0, PA_STATE)) ? BG_P_APP_NOT_RETURNED : BG_P_APP_CLOSED,
                     "the application is %s", PQgetvalue(app, 0, PA_STATE));
    goto done;
  }
  /* the type stays; the rest of the form is sent again */
  const char *type = PQgetvalue(app, 0, PA_TYPE);
  const char *sent = json_string_value(json_object_get(r->json, "type"));
  if (json_object_get(r->json, "type") && (!sent || strcmp(sent, type) != 0)) {
    bg_dbc_rollback(c);
    bg_reply_field_error(r, BG_P_VALIDATION, "type", "immutable", "a returned application keeps its type");
    goto done;
  }
  json_object_set_new(r->json, "type", json_string(type));
  struct app_body b = {0};
  if (!parse_app(r, &b) || !querier_ok(r, type)) {
    bg_dbc_rollback(c);
    goto done;
  }
  if (b.target_unit_id && strcmp(type, "change_of_duties") != 0) {
    bg_dbc_rollback(c);
    bg_reply_field_error(r, BG_P_VALIDATION, "new_unit_id", "unexpected", "only for change_of_duties");
    goto done;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  items = bg_json_dump(b.items ? b.items : json_array());
  const char *target = b.target_unit_id ? b.target_unit_id
                                        : (PQgetisnull(app, 0, PA_TARGET) ? NULL : PQgetvalue(app, 0, PA_TARGET));
  const char *pr[] = {id, items, b.other_text, b.reason, "true", "true", target, now_s};
  struct bg_dberr err;
  if (!(upd = bg_dbc_exec(c, "pa_resubmit", 8, pr, &err))) {
    if (!strcmp(err.sqlstate, "23503")) {
      bg_dbc_rollback(c);
      bg_reply_field_error(r, BG_P_UNIT_UNKNOWN, "new_unit_id", "unknown", "no such unit");
    } else {
      bg_db_failed(r, c);
    }
    goto done;
  }
  json_t *ev = bg_event_new(r, "permission_application.resubmitted", "permission_application", id, "success");
  json_t *t = NULL;
  if (!bg_outbox_add(c, ev) || !(t = trail(c, id)) || !bg_dbc_commit(c)) {
    json_decref(t);
    bg_db_failed(r, c);
    goto done;
  }
  json_t *out = acct_application_json(upd, 0, true);
  json_object_set_new(out, "decisions", t);
  bg_reply_json(r, 200, out);
done:
  free(items);
  PQclear(app);
  PQclear(upd);
  bg_db_release(c);
}

void acct_h_apps_withdraw(struct bg_request *r)
{
  static const struct bg_field none[] = {BG_FIELD_END};
  const char *id;
  char unused;
  if (!bg_req_uuid_param(r, 0, &id) || !bg_json_parse(r, r->json, none, &unused))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  PGresult *app = NULL, *upd = NULL;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id};
  if (!bg_dbc_begin(c) || !(app = bg_dbc_exec(c, "pa_lock", 1, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(app) == 0 || strcmp(PQgetvalue(app, 0, PA_APPLICANT), r->token.sub) != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such application of yours");
    goto done;
  }
  if (!is_open(PQgetvalue(app, 0, PA_STATE))) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_APP_CLOSED, "the application is %s", PQgetvalue(app, 0, PA_STATE));
    goto done;
  }
  const char *ps[] = {id, "withdrawn", NULL, now_s};
  json_t *t = NULL;
  if (!(upd = bg_dbc_exec(c, "pa_set_state", 4, ps, NULL)) ||
      !bg_outbox_add(c, bg_event_new(r, "permission_application.withdrawn", "permission_application", id, "success")) ||
      !(t = trail(c, id)) || !bg_dbc_commit(c)) {
    json_decref(t);
    bg_db_failed(r, c);
    goto done;
  }
  json_t *out = acct_application_json(upd, 0, true);
  json_object_set_new(out, "decisions", t);
  bg_reply_json(r, 200, out);
done:
  PQclear(app);
  PQclear(upd);
  bg_db_release(c);
}
