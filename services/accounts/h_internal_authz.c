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

void acct_h_internal_authz(struct bg_request *r)
{
  const char *sid, *item = r->params[1];
  if (!bg_req_uuid_param(r, 0, &sid))
    return;
  if (!bg_bli_item(item)) {
    bg_reply_problem(r, BG_P_ITEM_UNKNOWN, "%s is not in the BLI catalogue", item);
    return;
  }
  time_t now = bg_now();
  char now_s[BG_TIME_LEN], today[BG_DATE_LEN], idle[24];
  bg_time_fmt(now, now_s);
  bg_date_fmt(now, today);
  snprintf(idle, sizeof idle, "%ld", acct.idle_ttl);
  const char *p[] = {sid, now_s, idle, item, today};
  PGresult *res = bg_db_fetch(r, acct.db, "session_item", 5, p);
  if (!res)
    return;
  if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such session");
    PQclear(res);
    return;
  }
  const char *reason = NULL;
  if (PQgetvalue(res, 0, 1)[0] == 't')
    reason = "ended";
  else if (strcmp(PQgetvalue(res, 0, 4), "active") != 0)
    reason = "account-inactive";
  else if (PQgetvalue(res, 0, 2)[0] == 't')
    reason = "expired";
  else if (PQgetvalue(res, 0, 3)[0] == 't')
    reason = "idle";
  json_t *roles = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
  bool has_grant = !PQgetisnull(res, 0, 8);
  json_t *grant = json_pack("{s:s, s:s?, s:s?}", "status", has_grant ? PQgetvalue(res, 0, 8) : "none",
                            "effective_date", has_grant ? PQgetvalue(res, 0, 9) : NULL, "application_id",
                            has_grant ? PQgetvalue(res, 0, 10) : NULL);
  bg_reply_json(r, 200,
                json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s, s:s, s:o, s:s, s:o}", "session_id", sid, "account_id",
                          PQgetvalue(res, 0, 0), "name", PQgetvalue(res, 0, 7), "live", reason == NULL, "reason",
                          reason, "account_status", PQgetvalue(res, 0, 4), "unit_id", PQgetvalue(res, 0, 5), "roles",
                          roles ? roles : json_array(), "item", item, "grant", grant));
  PQclear(res);
}
