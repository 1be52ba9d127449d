/* Grants: which BLI items an account may query, and since when (rule 2). Suspended at once by
 * the permission administrator (rule 8) or by a change of duties; the administrator role
 * changes hands explicitly (rule 7). */
#include "acct.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *col(PGresult *res, int row, int c)
{
  return PQgetisnull(res, row, c) ? json_null() : json_string(PQgetvalue(res, row, c));
}

static json_t *grant_json(PGresult *res, int i)
{
  const struct bg_bli_item *it = bg_bli_item(PQgetvalue(res, i, 1));
  return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "id", PQgetvalue(res, i, 0),
                   "item", PQgetvalue(res, i, 1), "item_name_zh", it ? it->name_zh : NULL, "item_name_en",
                   it ? it->name_en : NULL, "status", PQgetvalue(res, i, 2), "application_id", PQgetvalue(res, i, 3),
                   "effective_date", PQgetvalue(res, i, 4), "granted_at", PQgetvalue(res, i, 5), "suspended_at",
                   col(res, i, 6), "suspension_reason", col(res, i, 7), "revoked_at", col(res, i, 8),
                   "revocation_reason", col(res, i, 9));
}

/* The grants of an account as the reply body; `history` includes revoked ones. */
static void reply_grants(struct bg_request *r, const char *account_id, bool history)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char today[BG_DATE_LEN];
  bg_date_fmt(bg_now(), today);
  const char *pa[] = {account_id};
  const char *p[] = {account_id, today};
  PGresult *acc = bg_dbc_exec(c, "account_get", 1, pa, NULL);
  PGresult *res = acc ? bg_dbc_exec(c, history ? "grant_list" : "grant_list_current", 2, p, NULL) : NULL;
  if (!acc || !res) {
    bg_db_failed(r, c);
  } else if (PQntuples(acc) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
  } else {
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(res); i++)
      json_array_append_new(items, grant_json(res, i));
    bg_reply_json(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:o}", "account_id", account_id, "account_status",
                                    PQgetvalue(acc, 0, 9), "unit_id", PQgetvalue(acc, 0, 3), "date", today, "items",
                                    items));
  }
  PQclear(acc);
  PQclear(res);
  bg_db_release(c);
}

void acct_h_grants_list(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  bool ok = !strcmp(id, r->token.sub) || bg_req_has_role(r, "permission_admin") ||
            bg_req_has_role(r, "permission_unit_head") || bg_req_has_role(r, "it_staff") ||
            bg_req_has_role(r, "ethics_officer") || bg_req_has_role(r, "director");
  if (!ok && bg_req_has_role(r, "supervisor")) {
    /* a supervisor sees the grants of their own unit's staff */
    struct bg_dbc *c = bg_db_for(r, acct.db);
    if (!c)
      return;
    const char *p[] = {id};
    PGresult *acc = bg_dbc_exec(c, "account_get", 1, p, NULL);
    ok = acc && PQntuples(acc) && !strcmp(PQgetvalue(acc, 0, 3), r->token.unit);
    PQclear(acc);
    bg_db_release(c);
  }
  if (!ok) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    return;
  }
  reply_grants(r, id, true);
}

/* For the proxy and workflow: current grants with their status today. */
void acct_h_internal_grants(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  reply_grants(r, id, false);
}

/* Suspends every current grant of an account; returns the suspended items (or NULL). */
json_t *acct_suspend_grants(struct bg_dbc *c, const char *account_id, const char *reason, const char *now_s)
{
  const char *p[] = {account_id, reason, now_s};
  PGresult *res = bg_dbc_exec(c, "grants_suspend_all", 3, p, NULL);
  if (!res)
    return NULL;
  json_t *items = json_array();
  for (int i = 0; i < PQntuples(res); i++)
    json_array_append_new(items, json_string(PQgetvalue(res, i, 0)));
  PQclear(res);
  return items;
}

struct reason_body {
  const char *reason;
};

/* Suspends every current grant of the account in one transaction with its grants.suspended
 * event (the account row locked against a concurrent approval or change of unit). The event is
 * written when something was suspended, or always when always_event. Returns the suspended
 * items, or NULL after replying (404, or the database's problem). */
static json_t *suspend_with_event(struct bg_request *r, const char *id, const char *reason,
                                  const char *corrective_action_id, bool always_event)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return NULL;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id};
  PGresult *acc = NULL;
  json_t *items = NULL;
  if (!bg_dbc_begin(c) || !(acc = bg_dbc_exec(c, "account_lock", 1, p, NULL)))
    goto failed;
  if (PQntuples(acc) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    goto done;
  }
  if (!(items = acct_suspend_grants(c, id, reason, now_s)))
    goto failed;
  if (always_event || json_array_size(items) > 0) {
    json_t *ev = bg_event_new(r, "grants.suspended", "account", id, "success");
    json_t *d = json_object_get(ev, "details");
    json_object_set_new(d, "reason", json_string(reason));
    if (corrective_action_id)
      json_object_set_new(d, "corrective_action_id", json_string(corrective_action_id));
    json_object_set(d, "items", items);
    if (!bg_outbox_add(c, ev))
      goto failed;
  }
  if (bg_dbc_commit(c))
    goto done;
failed:
  json_decref(items);
  items = NULL;
  bg_db_failed(r, c);
done:
  PQclear(acc);
  bg_db_release(c);
  return items;
}

void acct_h_accounts_suspend(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reason", BG_F_STRING, true, struct reason_body, reason, .min = 2, .max = 1000), BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator suspends grants");
    return;
  }
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct reason_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  json_t *items = suspend_with_event(r, id, b.reason, NULL, true);
  if (items)
    reply_grants(r, id, false);
  json_decref(items);
}

struct corrective_body {
  const char *reason, *corrective_action_id;
};

/* POST /internal/accounts/{id}/grants/suspend (scope grants:suspend): the audit service applies
 * a corrective action (rule 8) by suspending every current grant of the account at once, with
 * the same mechanics as a change of duties; only an approved permission application naming an
 * item brings it back (grant_add). Idempotent: a second call finds nothing left to suspend,
 * answers 200 with count 0 and records no second event (nothing changed). */
void acct_h_internal_grants_suspend(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("reason", BG_F_STRING, true, struct corrective_body, reason, .min = 2, .max = 1000),
    BG_FIELD("corrective_action_id", BG_F_UUID, true, struct corrective_body, corrective_action_id), BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct corrective_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  json_t *items = suspend_with_event(r, id, b.reason, b.corrective_action_id, false);
  if (items)
    bg_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:O}", "account_id", id, "corrective_action_id",
                                    b.corrective_action_id, "count", (json_int_t)json_array_size(items), "items",
                                    items));
  json_decref(items);
}

struct handover_body {
  const char *to_account_id, *reason;
};

/* Rule 7: exactly one permission administrator. The role moves in one transaction; the unique
 * index on accounts refuses any state with two. */
void acct_h_admin_handover(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("to_account_id", BG_F_UUID, true, struct handover_body, to_account_id),
    BG_FIELD("reason", BG_F_STRING, true, struct handover_body, reason, .min = 2, .max = 1000), BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin") && !bg_req_has_role(r, "permission_unit_head")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "the administrator or the head of the Secretariat hands the role over");
    return;
  }
  struct handover_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  PGresult *cur = NULL, *add = NULL;
  const char *role = "permission_admin";
  if (!bg_dbc_begin(c) || !(cur = bg_dbc_exec(c, "admin_current", 0, NULL, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  const char *from = PQntuples(cur) ? PQgetvalue(cur, 0, 0) : NULL;
  if (from && !strcmp(from, b.to_account_id)) {
    bg_dbc_rollback(c);
    bg_reply_field_error(r, BG_P_HANDOVER_INVALID, "to_account_id", "same", "already the permission administrator");
    goto done;
  }
  const char *pr[] = {from, role, now_s};
  const char *pa[] = {b.to_account_id, role, now_s};
  if ((from && !bg_dbc_run(c, "role_remove", 3, pr, NULL)) || !(add = bg_dbc_exec(c, "role_add", 3, pa, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(add) == 0) {
    bg_dbc_rollback(c);
    bg_reply_field_error(r, BG_P_HANDOVER_INVALID, "to_account_id", "inactive", "no such active account");
    goto done;
  }
  json_t *ev = bg_event_new(r, "permission_admin.handover", "account", b.to_account_id, "success");
  json_object_set_new(json_object_get(ev, "details"), "from_account_id", from ? json_string(from) : json_null());
  json_object_set_new(json_object_get(ev, "details"), "reason", json_string(b.reason));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  bg_reply_json(r, 200, json_pack("{s:o, s:s}", "from_account_id", from ? json_string(from) : json_null(),
                                  "to_account_id", b.to_account_id));
done:
  PQclear(cur);
  PQclear(add);
  bg_db_release(c);
}
