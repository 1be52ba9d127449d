/* Account and unit facts for other services' authorization decisions (workflow: is the named
 * querier an active querier, in which unit; is the caller that unit's supervisor). Internal:
 * a client token with scope accounts:read; no national ID, no contact details. */
#include "acct.h"
#include "bligate/http.h"
#include <string.h>

void acct_h_internal_account(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "account_get", 1, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
  } else {
    /* ACOLS order: id, name, national_id, unit_id, title, roles, phone, email, egov, status */
    json_t *roles = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
    bg_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", PQgetvalue(res, 0, 0), "name",
                            PQgetvalue(res, 0, 1), "unit_id", PQgetvalue(res, 0, 3), "title", PQgetvalue(res, 0, 4),
                            "roles", roles ? roles : json_array(), "status", PQgetvalue(res, 0, 9)));
  }
  PQclear(res);
  bg_db_release(c);
}

void acct_h_internal_unit(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "unit_get", 1, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else if (PQntuples(res) == 0)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such unit");
  else
    bg_reply_json(r, 200, acct_unit_json(res, 0, 0));
  PQclear(res);
  bg_db_release(c);
}
