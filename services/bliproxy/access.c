/* What the proxy asks before and around a query, over the other services' internal APIs with
 * its own client token (DESIGN.md §4 steps 2-4). Each check refuses with its own code and
 * nothing is asked of BLI before all have passed. */
#include "prx.h"
#include "bligate/clock.h"
#include "bligate/log.h"
#include "bligate/session.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

bool prx_check_access(struct bg_request *r, const char *item)
{
  char url[512];
  json_t *s = NULL;
  /* sid and item are checked (a UUID from a verified token, a catalogue code): nothing to escape */
  long st = r->token.sid[0] && bg_fmt(url, sizeof url, "%s/internal/sessions/%s/items/%s", prx.accounts_url,
                                      r->token.sid, item)
              ? bg_svc_call(prx.svc, "GET", url, NULL, r->request_id, &s)
              : 404;
  bool ok = bg_session_live(r, st, s);
  if (ok) {
    /* today's roles and unit, not the token's: the role is checked below, the unit goes to
     * workflow and names the querier's unit in the query's event */
    bg_session_take_authz(r, s);
    const char *g = json_string_value(json_object_get(json_object_get(s, "grant"), "status"));
    if (!r->token.unit[0]) {
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts did not say which unit the querier is in");
      ok = false;
    } else if (!bg_token_has_role(&r->token, "querier")) {
      /* a grant outlasting the role (an approval racing its removal) gives no query */
      bg_reply_problem(r, BG_P_NOT_A_QUERIER, NULL);
      ok = false;
    } else if (!g) {
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts did not say whether the grant is effective");
      ok = false;
    } else if (!strcmp(g, "suspended")) {
      bg_reply_problem(r, BG_P_GRANT_SUSPENDED,
                       "your grant for %s is suspended (a change of duties or of roles, or a corrective action)", item);
      ok = false;
    } else if (!strcmp(g, "pending")) {
      bg_reply_problem(r, BG_P_GRANT_NOT_EFFECTIVE, "your grant for %s is not effective yet", item);
      ok = false;
    } else if (strcmp(g, "active") != 0) {
      bg_reply_problem(r, BG_P_GRANT_MISSING, "you hold no grant for %s", item);
      ok = false;
    }
  }
  json_decref(s);
  return ok;
}

bool prx_check_session(struct bg_request *r, char *name, size_t name_len)
{
  json_t *s = NULL;
  bool ok = bg_session_check(r, prx.svc, prx.accounts_url, &s);
  const char *n = json_string_value(json_object_get(s, "name"));
  if (name_len)
    snprintf(name, name_len, "%s", ok && n ? n : "");
  json_decref(s);
  return ok;
}

/* workflow refused the use: its refusals of the caller's request are passed on (the codes are
 * in the same registry); anything else — including a refusal of the proxy's own token — means
 * workflow could not answer the question */
static void refuse_as(struct bg_request *r, long st, const json_t *reply, const char *what)
{
  static const enum bg_problem passed_on[] = {BG_P_NOT_FOUND, BG_P_REQUEST_NOT_APPROVED, BG_P_REQUEST_EXPIRED,
                                              BG_P_USES_EXHAUSTED, BG_P_NOT_REQUEST_QUERIER, BG_P_REQUEST_OTHER_UNIT,
                                              BG_P_SUBJECT_NOT_ON_REQUEST, BG_P_ITEM_NOT_ON_REQUEST};
  enum bg_problem p;
  const char *code = json_string_value(json_object_get(reply, "code"));
  if (bg_problem_from_code(code, &p) && bg_problem_status(p) == (unsigned)st)
    for (size_t i = 0; i < sizeof passed_on / sizeof passed_on[0]; i++)
      if (passed_on[i] == p) {
        const char *detail = json_string_value(json_object_get(reply, "detail"));
        if (p == BG_P_NOT_FOUND)
          bg_reply_problem(r, p, "no such query request");
        else if (detail)
          bg_reply_problem(r, p, "%s", detail);
        else
          bg_reply_problem(r, p, NULL);
        return;
      }
  bg_log(BG_LOG_WARN, r->request_id, "workflow answered %ld (%s) to %s", st, code ? code : "-", what);
  bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "cannot %s with workflow", what);
}

/* Lists a use as owed back to workflow (releases_owed): the retention job's sweep gives it back
 * until workflow says so, or drops it once workflow has not heard of it for an hour (a consume
 * that never took it). */
static void owe_release(struct bg_request *r, const char *request_id, const char *cid, const char *reason)
{
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {cid, request_id, reason, now_s};
  struct bg_dbc *c = bg_db_acquire(prx.db, 2000);
  if (!c || !bg_dbc_run(c, "ro_insert", 4, p, NULL))
    bg_log(BG_LOG_ERROR, r ? r->request_id : NULL, "use %s of request %s may be taken and could not be listed as owed back",
           cid, request_id);
  bg_db_release(c);
}

bool prx_consume(struct bg_request *r, const char *request_id, const char *subject_id, const char *national_id,
                 const char *item, json_t **use)
{
  char url[512];
  *use = NULL;
  if (!bg_fmt(url, sizeof url, "%s/internal/query-requests/%s/consume", prx.workflow_url, request_id)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return false;
  }
  /* The proxy names the consumption: if workflow's answer does not come (a timeout, a crash on
   * its side), the use it may have taken all the same is owed back under that id. */
  char cid[BG_UUID_LEN];
  bg_uuid_v4(cid);
  json_t *body = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s}", "querier_id", r->token.sub, "querier_unit_id",
                           r->token.unit, "subject_id", subject_id, "national_id", national_id, "item", item,
                           "consumption_id", cid);
  json_t *reply = NULL;
  long st = bg_svc_call(prx.svc, "POST", url, body, r->request_id, &reply);
  json_decref(body);
  /* the reply carries the national ID the upstream call needs: it is checked, used and wiped */
  const json_t *subj = json_object_get(reply, "subject");
  if (st == 200 && json_is_object(reply) && json_is_string(json_object_get(reply, "consumption_id")) &&
      json_is_string(json_object_get(subj, "national_id")) && json_is_object(json_object_get(reply, "parties"))) {
    *use = reply;
    return true;
  }
  /* an answer that never came (or came malformed) may hide a use taken all the same */
  if (st == 0 || st >= 500 || st == 200)
    owe_release(r, request_id, cid, "consume-unanswered");
  refuse_as(r, st, reply, "take a use of the request");
  json_decref(reply);
  return false;
}

bool prx_release(struct bg_request *r, const char *request_id, const char *consumption_id, const char *reason)
{
  if (prx_release_status(r, request_id, consumption_id, reason) == 200)
    return true;
  owe_release(r, request_id, consumption_id, reason);
  return false;
}

long prx_release_status(struct bg_request *r, const char *request_id, const char *consumption_id, const char *reason)
{
  char url[512];
  if (!bg_fmt(url, sizeof url, "%s/internal/query-requests/%s/release", prx.workflow_url, request_id))
    return 0;
  json_t *body = json_pack("{s:s, s:s}", "consumption_id", consumption_id, "reason", reason);
  json_t *reply = NULL;
  long st = bg_svc_call(prx.svc, "POST", url, body, r ? r->request_id : NULL, &reply);
  json_decref(body);
  json_decref(reply);
  if (st != 200)
    bg_log(BG_LOG_ERROR, r ? r->request_id : NULL, "workflow answered %ld to the release of use %s", st,
           consumption_id);
  return st;
}

/* events_text: a JSON array of events, already serialised */
static bool audit_append_text(struct bg_request *r, const char *events_text)
{
  char url[512];
  if (!bg_fmt(url, sizeof url, "%s/internal/events", prx.audit_url))
    return false;
  size_t n = strlen(events_text);
  char *body = malloc(n + 12);
  if (!body)
    return false;
  memcpy(body, "{\"events\":", 10);
  memcpy(body + 10, events_text, n);
  memcpy(body + 10 + n, "}", 2);
  json_t *reply = NULL;
  long st = bg_svc_call_text(prx.svc, "POST", url, body, r ? r->request_id : NULL, &reply);
  free(body);
  json_decref(reply);
  if (st != 200)
    bg_log(BG_LOG_ERROR, r ? r->request_id : NULL, "audit answered %ld to an append; no data is released", st);
  return st == 200;
}

bool prx_audit_append(struct bg_request *r, json_t *events)
{
  char *text = json_dumps(events, JSON_COMPACT);
  bool ok = text && audit_append_text(r, text);
  free(text);
  return ok;
}

bool prx_audit_append_event(struct bg_request *r, const char *event_text)
{
  size_t n = strlen(event_text);
  char *one = malloc(n + 3);
  if (!one)
    return false;
  one[0] = '[';
  memcpy(one + 1, event_text, n);
  memcpy(one + 1 + n, "]", 2);
  bool ok = audit_append_text(r, one);
  free(one);
  return ok;
}
