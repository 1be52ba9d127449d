/* Who may read the log, and the rule that every read is itself on the log. The session behind
 * a user token is asked of accounts on every request (revocation takes effect at once), and
 * the roles are the ones accounts holds now, not the ones the token was issued with. */
#include "aud.h"
#include "bligate/events.h"
#include "bligate/log.h"
#include "bligate/session.h"

static const char *const readers[] = {"permission_admin", "it_staff", "ethics_officer", "director", NULL};

bool aud_session_hook(struct bg_request *r) { return bg_session_check(r, aud.svc, aud.accounts_url, NULL); }

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
