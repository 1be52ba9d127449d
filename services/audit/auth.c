/* Who may read the log, and the rule that every read is itself on the log. The session behind
 * a user token is asked of accounts on every request (revocation takes effect at once), and
 * the roles are the ones accounts holds now, not the ones the token was issued with. */
#include "aud.h"
#include "bligate/events.h"
#include "bligate/log.h"
#include "bligate/session.h"
#include "bligate/svc.h"
#include <stdio.h>
#include <string.h>

static const char *const readers[] = {"permission_admin", "it_staff", "ethics_officer", "director", NULL};

bool aud_session_hook(struct bg_request *r)
{
  char url[512];
  snprintf(url, sizeof url, "%s/internal/sessions/%s", aud.accounts_url, r->token.sid);
  json_t *s = NULL;
  long status = r->token.sid[0] ? bg_svc_call(aud.svc, "GET", url, NULL, r->request_id, &s) : 404;
  bool ok = bg_session_live(r, status, s);
  if (ok) {
    /* today's roles and unit, from accounts */
    json_t *roles = json_object_get(s, "roles");
    size_t i;
    json_t *v;
    r->token.nroles = 0;
    json_array_foreach(roles, i, v)
    {
      const char *role = json_string_value(v);
      if (role && strlen(role) < sizeof r->token.roles[0] && r->token.nroles < BG_MAX_ROLES)
        snprintf(r->token.roles[r->token.nroles++], sizeof r->token.roles[0], "%s", role);
    }
    const char *unit = json_string_value(json_object_get(s, "unit_id"));
    snprintf(r->token.unit, sizeof r->token.unit, "%s", unit ? unit : "");
  }
  json_decref(s);
  return ok;
}

bool aud_is_reader(struct bg_request *r)
{
  for (int i = 0; readers[i]; i++)
    if (bg_req_has_role(r, readers[i]))
      return true;
  return false;
}

bool aud_record_read(struct bg_request *r, const char *type, const char *outcome, json_t *details, json_t *subject)
{
  json_t *ev = bg_event_new(r, type, "audit_log", NULL, outcome);
  /* A reader who typed an ID number into a filter must not put it on the log. */
  if (details && aud_has_national_id(details)) {
    json_decref(details);
    details = json_pack("{s:b}", "filters_withheld", 1);
  }
  if (details)
    json_object_set_new(ev, "details", details);
  if (subject)
    json_object_set_new(ev, "subject", subject);
  json_object_set_new(json_object_get(ev, "details"), "route", json_string(r->route ? r->route->pattern : r->path));
  if (!aud_append_own(ev, r->request_id)) {
    bg_log(BG_LOG_ERROR, r->request_id, "cannot record a read of the log; refusing it");
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the read could not be recorded on the log, so it is refused");
    return false;
  }
  return true;
}
