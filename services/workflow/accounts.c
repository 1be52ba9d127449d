/* What workflow asks the accounts service, over its internal API with workflow's own client
 * token: an account's unit, roles and status, a unit's kind, and an account's grants. Every
 * authorization that decides something (who submits, who decides, who reviews) uses these
 * current facts rather than the up-to-5-minute-old claims in the caller's token. */
#include "wf.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <string.h>

/* GET <accounts>/internal/<kind>/<id><suffix> */
static long get(struct bg_request *r, const char *kind, const char *id, const char *suffix, json_t **out)
{
  char url[512];
  *out = NULL;
  /* ids are checked UUIDs: nothing to escape, nothing that could change the path */
  if (!bg_uuid_valid(id) || !bg_fmt(url, sizeof url, "%s/internal/%s/%s%s", wf.accounts_url, kind, id, suffix))
    return 404;
  long st = bg_svc_call(wf.svc, "GET", url, NULL, r->request_id, out);
  if (st != 200 && st != 404)
    bg_log(BG_LOG_WARN, r->request_id, "accounts answered %ld to GET /internal/%s/{id}%s", st, kind, suffix);
  if (st == 200 && !json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    return 0;
  }
  return st;
}

long wf_account_get(struct bg_request *r, const char *id, json_t **out)
{
  return get(r, "accounts", id, "", out);
}

long wf_unit_get(struct bg_request *r, const char *id, json_t **out)
{
  return get(r, "units", id, "", out);
}

long wf_grants_get(struct bg_request *r, const char *id, json_t **out)
{
  return get(r, "accounts", id, "/grants", out);
}

const char *wf_str(const json_t *obj, const char *key)
{
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "";
}

bool wf_has_role(const json_t *account, const char *role)
{
  return bg_json_array_has(json_object_get(account, "roles"), role);
}

bool wf_is_active(const json_t *account)
{
  return !strcmp(wf_str(account, "status"), "active");
}

void wf_reply_accounts_down(struct bg_request *r, long status)
{
  bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "the accounts service could not be asked (status %ld)", status);
}

bool wf_check_requester_active(struct bg_request *r, const char *id, const char *who)
{
  json_t *acc = NULL;
  long st = wf_account_get(r, id, &acc);
  bool ok = st == 200 && wf_is_active(acc);
  json_decref(acc);
  if (st != 200 && st != 404)
    wf_reply_accounts_down(r, st);
  else if (!ok)
    bg_reply_problem(r, BG_P_REQUESTER_INVALID, "the %s is no longer an active account", who);
  return ok;
}

bool wf_check_querier_of_unit(struct bg_request *r, const char *id, const char *unit_id)
{
  json_t *acc = NULL;
  long st = wf_account_get(r, id, &acc);
  const char *unit = st == 200 ? wf_str(acc, "unit_id") : NULL;
  bool ok = st == 200 && wf_is_active(acc) && wf_has_role(acc, "querier") && unit && !strcmp(unit, unit_id);
  json_decref(acc);
  if (st != 200 && st != 404)
    wf_reply_accounts_down(r, st);
  else if (!ok)
    bg_reply_problem(r, BG_P_QUERIER_INVALID, "the querier is no longer an active querier of the request's unit");
  return ok;
}

json_t *wf_caller(struct bg_request *r) { return wf_account_active(r, r->token.sub); }

json_t *wf_account_active(struct bg_request *r, const char *id)
{
  json_t *me = NULL;
  long st = wf_account_get(r, id, &me);
  if (st == 200 && wf_is_active(me))
    return me;
  json_decref(me);
  if (st == 200 || st == 404)
    bg_reply_problem(r, BG_P_ACCOUNT_INACTIVE, NULL);
  else
    wf_reply_accounts_down(r, st);
  return NULL;
}
