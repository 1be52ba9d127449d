/* GET /internal/sessions/{sid}/items/{item}: the proxy's question before every BLI query, in
 * one round trip (it is on the hot path of every query): is the session live, is the account
 * active, and what is its grant for this item today (DESIGN.md §4 step 2)? Like the plain
 * session check, asking counts as the user's activity (the query is what the user does), so
 * the idle timer restarts — written at most every 5 seconds. Scope sessions:read. */
#include "acct.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include <stdio.h>
#include <string.h>

/* session_item's columns after the six SESS_ ones */
enum { SITEM_NAME = SESS_EXPIRES_AT + 1, SITEM_UNIT_ID, SITEM_ROLES, SITEM_STATUS, SITEM_GRANT_ID,
       SITEM_SUSPENDED_AT, SITEM_EFFECTIVE_DATE, SITEM_APPLICATION_ID };

void acct_h_internal_authz(struct bg_request *r)
{
  const char *sid, *item = r->params[1];
  if (!bg_req_uuid_param(r, 0, &sid))
    return;
  if (!bg_bli_item(item)) {
    bg_reply_problem(r, BG_P_ITEM_UNKNOWN, "%s is not in the BLI catalogue", item);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  time_t now = bg_now();
  char now_s[BG_TIME_LEN], today[BG_DATE_LEN];
  bg_time_fmt(now, now_s);
  bg_date_fmt(now, today);
  const char *p[] = {sid, item};
  PGresult *res = bg_dbc_exec(c, "session_item", 2, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such session");
    goto done;
  }
  struct acct_session s;
  acct_session_read(res, SITEM_STATUS, now, &s);
  acct_session_touch(c, sid, &s, now, now_s);
  bg_db_release(c); /* the reply is built from the result alone */
  c = NULL;
  /* the grant's status on the bureau's date; dates compare as YYYY-MM-DD text */
  json_t *grant;
  if (PQgetisnull(res, 0, SITEM_GRANT_ID)) {
    grant = json_pack("{s:s, s:n, s:n}", "status", "none", "effective_date", "application_id");
  } else {
    const char *eff = PQgetvalue(res, 0, SITEM_EFFECTIVE_DATE);
    const char *st = !PQgetisnull(res, 0, SITEM_SUSPENDED_AT) ? "suspended"
                     : strcmp(eff, today) > 0                  ? "pending"
                                                               : "active";
    grant = json_pack("{s:s, s:s, s:s}", "status", st, "effective_date", eff, "application_id",
                      PQgetvalue(res, 0, SITEM_APPLICATION_ID));
  }
  bg_reply_json(r, 200,
                json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s, s:s, s:o, s:s, s:o}", "session_id", sid, "account_id",
                          s.account_id, "name", PQgetvalue(res, 0, SITEM_NAME), "live", s.reason == NULL, "reason",
                          s.reason, "account_status", PQgetvalue(res, 0, SITEM_STATUS), "unit_id",
                          PQgetvalue(res, 0, SITEM_UNIT_ID), "roles",
                          acct_text_array_json(PQgetvalue(res, 0, SITEM_ROLES)), "item", item, "grant", grant));
done:
  PQclear(res);
  bg_db_release(c);
}
