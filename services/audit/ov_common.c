/* What the oversight handlers share: their settings, the audit service's own events appended in
 * the same transaction as the change they record, the anchoring tree head, facts from accounts
 * and the role checks. */
#include "ov.h"
#include "bligate/config.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aud_ov_cfg aud_ov;

static void bad(const char *name, const char *why)
{
  fprintf(stderr, "configuration error: %s %s\n", name, why);
  exit(2);
}

void aud_ov_config(void)
{
  const char *days = bg_cfg_str("BLIGATE_AUDIT_OFFICE_DAYS", "1-5");
  const char *hours = bg_cfg_str("BLIGATE_AUDIT_OFFICE_HOURS", "08:00-18:00");
  struct aud_office_hours probe;
  if (!aud_office_hours_parse(days, "00:00-01:00", &probe))
    bad("BLIGATE_AUDIT_OFFICE_DAYS", "must list ISO weekdays (1 Monday .. 7 Sunday), e.g. 1-5");
  if (!aud_office_hours_parse(days, hours, &aud_ov.office))
    bad("BLIGATE_AUDIT_OFFICE_HOURS", "must be HH:MM-HH:MM (Asia/Taipei), start before end, e.g. 08:00-18:00");
  const char *from = bg_cfg_str("BLIGATE_AUDIT_REVIEWS_FROM", "");
  if (*from) {
    long y;
    char buf[5];
    time_t a, b;
    if (strlen(from) != 7 || from[4] != '-' || from[5] != 'Q' || from[6] < '1' || from[6] > '4')
      bad("BLIGATE_AUDIT_REVIEWS_FROM", "must be a quarter such as 2026-Q1");
    memcpy(buf, from, 4);
    buf[4] = '\0';
    if (!bg_parse_long(buf, 2000, 2200, &y) || !aud_quarter_bounds((int)y, from[6] - '0', &a, &b))
      bad("BLIGATE_AUDIT_REVIEWS_FROM", "must be a quarter such as 2026-Q1");
    aud_ov.review_from_year = (int)y;
    aud_ov.review_from_quarter = from[6] - '0';
  }
  aud_ov.sample_size = bg_cfg_long("BLIGATE_AUDIT_SAMPLE_SIZE", 10, 1, 200);
}

bool aud_append_own_tx(struct bg_dbc *c, json_t *ev, const char *request_id)
{
  struct aud_entry e = {.ev = ev};
  const char *why = NULL;
  bool ok = false, conflict = false;
  /* the intake refuses an ID number in any event; the service's own events are held to the
   * same rule (handlers refuse such free text first, this is the last line) */
  if (aud_has_national_id(ev))
    bg_log(BG_LOG_ERROR, request_id, "own event %s would hold a national ID number; not appended",
           json_string_value(json_object_get(ev, "type")));
  else if (!aud_entry_prepare(&e, "audit", &why))
    bg_log(BG_LOG_ERROR, request_id, "own event has no canonical form: %s", why ? why : "?");
  else
    ok = aud_append_in_tx(c, &e, 1, &conflict);
  aud_entry_clear(&e);
  json_decref(ev);
  return ok;
}

json_t *aud_anchor(struct bg_dbc *c)
{
  if (!aud_sth_sign_now(c))
    return NULL;
  PGresult *res = bg_dbc_exec(c, "aud_sth_latest", 0, NULL, NULL);
  json_t *sth = res && PQntuples(res) == 1 ? aud_sth_json(res, 0) : NULL;
  PQclear(res);
  return sth;
}

static json_t *accounts_get(struct bg_request *r, const char *kind, const char *id, long *status)
{
  char url[512];
  json_t *out = NULL;
  *status = 404;
  if (!id || !bg_uuid_valid(id))
    return NULL;
  snprintf(url, sizeof url, "%s/internal/%s/%s", aud.accounts_url, kind, id);
  *status = bg_svc_call(aud.svc, "GET", url, NULL, r->request_id, &out);
  if (*status != 200 || !json_is_object(out)) {
    if (*status != 404)
      bg_log(BG_LOG_WARN, r->request_id, "accounts answered %ld for %s %s", *status, kind, id);
    json_decref(out);
    return NULL;
  }
  return out;
}

json_t *aud_account_get(struct bg_request *r, const char *id, long *status)
{
  return accounts_get(r, "accounts", id, status);
}

json_t *aud_unit_get(struct bg_request *r, const char *id, long *status) { return accounts_get(r, "units", id, status); }

bool aud_has_any_role(const struct bg_request *r, const char *const *roles)
{
  for (int i = 0; roles[i]; i++)
    if (bg_req_has_role(r, roles[i]))
      return true;
  return false;
}

PGresult *aud_ov_fetch(struct bg_request *r, struct bg_dbc *c, const char *get, const char *lock_stmt, bool lock,
                       bool (*can_see)(const struct bg_request *, PGresult *), const char *what)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return NULL;
  const char *p[] = {id};
  if (lock && !bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    return NULL;
  }
  PGresult *res = bg_dbc_exec(c, lock ? lock_stmt : get, 1, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
    return NULL;
  }
  if (PQntuples(res) == 0 || !can_see(r, res)) {
    if (c->in_tx)
      bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such %s", what);
    PQclear(res);
    return NULL;
  }
  return res;
}

bool aud_is_overseer(const struct bg_request *r)
{
  static const char *const overseers[] = {"permission_admin", "it_staff", "ethics_officer", "director", NULL};
  return aud_has_any_role(r, overseers);
}
