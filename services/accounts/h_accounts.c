/* Staff accounts (rule 2): created and changed by the permission administrator, deactivated
 * when staff leave, never deleted. Reads are checked per object. */
#include "acct.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const acct_role_names[] = {"querier",       "supervisor",     "permission_admin",
                                       "permission_unit_head", "it_staff", "ethics_officer",
                                       "director",      "business_reviewer", "external_applicant",
                                       NULL};

static bool sees_all(struct bg_request *r)
{
  return bg_req_has_role(r, "permission_admin") || bg_req_has_role(r, "permission_unit_head") ||
         bg_req_has_role(r, "it_staff");
}

/* May the caller read this account (row res/0)? Self, the overseers, and its unit's supervisor. */
static bool may_read(struct bg_request *r, PGresult *res)
{
  return strcmp(PQgetvalue(res, 0, 0), r->token.sub) == 0 || sees_all(r) ||
         (bg_req_has_role(r, "supervisor") && strcmp(PQgetvalue(res, 0, 3), r->token.unit) == 0);
}

static bool full_id_for(struct bg_request *r, const char *account_id)
{
  return bg_req_has_role(r, "permission_admin") || strcmp(account_id, r->token.sub) == 0;
}

struct list_arg {
  struct bg_request *r;
};

static json_t *account_row(PGresult *res, int row, void *arg)
{
  struct list_arg *a = arg;
  return acct_account_json(res, row, 0, full_id_for(a->r, PQgetvalue(res, row, 0)));
}

void acct_h_accounts_list(struct bg_request *r)
{
  int limit;
  if (!bg_req_limit(r, &limit))
    return;
  const char *unit = bg_req_query(r, "unit_id"), *status = bg_req_query(r, "status"), *role = bg_req_query(r, "role");
  if (!sees_all(r)) {
    if (!bg_req_has_role(r, "supervisor")) {
      bg_reply_problem(r, BG_P_FORBIDDEN, "listing accounts is for administrators and supervisors");
      return;
    }
    if (unit && strcmp(unit, r->token.unit) != 0) {
      bg_reply_problem(r, BG_P_FORBIDDEN, "a supervisor lists their own unit only");
      return;
    }
    unit = r->token.unit;
  }
  if (unit && !bg_uuid_valid(unit)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "unit_id", "invalid", "must be a UUID");
    return;
  }
  if (status && strcmp(status, "active") && strcmp(status, "inactive")) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "status", "enum", "must be active or inactive");
    return;
  }
  bool role_ok = !role;
  for (const char *const *p = acct_role_names; role && *p; p++)
    role_ok |= strcmp(*p, role) == 0;
  if (!role_ok) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "role", "enum", "is not a known role");
    return;
  }
  char ts[BG_TIME_LEN], id[BG_UUID_LEN], lim[16];
  const char *cur = bg_req_query(r, "cursor");
  if (cur && !bg_cursor_parse(cur, ts, sizeof ts, id, sizeof id)) {
    bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
    return;
  }
  snprintf(lim, sizeof lim, "%d", limit + 1);
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {unit, status, role, cur ? ts : NULL, cur ? id : NULL, lim};
  PGresult *res = bg_dbc_exec(c, "account_list", 6, p, NULL);
  struct list_arg a = {r};
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, limit, 10, 0, account_row, &a));
  PQclear(res);
  bg_db_release(c);
}

struct account_body {
  const char *name, *national_id, *unit_id, *title, *phone, *email, *egov_account;
  json_t *roles;
};

#define ACCOUNT_FIELDS(req)                                                                          \
  BG_FIELD("name", BG_F_STRING, req, struct account_body, name, .min = 1, .max = 50),                           \
  BG_FIELD("unit_id", BG_F_UUID, req, struct account_body, unit_id),                              \
  BG_FIELD("title", BG_F_STRING, req, struct account_body, title, .min = 1, .max = 50),                         \
  BG_FIELD("roles", BG_F_STR_ARRAY, false, struct account_body, roles, .min = 0, .max = 9, .enumv = acct_role_names), \
  BG_FIELD("phone", BG_F_STRING, false, struct account_body, phone, .min = 1, .max = 30),                       \
  BG_FIELD("email", BG_F_STRING, false, struct account_body, email, .min = 3, .max = 254),                      \
  BG_FIELD("egov_account", BG_F_STRING, false, struct account_body, egov_account, .min = 1, .max = 64)

static bool check_email(struct bg_request *r, const char *email)
{
  if (email && (!strchr(email, '@') || strchr(email, ' '))) {
    bg_reply_field_error(r, BG_P_VALIDATION, "email", "invalid", "must be an e-mail address");
    return false;
  }
  return true;
}

/* Maps a failed insert/update on accounts to its problem. */
static void account_write_failed(struct bg_request *r, struct bg_dbc *c, const struct bg_dberr *err)
{
  if (c->in_tx)
    bg_dbc_rollback(c);
  if (!strcmp(err->sqlstate, BG_SQL_UNIQUE) && !strcmp(err->constraint, "accounts_national_id_key"))
    bg_reply_field_error(r, BG_P_NATIONAL_ID_TAKEN, "national_id", "taken", "an account with this national ID exists");
  else if (!strcmp(err->sqlstate, BG_SQL_UNIQUE) && !strcmp(err->constraint, "accounts_one_permission_admin"))
    bg_reply_field_error(r, BG_P_ROLE_HOLDER_EXISTS, "roles", "taken",
                         "there is exactly one permission administrator (rule 7)");
  else if (!strcmp(err->sqlstate, "23503"))
    bg_reply_field_error(r, BG_P_UNIT_UNKNOWN, "unit_id", "unknown", "no such unit");
  else
    bg_db_failed(r, c);
}

void acct_h_accounts_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    ACCOUNT_FIELDS(true), BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct account_body, national_id),
    BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator creates accounts");
    return;
  }
  struct account_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r) || !check_email(r, b.email))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  char *roles = b.roles ? bg_json_dump(b.roles) : strdup("[]");
  struct bg_dberr err;
  PGresult *res = NULL;
  if (!bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  const char *p[] = {id, b.name, b.national_id, b.unit_id, b.title, roles, b.phone, b.email, b.egov_account, now_s};
  res = bg_dbc_exec(c, "account_insert", 10, p, &err);
  if (!res) {
    account_write_failed(r, c, &err);
    goto done;
  }
  json_t *acc = acct_account_json(res, 0, 0, true);
  json_t *ev = bg_event_new(r, "account.created", "account", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set(d, "name", json_object_get(acc, "name"));
  json_object_set(d, "unit_id", json_object_get(acc, "unit_id"));
  json_object_set(d, "roles", json_object_get(acc, "roles"));
  json_object_set(d, "national_id_masked", json_object_get(acc, "national_id_masked"));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    json_decref(acc);
    bg_db_failed(r, c);
    goto done;
  }
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/accounts/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, acc);
done:
  free(roles);
  PQclear(res);
  bg_db_release(c);
}

/* Loads the account named by path parameter 0 and checks the caller may read it; replies 404
 * (also for accounts the caller may not see: their existence is not disclosed). */
static PGresult *load_visible(struct bg_request *r, struct bg_dbc *c, const char **id)
{
  if (!bg_req_uuid_param(r, 0, id))
    return NULL;
  const char *p[] = {*id};
  PGresult *res = bg_dbc_exec(c, "account_get", 1, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
    return NULL;
  }
  if (PQntuples(res) == 0 || !may_read(r, res)) {
    PQclear(res);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    return NULL;
  }
  return res;
}

void acct_h_accounts_get(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *id;
  PGresult *res = load_visible(r, c, &id);
  if (res)
    bg_reply_json(r, 200, acct_account_json(res, 0, 0, full_id_for(r, id)));
  PQclear(res);
  bg_db_release(c);
}

/* Whether a roles column (a JSON array) names role. */
bool acct_roles_has(const char *roles_json, const char *role)
{
  json_t *roles = json_loads(roles_json, 0, NULL);
  bool has = bg_json_array_has(roles, role);
  json_decref(roles);
  return has;
}

void acct_h_accounts_patch(struct bg_request *r)
{
  static const struct bg_field spec[] = {ACCOUNT_FIELDS(false), BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator changes accounts");
    return;
  }
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct account_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r) || !check_email(r, b.email))
    return;
  /* Separation of duties: the administrator who approves everyone's permissions does not give
   * themselves roles, a unit or a title (a supervisor's role, say, to decide the first step of
   * a Form 1 too) and cannot drop the role, leaving the bureau without one (rule 7): their own
   * duties change after the role is handed over (POST /v1/permission-admin/handover). */
  if (!strcmp(id, r->token.sub) && (b.roles || b.unit_id || b.title)) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "the permission administrator does not change their own roles, unit or title;"
                                        " hand the role over first");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  char *roles = b.roles ? bg_json_dump(b.roles) : NULL;
  struct bg_dberr err;
  PGresult *before = NULL, *res = NULL;
  const char *pg[] = {id};
  /* locked: `before` is what this change changes (a concurrent PATCH, approval or suspension
   * waits, and then sees this one's unit, roles and grants) */
  if (!bg_dbc_begin(c) || !(before = bg_dbc_exec(c, "account_get_lock", 1, pg, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(before) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    goto done;
  }
  if (strcmp(PQgetvalue(before, 0, 9), "active") != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_CONFLICT, "the account is deactivated");
    goto done;
  }
  const char *p[] = {id, b.name, b.unit_id, b.title, roles, b.phone, b.email, b.egov_account, now_s};
  if (!(res = bg_dbc_exec(c, "account_update", 9, p, &err))) {
    account_write_failed(r, c, &err);
    goto done;
  }
  /* A change of duties (unit or title) suspends every grant until a change_of_duties
   * application is approved, unless one was approved in advance for exactly this unit
   * (rule 2: apply before the change; forgetting to is harmless): that one takes effect now,
   * with its items and from its date. */
  json_t *duties = NULL, *role_removed = NULL;
  bool moved = strcmp(PQgetvalue(before, 0, 3), PQgetvalue(res, 0, 3)) != 0;
  bool retitled = strcmp(PQgetvalue(before, 0, 4), PQgetvalue(res, 0, 4)) != 0;
  if (moved || retitled) {
    if (!acct_cod_carry_over(r, c, id, PQgetvalue(res, 0, 3), now_s, &duties)) {
      bg_db_failed(r, c);
      goto done;
    }
    if (!duties) {
      json_t *items = acct_suspend_grants(c, id, "change-of-duties", now_s);
      if (!items) {
        bg_db_failed(r, c);
        goto done;
      }
      duties = json_pack("{s:s, s:o}", "grants", "suspended", "items", items);
    }
  }
  /* No longer a querier: the grants are suspended with the role (rule 2: the items are for the
   * querier's duties), and queries are refused at once, not only on the next login; so are the
   * grants a change of duties gave an account without the role. */
  bool carried = duties && !strcmp(json_string_value(json_object_get(duties, "grants")), "carried_over");
  if ((carried || acct_roles_has(PQgetvalue(before, 0, 5), "querier")) &&
      !acct_roles_has(PQgetvalue(res, 0, 5), "querier")) {
    json_t *items = acct_suspend_grants(c, id, "querier-role-removed", now_s);
    if (!items) {
      json_decref(duties);
      bg_db_failed(r, c);
      goto done;
    }
    /* (grants a change of duties in the same PATCH suspended are already in duties' items) */
    role_removed = json_pack("{s:s, s:o}", "grants", "suspended", "items", items);
  }
  json_t *old = acct_account_json(before, 0, 0, false), *acc = acct_account_json(res, 0, 0, true);
  json_t *ev = bg_event_new(r, "account.updated", "account", id, "success");
  json_t *changes = json_object();
  static const char *const fields[] = {"name", "unit_id", "title", "roles", "phone", "email", "egov_account"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (!json_equal(json_object_get(old, fields[i]), json_object_get(acc, fields[i])))
      json_object_set_new(changes, fields[i], json_pack("{s:O, s:O}", "from", json_object_get(old, fields[i]), "to",
                                                        json_object_get(acc, fields[i])));
  json_object_set_new(json_object_get(ev, "details"), "changes", changes);
  if (duties)
    json_object_set_new(json_object_get(ev, "details"), "change_of_duties", duties);
  if (role_removed)
    json_object_set_new(json_object_get(ev, "details"), "querier_role_removed", role_removed);
  json_decref(old);
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    json_decref(acc);
    bg_db_failed(r, c);
    goto done;
  }
  bg_reply_json(r, 200, acc);
done:
  free(roles);
  PQclear(before);
  PQclear(res);
  bg_db_release(c);
}

struct deactivate_body {
  const char *reason;
};

void acct_h_accounts_deactivate(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reason", BG_F_STRING, true, struct deactivate_body, reason, .min = 1, .max = 500), BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator deactivates accounts");
    return;
  }
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct deactivate_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  if (strcmp(id, r->token.sub) == 0) {
    bg_reply_problem(r, BG_P_CONFLICT, "hand the permission administrator role over before leaving");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  PGresult *res = NULL, *ended = NULL;
  const char *p[] = {id, b.reason, now_s};
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "account_deactivate", 3, p, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(res) == 0) {
    bg_dbc_rollback(c);
    const char *pg[] = {id};
    PGresult *ex = bg_dbc_exec(c, "account_get", 1, pg, NULL);
    if (ex && PQntuples(ex))
      bg_reply_problem(r, BG_P_CONFLICT, "the account is already deactivated");
    else if (ex)
      bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    else
      bg_db_failed(r, c);
    PQclear(ex);
    goto done;
  }
  /* Leaving: every session ends, every certificate is disabled and every grant revoked, in
   * the same transaction. */
  const char *ps[] = {id, "deactivated", now_s};
  const char *pc[] = {id, now_s};
  const char *pg[] = {id, "[]", "deactivated", now_s};
  if (!(ended = bg_dbc_exec(c, "sessions_end_account", 3, ps, NULL)) ||
      !bg_dbc_run(c, "certs_disable_account", 2, pc, NULL) || !bg_dbc_run(c, "grants_revoke_except", 4, pg, NULL)) {
    bg_db_failed(r, c);
    goto done;
  }
  json_t *ev = bg_event_new(r, "account.deactivated", "account", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "reason", json_string(b.reason));
  json_object_set_new(json_object_get(ev, "details"), "sessions_ended", json_integer(PQntuples(ended)));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  bg_reply_json(r, 200, acct_account_json(res, 0, 0, true));
done:
  PQclear(res);
  PQclear(ended);
  bg_db_release(c);
}
