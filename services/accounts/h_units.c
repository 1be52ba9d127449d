/* Units: the bureau's sections, the Secretariat and its IT team, the Ethics Office, the
 * Director's office, district offices and agencies. Managed by the permission administrator. */
#include "acct.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <string.h>

const char *const acct_unit_kinds[] = {"section",         "it_team",         "secretariat", "ethics_office",
                                       "director_office", "district_office", "agency",      NULL};

static json_t *unit_row(PGresult *res, int row, void *arg) { return acct_unit_json(res, row, 0); }

void acct_h_units_list(struct bg_request *r)
{
  int limit;
  if (!bg_req_limit(r, &limit))
    return;
  char ts[BG_TIME_LEN], id[BG_UUID_LEN], lim[16];
  const char *cur = bg_req_query(r, "cursor");
  if (cur && !bg_cursor_parse(cur, ts, sizeof ts, id, sizeof id)) {
    bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
    return;
  }
  snprintf(lim, sizeof lim, "%d", limit + 1);
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {cur ? ts : NULL, cur ? id : NULL, lim};
  PGresult *res = bg_dbc_exec(c, "unit_list", 3, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, limit, 5, 0, unit_row, NULL));
  PQclear(res);
  bg_db_release(c);
}

struct unit_body {
  const char *code, *name, *kind, *parent_id;
};

void acct_h_units_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("code", BG_F_STRING, true, struct unit_body, code, .min = 1, .max = 32),
    BG_FIELD("name", BG_F_STRING, true, struct unit_body, name, .min = 1, .max = 100),
    BG_FIELD("kind", BG_F_ENUM, true, struct unit_body, kind, .enumv = acct_unit_kinds),
    BG_FIELD("parent_id", BG_F_UUID, false, struct unit_body, parent_id),
    BG_FIELD_END};
  struct unit_body b = {0};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator manages units");
    return;
  }
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  for (const char *p = b.code; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || (*p == '-' && p != b.code))) {
      bg_reply_field_error(r, BG_P_VALIDATION, "code", "invalid", "upper-case letters, digits and '-'");
      return;
    }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  struct bg_dberr err;
  PGresult *res = NULL;
  if (!bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  const char *p[] = {id, b.code, b.name, b.kind, b.parent_id, now_s};
  res = bg_dbc_exec(c, "unit_insert", 6, p, &err);
  if (!res) {
    bg_dbc_rollback(c);
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE))
      bg_reply_problem(r, BG_P_UNIT_CODE_TAKEN, "unit code %s exists", b.code);
    else if (!strcmp(err.sqlstate, "23503"))
      bg_reply_field_error(r, BG_P_UNIT_UNKNOWN, "parent_id", "unknown", "no such unit");
    else
      bg_db_failed(r, c);
    goto done;
  }
  json_t *unit = acct_unit_json(res, 0, 0);
  json_t *ev = bg_event_new(r, "unit.created", "unit", id, "success");
  json_object_set(json_object_get(ev, "details"), "unit", unit);
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    json_decref(unit);
    bg_db_failed(r, c);
    goto done;
  }
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/units/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, unit);
done:
  PQclear(res);
  bg_db_release(c);
}

void acct_h_units_get(struct bg_request *r)
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
