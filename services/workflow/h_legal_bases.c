/* The legal-basis catalogue (rule 5): the laws the bureau queries under and the BLI items
 * each may justify. Every signed-in member of staff reads it; the permission administrator
 * adds to it. A law is never edited or removed: requests refer to it as it was. */
#include "wf.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *row(PGresult *res, int i, void *arg)
{
  (void)arg;
  return wf_legal_basis_json(res, i);
}

void wf_h_legal_bases_list(struct bg_request *r)
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
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  const char *p[] = {cur ? ts : NULL, cur ? id : NULL, lim};
  PGresult *res = bg_dbc_exec(c, "lb_list", 3, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else
    bg_reply_json(r, 200, bg_page(res, limit, 7, 0, row, NULL));
  PQclear(res);
  bg_db_release(c);
}

void wf_h_legal_bases_get(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "lb_get", 1, p, NULL);
  if (!res)
    bg_db_failed(r, c);
  else if (PQntuples(res) == 0)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such legal basis");
  else
    bg_reply_json(r, 200, wf_legal_basis_json(res, 0));
  PQclear(res);
  bg_db_release(c);
}

struct lb_body {
  const char *code, *law_name, *law_name_en, *description;
  json_t *items;
};

void wf_h_legal_bases_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("code", BG_F_STRING, true, struct lb_body, code, .min = 2, .max = 32),
    BG_FIELD("law_name", BG_F_STRING, true, struct lb_body, law_name, .min = 2, .max = 100),
    BG_FIELD("law_name_en", BG_F_STRING, false, struct lb_body, law_name_en, .min = 1, .max = 200),
    BG_FIELD("items", BG_F_STR_ARRAY, true, struct lb_body, items, .min = 1, .max = 9),
    BG_FIELD("description", BG_F_STRING, false, struct lb_body, description, .min = 1, .max = 2000),
    BG_FIELD_END};
  if (!bg_req_has_role(r, "permission_admin")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator adds legal bases");
    return;
  }
  struct lb_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  bool code_ok = b.code[0] != '-';
  for (const char *s = b.code; *s; s++)
    code_ok &= (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-';
  if (!code_ok) {
    bg_reply_field_error(r, BG_P_VALIDATION, "code", "invalid", "upper-case letters, digits and '-'");
    return;
  }
  size_t i;
  json_t *v;
  json_array_foreach(b.items, i, v) if (!bg_bli_item(json_string_value(v)))
  {
    char d[96];
    snprintf(d, sizeof d, "'%.20s' is not a BLI item code", json_string_value(v));
    bg_reply_field_error(r, BG_P_ITEM_UNKNOWN, "items", "item-unknown", d);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN];
  bg_uuid_v4(id);
  bg_time_fmt(bg_now(), now_s);
  char *items = bg_json_dump(b.items);
  const char *p[] = {id, b.code, b.law_name, b.law_name_en, items, b.description, r->token.sub, now_s};
  struct bg_dberr err;
  PGresult *res = NULL;
  if (!bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  if (!(res = bg_dbc_exec(c, "lb_insert", 8, p, &err))) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
      bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_LEGAL_BASIS_EXISTS, "%s",
                       strstr(err.constraint, "code") ? "the code is taken" : "the law is in the catalogue");
    } else {
      bg_db_failed(r, c);
    }
    goto done;
  }
  json_t *lb = wf_legal_basis_json(res, 0);
  json_t *ev = bg_event_new(r, "legal_basis.created", "legal_basis", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set(d, "code", json_object_get(lb, "code"));
  json_object_set(d, "law_name", json_object_get(lb, "law_name"));
  json_object_set(d, "items", json_object_get(lb, "items"));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    json_decref(lb);
    bg_db_failed(r, c);
    goto done;
  }
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/legal-bases/%s", id);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, lb);
done:
  free(items);
  PQclear(res);
  bg_db_release(c);
}
