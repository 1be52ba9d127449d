/* /v1/integration-clients: the permission administrator registers other city systems (the
 * document and approval systems) as OAuth2 clients bound to one unit. Their scopes name the
 * unit — approvals:read:<unit> reads that unit's query requests, approvals:decide:<unit> also
 * records a decision a named supervisor took in the city's system (workflow checks the person
 * as if they decided here and logs both identities). The secret is shown once, stored as a
 * PBKDF2 hash (clients.c), and replaced by rotation; every change is an event in the same
 * transaction. Tokens come from POST /v1/auth/tokens like any client's. */
#include "acct.h"
#include "ic.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define ICCOLS "c.id, c.name, c.unit_id, array_to_json(c.scopes), c.description, c.status, c.created_by, " \
               TS("c.created_at") ", " TS("c.updated_at")

static const struct bg_db_stmt stmts[] = {
  BG_OUTBOX_STMT,
  {"ic_insert", "INSERT INTO clients (id, secret_hash, scopes, status, kind, name, unit_id, description, created_by,"
                " created_at, updated_at) SELECT $1, $2, ARRAY(SELECT json_array_elements_text($3::json)), 'active',"
                " 'integration', $4, u.id, $5, $6, $7, $7 FROM units u WHERE u.id = $8 RETURNING id"},
  {"ic_get", "SELECT " ICCOLS " FROM clients c WHERE c.id = $1 AND c.kind = 'integration'"},
  {"ic_list", "SELECT " ICCOLS " FROM clients c WHERE c.kind = 'integration'"
              " AND ($1::timestamptz IS NULL OR (c.created_at, c.id) > ($1::timestamptz, $2)) ORDER BY c.created_at, c.id"
              " LIMIT $3"},
  {"ic_secret", "UPDATE clients SET secret_hash = $2, updated_at = $3 WHERE id = $1 AND kind = 'integration'"
                " AND status = 'active' RETURNING id"},
  {"ic_disable", "UPDATE clients SET status = 'disabled', updated_at = $2 WHERE id = $1 AND kind = 'integration'"
                 " RETURNING id"},
};
enum { IC_ID, IC_NAME, IC_UNIT, IC_SCOPES, IC_DESC, IC_STATUS, IC_BY, IC_CREATED, IC_UPDATED };

static struct bg_db *db;

bool acct_ic_init(const char *db_url)
{
  db = bg_db_new(db_url, "accounts", 2, stmts, sizeof stmts / sizeof stmts[0]);
  return db != NULL;
}

void acct_ic_free(void) { bg_db_free(db); }

static bool admin_only(struct bg_request *r)
{
  if (bg_req_has_role(r, "permission_admin"))
    return true;
  bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator manages integration clients");
  return false;
}

/* approvals:decide:<unit> → "approvals:decide" for the API, which names the unit apart */
static json_t *ic_json(PGresult *res, int row)
{
  json_t *scopes = json_array(), *stored = json_loads(PQgetvalue(res, row, IC_SCOPES), 0, NULL);
  size_t i;
  json_t *v;
  json_array_foreach(stored, i, v)
  {
    const char *s = json_string_value(v), *last = s ? strrchr(s, ':') : NULL;
    if (last)
      json_array_append_new(scopes, json_stringn(s, (size_t)(last - s)));
  }
  json_decref(stored);
  return json_pack("{s:s, s:s, s:s, s:o, s:s?, s:s, s:s?, s:s, s:s}", "client_id", PQgetvalue(res, row, IC_ID), "name",
                   PQgetvalue(res, row, IC_NAME), "unit_id", PQgetvalue(res, row, IC_UNIT), "scopes", scopes,
                   "description", PQgetisnull(res, row, IC_DESC) ? NULL : PQgetvalue(res, row, IC_DESC), "status",
                   PQgetvalue(res, row, IC_STATUS), "created_by",
                   PQgetisnull(res, row, IC_BY) ? NULL : PQgetvalue(res, row, IC_BY), "created_at",
                   PQgetvalue(res, row, IC_CREATED), "updated_at", PQgetvalue(res, row, IC_UPDATED));
}

static json_t *ic_row(PGresult *res, int row, void *arg)
{
  (void)arg;
  return ic_json(res, row);
}

/* 32 random bytes, base64url: shown once, kept only as its hash */
static bool new_secret(char out[64], char **hash)
{
  unsigned char raw[32];
  char *b64 = bg_random(raw, sizeof raw) ? bg_b64url_encode(raw, sizeof raw) : NULL;
  OPENSSL_cleanse(raw, sizeof raw);
  bool ok = b64 && bg_fmt(out, 64, "%s", b64) && (*hash = acct_secret_hash(out));
  if (b64)
    OPENSSL_cleanse(b64, strlen(b64));
  free(b64);
  return ok;
}

/* One statement and its event in one transaction: the statement's rows (none: nothing changed,
 * no event), or NULL after replying. */
static PGresult *change(struct bg_request *r, const char *stmt, int n, const char *const *p, json_t *ev)
{
  struct bg_dbc *c = bg_db_for(r, db);
  if (!c) {
    json_decref(ev);
    return NULL;
  }
  PGresult *res = NULL;
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, stmt, n, p, NULL))) {
    json_decref(ev);
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0) {
    json_decref(ev);
    bg_dbc_rollback(c);
  } else if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    PQclear(res);
    res = NULL;
    bg_db_failed(r, c);
  }
  bg_db_release(c);
  return res;
}

static void reply_client(struct bg_request *r, unsigned status, const char *id, const char *secret)
{
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, db, "ic_get", 1, p);
  if (!res)
    return;
  if (PQntuples(res) == 1) {
    json_t *out = ic_json(res, 0);
    if (secret)
      json_object_set_new(out, "client_secret", json_string(secret));
    bg_reply_json(r, status, out);
  } else {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such integration client");
  }
  PQclear(res);
}

struct ic_body {
  const char *name, *unit_id, *description;
  json_t *scopes;
};

void acct_h_ic_post(struct bg_request *r)
{
  static const char *const kinds[] = {"approvals:read", "approvals:decide", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("name", BG_F_STRING, true, struct ic_body, name, .min = 2, .max = 100),
    BG_FIELD("unit_id", BG_F_UUID, true, struct ic_body, unit_id),
    BG_FIELD("scopes", BG_F_STR_ARRAY, true, struct ic_body, scopes, .min = 1, .max = 2, .enumv = kinds),
    BG_FIELD("description", BG_F_STRING, false, struct ic_body, description, .min = 1, .max = 500),
    BG_FIELD_END};
  if (!admin_only(r))
    return;
  struct ic_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b) || !bg_req_no_twid(r))
    return;
  json_t *scopes = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(b.scopes, i, v)
  {
    char s[128];
    bg_fmt(s, sizeof s, "%s:%s", json_string_value(v), b.unit_id);
    json_array_append_new(scopes, json_string(s));
  }
  char id[40], uuid[BG_UUID_LEN], secret[64], now_s[BG_TIME_LEN];
  char *hash = NULL;
  bg_uuid_v4(uuid);
  bg_fmt(id, sizeof id, "ic-%.8s%.4s", uuid, uuid + 9);
  bg_time_fmt(bg_now(), now_s);
  if (!new_secret(secret, &hash)) {
    json_decref(scopes);
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  char *scopes_s = json_dumps(scopes, JSON_COMPACT);
  json_t *ev = bg_event_new(r, "integration_client.created", "integration_client", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "name", json_string(b.name));
  json_object_set_new(d, "unit_id", json_string(b.unit_id));
  json_object_set(d, "scopes", b.scopes);
  const char *p[] = {id, hash, scopes_s, b.name, b.description, r->token.sub, now_s, b.unit_id};
  PGresult *res = change(r, "ic_insert", 8, p, ev);
  if (res && PQntuples(res) == 1) {
    char loc[96];
    bg_fmt(loc, sizeof loc, "/v1/integration-clients/%s", id);
    bg_reply_header(r, "Location", loc);
    reply_client(r, 201, id, secret);
  } else if (!r->replied) {
    bg_reply_problem(r, BG_P_UNIT_UNKNOWN, "no unit %s", b.unit_id);
  }
  PQclear(res);
  free(scopes_s);
  free(hash);
  json_decref(scopes);
  OPENSSL_cleanse(secret, sizeof secret);
}

void acct_h_ic_list(struct bg_request *r)
{
  struct bg_page_req pg;
  if (!admin_only(r) || !bg_req_page(r, &pg))
    return;
  const char *p[] = {pg.after_ts, pg.after_id, pg.lim};
  PGresult *res = bg_db_fetch(r, db, "ic_list", 3, p);
  if (res)
    bg_reply_json(r, 200, bg_page(res, pg.limit, IC_CREATED, IC_ID, ic_row, NULL));
  PQclear(res);
}

/* client ids are "ic-" and 12 hex digits; anything else cannot exist */
static bool client_param(struct bg_request *r, const char **id)
{
  *id = r->params[0];
  size_t n = strlen(*id);
  bool ok = n == 15 && !strncmp(*id, "ic-", 3) && strspn(*id + 3, "0123456789abcdef") == 12;
  if (!ok)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such integration client");
  return ok;
}

void acct_h_ic_get(struct bg_request *r)
{
  const char *id;
  if (admin_only(r) && client_param(r, &id))
    reply_client(r, 200, id, NULL);
}

void acct_h_ic_secret(struct bg_request *r)
{
  const char *id;
  if (!admin_only(r) || !client_param(r, &id))
    return;
  char secret[64], now_s[BG_TIME_LEN];
  char *hash = NULL;
  if (!new_secret(secret, &hash)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, hash, now_s};
  PGresult *res = change(r, "ic_secret", 3, p,
                         bg_event_new(r, "integration_client.secret_rotated", "integration_client", id, "success"));
  if (res && PQntuples(res) == 1)
    reply_client(r, 200, id, secret);
  else if (!r->replied)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such active integration client");
  PQclear(res);
  free(hash);
  OPENSSL_cleanse(secret, sizeof secret);
}

void acct_h_ic_disable(struct bg_request *r)
{
  const char *id;
  if (!admin_only(r) || !client_param(r, &id))
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s};
  PGresult *res = change(r, "ic_disable", 2, p,
                         bg_event_new(r, "integration_client.disabled", "integration_client", id, "success"));
  if (res && PQntuples(res) == 1)
    reply_client(r, 200, id, NULL);
  else if (!r->replied)
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such integration client");
  PQclear(res);
}
