/* Idempotency-Key handling for creating POSTs (idempotency.h). */
#include "bligate/idempotency.h"
#include "bligate/svc.h"
#include "bligate/clock.h"
#include "bligate/db.h"
#include "bligate/http.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <stdio.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static bool key_ok(const char *k)
{
  size_t n = strlen(k);
  if (n == 0 || n > 255)
    return false;
  for (size_t i = 0; i < n; i++)
    if (k[i] < 0x21 || k[i] > 0x7e)
      return false;
  return true;
}

static void request_hash(struct bg_request *r, char out[65])
{
  /* method, path and body: the same key with another request is a client bug */
  size_t n = strlen(r->method) + strlen(r->path) + r->body_len + 2;
  char *buf = malloc(n + 1);
  if (!buf) {
    memset(out, '0', 64);
    out[64] = '\0';
    return;
  }
  int k = snprintf(buf, n + 1, "%s\n%s\n", r->method, r->path);
  if (r->body_len)
    memcpy(buf + k, r->body, r->body_len);
  /* keyed where the service holds the ID key: a body may carry a national ID, and a plain
   * SHA-256 of it could be reversed by hashing every possible ID */
  if (!bg_keyed_digest("bligate/idempotency/v1", buf, (size_t)k + r->body_len, out))
    bg_sha256_hex(buf, (size_t)k + r->body_len, out);
  OPENSSL_cleanse(buf, (size_t)k + r->body_len);
  free(buf);
}

static void replay(struct bg_request *r, PGresult *res)
{
  long status = strtol(PQgetvalue(res, 0, 1), NULL, 10);
  if (!PQgetisnull(res, 0, 3))
    bg_reply_header(r, "Location", PQgetvalue(res, 0, 3));
  bg_reply_header(r, "Idempotent-Replayed", "true");
  size_t len = (size_t)PQgetlength(res, 0, 4);
  char *body = malloc(len + 1);
  if (!body) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  memcpy(body, PQgetvalue(res, 0, 4), len);
  body[len] = '\0';
  /* the content type must outlive res: keep a copy owned by the request */
  const char *ct = "application/json";
  if (!PQgetisnull(res, 0, 2) && r->nscratch < BG_MAX_SCRATCH) {
    char *copy = strdup(PQgetvalue(res, 0, 2));
    if (copy)
      ct = r->scratch[r->nscratch++] = copy;
  }
  bg_reply_text(r, (unsigned)status, ct, body, len);
}

void bg_idem_run(struct bg_db *db, struct bg_request *r)
{
  const char *key = bg_req_header(r, "Idempotency-Key");
  if (!key_ok(key)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "Idempotency-Key", "invalid", "1 to 255 visible ASCII characters");
    return;
  }
  const char *principal = r->token.present ? r->token.sub : (r->client_addr ? r->client_addr : "");
  char hash[65], now_s[BG_TIME_LEN];
  request_hash(r, hash);
  bg_time_fmt(bg_now(), now_s);
  struct bg_dbc *c = bg_db_for(r, db);
  if (!c)
    return;
  const char *pc[] = {principal, key, hash, now_s};
  PGresult *res = bg_dbc_exec(c, "bg_idem_claim", 4, pc, NULL);
  if (!res) {
    bg_db_failed(r, c);
    bg_db_release(c);
    return;
  }
  bool claimed = PQntuples(res) == 1;
  PQclear(res);
  if (!claimed) {
    const char *pg[] = {principal, key, now_s};
    res = bg_dbc_exec(c, "bg_idem_get", 3, pg, NULL);
    if (!res || PQntuples(res) == 0) {
      /* expired between the two statements: treat as a server hiccup, the client retries */
      bg_reply_problem(r, BG_P_CONFLICT, "retry the request");
    } else if (strcmp(PQgetvalue(res, 0, 0), hash) != 0) {
      bg_reply_problem(r, BG_P_IDEMPOTENCY_MISMATCH, "this Idempotency-Key was used for another request");
    } else if (PQgetisnull(res, 0, 1)) {
      if (PQgetvalue(res, 0, 5)[0] == 't') { /* abandoned by a crash: let this attempt run */
        const char *pf[] = {principal, key};
        bg_dbc_run(c, "bg_idem_forget", 2, pf, NULL);
      }
      bg_reply_problem(r, BG_P_CONFLICT, "a request with this Idempotency-Key is still being processed");
    } else {
      replay(r, res);
    }
    PQclear(res);
    bg_db_release(c);
    return;
  }
  /* Run the handler without holding our connection: it takes its own. */
  bg_db_release(c);
  r->route->handler(r);
  if (!(c = bg_db_acquire(db, 2000))) {
    bg_log(BG_LOG_ERROR, r->request_id, "could not record Idempotency-Key outcome");
    return;
  }
  if (r->replied && r->status >= 200 && r->status < 300) {
    char *body = r->raw_reply ? NULL : (r->reply ? json_dumps(r->reply, JSON_COMPACT) : strdup(""));
    char status[8];
    snprintf(status, sizeof status, "%u", r->status);
    const char *location = NULL;
    for (int i = 0; i < r->nheaders; i++)
      if (!strcmp(r->headers[i].name, "Location"))
        location = r->headers[i].value;
    const char *ps[] = {principal, key, status, r->content_type, location, body ? body : r->raw_reply};
    if (!bg_dbc_run(c, "bg_idem_store", 6, ps, NULL))
      bg_log(BG_LOG_ERROR, r->request_id, "could not store Idempotency-Key outcome");
    free(body);
  } else {
    /* a refused request created nothing: the client may fix it and reuse the key */
    const char *pf[] = {principal, key};
    bg_dbc_run(c, "bg_idem_forget", 2, pf, NULL);
  }
  if (now_s[18] == '0') { /* now and then, retire day-old keys */
    const char *pe[] = {now_s};
    bg_dbc_run(c, "bg_idem_expire", 1, pe, NULL);
  }
  bg_db_release(c);
}
