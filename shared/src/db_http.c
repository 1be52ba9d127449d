/* Glue between handlers and the database: connection or 503, failures to problems, cursors. */
#include "bligate/clock.h"
#include "bligate/db.h"
#include "bligate/http.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bg_dbc *bg_db_for(struct bg_request *r, struct bg_db *db)
{
  struct bg_dbc *c = bg_db_acquire(db, 2000);
  if (!c)
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "try again shortly");
  return c;
}

void bg_db_failed(struct bg_request *r, struct bg_dbc *c)
{
  if (c->in_tx)
    bg_dbc_rollback(c);
  if (c->broken || PQstatus(c->pg) != CONNECTION_OK)
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "try again shortly");
  else
    bg_reply_problem(r, BG_P_INTERNAL, "the request id identifies the failure in the service log");
}

char *bg_cursor_make(const char *created_at, const char *id)
{
  char buf[128];
  if (!bg_fmt(buf, sizeof buf, "%s|%s", created_at, id))
    return NULL;
  return bg_b64url_encode(buf, strlen(buf));
}

bool bg_cursor_parse(const char *cursor, char *ts, size_t tslen, char *id, size_t idlen)
{
  size_t n;
  char *raw = cursor && strlen(cursor) < 200 ? (char *)bg_b64_decode(cursor, &n) : NULL;
  char *bar = raw ? strchr(raw, '|') : NULL;
  time_t t;
  bool ok = false;
  if (bar) {
    *bar = '\0';
    ok = bg_time_parse(raw, &t) && bg_uuid_valid(bar + 1) && bg_fmt(ts, tslen, "%s", raw) &&
         bg_fmt(id, idlen, "%s", bar + 1);
  }
  free(raw);
  return ok;
}

json_t *bg_page(PGresult *res, int limit, int ts_col, int id_col, json_t *(*row_json)(PGresult *, int, void *),
                void *arg)
{
  int n = PQntuples(res);
  int take = n > limit ? limit : n;
  json_t *items = json_array();
  for (int i = 0; i < take; i++)
    json_array_append_new(items, row_json(res, i, arg));
  json_t *next = json_null();
  if (n > limit && take > 0) {
    char *c = bg_cursor_make(PQgetvalue(res, take - 1, ts_col), PQgetvalue(res, take - 1, id_col));
    if (c) {
      json_decref(next);
      next = json_string(c);
      free(c);
    }
  }
  return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}

bool bg_req_page(struct bg_request *r, struct bg_page_req *p)
{
  memset(p, 0, sizeof *p);
  if (!bg_req_limit(r, &p->limit))
    return false;
  const char *cursor = bg_req_query(r, "cursor");
  if (cursor && !bg_cursor_parse(cursor, p->ts, sizeof p->ts, p->id, sizeof p->id)) {
    bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
    return false;
  }
  p->after_ts = cursor ? p->ts : NULL;
  p->after_id = cursor ? p->id : NULL;
  snprintf(p->lim, sizeof p->lim, "%d", p->limit + 1);
  return true;
}

PGresult *bg_db_fetch(struct bg_request *r, struct bg_db *db, const char *stmt, int nparams, const char *const *params)
{
  struct bg_dbc *c = bg_db_for(r, db);
  if (!c)
    return NULL;
  PGresult *res = bg_dbc_exec(c, stmt, nparams, params, NULL);
  if (!res)
    bg_db_failed(r, c);
  bg_db_release(c);
  return res;
}
