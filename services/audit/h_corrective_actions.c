/* Corrective actions (rule 8): a breach found in an inspection obliges the querier to correct
 * it at once and to submit a review report within ten days. The finding can suspend the
 * querier's grants at once (accounts: POST /internal/accounts/{id}/grants/suspend with this
 * service's client token, scope grants:suspend); the querier reports; the inspection's
 * auditors close. Open actions past their due date are overdue: listed here and counted on
 * /metrics (bligate_corrective_actions_overdue). */
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include "ov.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *aud_ca_json(PGresult *res, int row)
{
  time_t now = bg_now(), due = 0, rep = 0;
  bg_time_parse(PQgetvalue(res, row, OV_CA_DUE), &due);
  bool open = !strcmp(PQgetvalue(res, row, OV_CA_STATE), "open");
  json_t *report = json_null(), *closure = json_null();
  if (!PQgetisnull(res, row, OV_CA_REPORTED_AT)) {
    bg_time_parse(PQgetvalue(res, row, OV_CA_REPORTED_AT), &rep);
    report = json_pack("{s:s, s:s, s:s, s:b}", "text", PQgetvalue(res, row, OV_CA_REPORT), "reported_by",
                       PQgetvalue(res, row, OV_CA_REPORTED_BY), "reported_at", PQgetvalue(res, row, OV_CA_REPORTED_AT),
                       "late", rep > due);
  }
  if (!PQgetisnull(res, row, OV_CA_CLOSED_AT))
    closure = json_pack("{s:o, s:s, s:s}", "note", aud_ov_col(res, row, OV_CA_CLOSE_NOTE), "closed_by",
                        PQgetvalue(res, row, OV_CA_CLOSED_BY), "closed_at", PQgetvalue(res, row, OV_CA_CLOSED_AT));
  return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:o, s:o}, s:o, s:o}", "id",
                   PQgetvalue(res, row, OV_CA_ID), "inspection_id", PQgetvalue(res, row, OV_CA_INSPECTION),
                   "inspection_no", PQgetvalue(res, row, OV_CA_INSPECTION_NO), "case_no",
                   aud_ov_col_int(res, row, OV_CA_CASE), "account_id", PQgetvalue(res, row, OV_CA_ACCOUNT), "unit_id",
                   PQgetvalue(res, row, OV_CA_UNIT), "finding_note", aud_ov_col(res, row, OV_CA_NOTE), "state",
                   PQgetvalue(res, row, OV_CA_STATE), "opened_by", PQgetvalue(res, row, OV_CA_OPENED_BY), "opened_at",
                   PQgetvalue(res, row, OV_CA_OPENED), "due_at", PQgetvalue(res, row, OV_CA_DUE), "overdue",
                   open && now > due, "grant_suspension", "state", PQgetvalue(res, row, OV_CA_SUSPENSION),
                   "suspended_at", aud_ov_col(res, row, OV_CA_SUSPENDED_AT), "items",
                   aud_ov_col_json(res, row, OV_CA_SUSPENDED_ITEMS), "report", report, "closure", closure);
}

static bool auditor_of(PGresult *res, int row, const char *who)
{
  json_t *ids = aud_ov_col_json(res, row, OV_CA_AUDITORS);
  size_t i;
  json_t *v;
  bool yes = false;
  json_array_foreach(ids, i, v) yes = yes || !strcmp(json_string_value(v), who);
  json_decref(ids);
  return yes;
}

static bool can_see(const struct bg_request *r, PGresult *res)
{
  return aud_is_overseer(r) || !strcmp(r->token.sub, PQgetvalue(res, 0, OV_CA_ACCOUNT)) ||
         auditor_of(res, 0, r->token.sub) ||
         (bg_req_has_role(r, "supervisor") && !strcmp(r->token.unit, PQgetvalue(res, 0, OV_CA_UNIT)));
}

const char *aud_corrective_apply_suspension(struct bg_request *r, struct bg_dbc *c, const char *ca_id)
{
  const char *p[] = {ca_id};
  PGresult *res = bg_dbc_exec(c, "ov_ca_get", 1, p, NULL);
  if (!res || PQntuples(res) != 1) {
    PQclear(res);
    return "failed";
  }
  char url[512], reason[160];
  snprintf(url, sizeof url, "%s/internal/accounts/%s/grants/suspend", aud.accounts_url,
           PQgetvalue(res, 0, OV_CA_ACCOUNT));
  snprintf(reason, sizeof reason, "corrective action for %s case %s (rule 8)", PQgetvalue(res, 0, OV_CA_INSPECTION_NO),
           PQgetvalue(res, 0, OV_CA_CASE));
  json_t *body = json_pack("{s:s, s:s}", "reason", reason, "corrective_action_id", ca_id), *out = NULL;
  long status = bg_svc_call(aud.svc, "POST", url, body, r->request_id, &out);
  json_decref(body);
  bool done = status == 200 && json_is_object(out);
  if (!done)
    bg_log(BG_LOG_WARN, r->request_id, "accounts answered %ld to the suspension for corrective action %s", status,
           ca_id);
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  char *items = done ? bg_json_dump(json_object_get(out, "items")) : NULL;
  const char *pu[] = {ca_id, done ? "done" : "failed", done ? now_s : NULL, items};
  json_t *ev = bg_event_new(r, done ? "audit.corrective_action.grants_suspended" : "audit.corrective_action.suspension_failed",
                            "corrective_action", ca_id, done ? "success" : "failure");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "account_id", json_string(PQgetvalue(res, 0, OV_CA_ACCOUNT)));
  if (done) {
    json_object_set_new(d, "count", json_integer(json_integer_value(json_object_get(out, "count"))));
    json_object_set(d, "items", json_object_get(out, "items") ? json_object_get(out, "items") : json_null());
  } else {
    json_object_set_new(d, "status", json_integer(status));
  }
  bool ok = bg_dbc_begin(c) && bg_dbc_run(c, "ov_ca_suspension", 4, pu, NULL) &&
            aud_append_own_tx(c, ev, r->request_id) && bg_dbc_commit(c);
  if (!ok) {
    if (c->in_tx)
      bg_dbc_rollback(c);
    bg_log(BG_LOG_ERROR, r->request_id, "cannot record the suspension outcome of corrective action %s", ca_id);
  }
  free(items);
  json_decref(out);
  PQclear(res);
  return ok && done ? "done" : "failed";
}

static json_t *list_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return aud_ca_json(res, row);
}

void aud_h_corrective_list(struct bg_request *r)
{
  static const char *const states[] = {"open", "reported", "closed", NULL};
  struct bg_page_req pg;
  if (!bg_req_page(r, &pg))
    return;
  const char *state = bg_req_query(r, "state"), *overdue = bg_req_query(r, "overdue");
  bool known = !state;
  for (int i = 0; state && states[i]; i++)
    known = known || !strcmp(state, states[i]);
  if (!known) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "one of open, reported, closed");
    return;
  }
  if (overdue && strcmp(overdue, "true") != 0 && strcmp(overdue, "false") != 0) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "overdue", "type", "true or false");
    return;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *unit = bg_req_has_role(r, "supervisor") && r->token.unit[0] ? r->token.unit : NULL;
  const char *p[] = {aud_is_overseer(r) ? "true" : "false",
                     r->token.sub,
                     unit,
                     state,
                     overdue && !strcmp(overdue, "true") ? "true" : "false",
                     now_s,
                     pg.after_ts,
                     pg.after_id,
                     pg.lim};
  PGresult *res = bg_db_fetch(r, aud.db, "ov_ca_list", 9, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, OV_CA_OPENED, OV_CA_ID, list_row, NULL));
  PQclear(res);
}

/* The action of path parameter 0 if the caller may see it (locked in a new transaction when
 * lock); NULL after replying. */
static PGresult *fetch(struct bg_request *r, struct bg_dbc *c, bool lock)
{
  return aud_ov_fetch(r, c, "ov_ca_get", "ov_ca_lock", lock, can_see, "corrective action");
}

static void reply_action(struct bg_request *r, struct bg_dbc *c, const char *id)
{
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "ov_ca_get", 1, p, NULL);
  if (!res || PQntuples(res) != 1)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, aud_ca_json(res, 0));
  PQclear(res);
}

void aud_h_corrective_get(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  PGresult *res = fetch(r, c, false);
  if (res)
    bg_reply_json(r, 200, aud_ca_json(res, 0));
  PQclear(res);
  bg_db_release(c);
}

/* report (the querier) and close (an auditor): one state change with its event */
static void step(struct bg_request *r, bool report, const char *text)
{
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *res = NULL;
  if (!c)
    return;
  if (!(res = fetch(r, c, true)))
    goto done;
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, OV_CA_ID));
  bool allowed = report ? !strcmp(r->token.sub, PQgetvalue(res, 0, OV_CA_ACCOUNT)) : auditor_of(res, 0, r->token.sub);
  if (!allowed) {
    bg_dbc_rollback(c);
    if (report)
      bg_reply_problem(r, BG_P_FORBIDDEN, "the querier found in breach submits the review report");
    else
      bg_reply_problem(r, BG_P_NOT_AUDITOR, "the inspection's auditors close its corrective actions");
    goto done;
  }
  const char *want = report ? "open" : "reported";
  if (strcmp(PQgetvalue(res, 0, OV_CA_STATE), want) != 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_CORRECTIVE_STATE, "the corrective action is %s; %s", PQgetvalue(res, 0, OV_CA_STATE),
                     report ? "the report is in already" : "it is closed after the querier's report");
    goto done;
  }
  time_t now = bg_now(), due = 0;
  bg_time_parse(PQgetvalue(res, 0, OV_CA_DUE), &due);
  char now_s[BG_TIME_LEN];
  bg_time_fmt(now, now_s);
  const char *p[] = {id, text, r->token.sub, now_s};
  if (!bg_dbc_run(c, report ? "ov_ca_report" : "ov_ca_close", 4, p, NULL))
    goto failed;
  json_t *ev = bg_event_new(r, report ? "audit.corrective_action.reported" : "audit.corrective_action.closed",
                            "corrective_action", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "inspection_id", json_string(PQgetvalue(res, 0, OV_CA_INSPECTION)));
  json_object_set_new(d, "case_no", json_integer(aud_ov_col_int(res, 0, OV_CA_CASE)));
  if (report)
    json_object_set_new(d, "late", json_boolean(now > due));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  reply_action(r, c, id);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  bg_db_release(c);
}

struct report_body {
  const char *report;
};

void aud_h_corrective_report(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("report", BG_F_STRING, true, struct report_body, report, .min = 1, .max = 10000), BG_FIELD_END};
  struct report_body b = {0};
  if (bg_json_parse(r, r->json, spec, &b))
    step(r, true, b.report);
}

struct close_body {
  const char *note;
};

void aud_h_corrective_close(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("note", BG_F_STRING, false, struct close_body, note, .min = 1, .max = 4000), BG_FIELD_END};
  struct close_body b = {0};
  if (bg_json_parse(r, r->json, spec, &b))
    step(r, false, b.note);
}

/* Suspends the querier's grants for this action now (a finding that did not ask for it, or a
 * suspension accounts refused or did not answer). The inspection's auditors and the permission
 * administrator may. */
void aud_h_corrective_suspend(struct bg_request *r)
{
  static const struct bg_field spec[] = {BG_FIELD_END};
  if (!bg_json_parse(r, r->json, spec, &(char){0}))
    return;
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *res = NULL;
  if (!c)
    return;
  if (!(res = fetch(r, c, false)))
    goto done;
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, OV_CA_ID));
  if (!auditor_of(res, 0, r->token.sub) && !bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_NOT_AUDITOR, "the inspection's auditors or the permission administrator suspend grants");
    goto done;
  }
  if (!strcmp(PQgetvalue(res, 0, OV_CA_STATE), "closed")) {
    bg_reply_problem(r, BG_P_CORRECTIVE_STATE, "the corrective action is closed");
    goto done;
  }
  if (!strcmp(aud_corrective_apply_suspension(r, c, id), "done"))
    reply_action(r, c, id);
  else
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts did not suspend the grants; try again");
done:
  PQclear(res);
  bg_db_release(c);
}

void aud_corrective_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  (void)ctx;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {now_s};
  struct bg_dbc *c = bg_db_acquire(aud.db, 1000);
  PGresult *res = c ? bg_dbc_exec(c, "ov_ca_overdue", 1, p, NULL) : NULL;
  if (res && PQntuples(res) == 1)
    bg_metrics_append(buf, len, cap,
                      "# HELP bligate_corrective_actions_overdue Corrective actions whose review report is past its "
                      "ten days.\n# TYPE bligate_corrective_actions_overdue gauge\n"
                      "bligate_corrective_actions_overdue %s\n",
                      PQgetvalue(res, 0, 0));
  PQclear(res);
  bg_db_release(c);
}
