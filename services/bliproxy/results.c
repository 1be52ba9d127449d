/* Stored results: sealed with AES-256-GCM under the current key of BLIGATE_RESULT_KEY_FILE,
 * the record id and item bound as associated data (a ciphertext copied to another record or
 * item does not open), and the key id kept beside it for rotation. The database never holds
 * the data in clear; the subject's name is inside the sealed document too. */
#include "prx.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool aad(const char *query_id, const char *item, char *buf, size_t len)
{
  return bg_fmt(buf, len, "bligate/bliproxy/result/v1|%s|%s", query_id, item);
}

unsigned char *prx_seal(const char *query_id, const char *item, const json_t *doc, size_t *len, const char **kid)
{
  char ad[128];
  char *pt = json_dumps(doc, JSON_COMPACT);
  if (!pt || !aad(query_id, item, ad, sizeof ad)) {
    free(pt);
    return NULL;
  }
  size_t n = strlen(pt);
  unsigned char *out = malloc(n + BG_AEAD_OVERHEAD);
  if (out && !bg_aead_seal(&prx.keys, ad, strlen(ad), pt, n, out, kid)) {
    free(out);
    out = NULL;
  }
  OPENSSL_cleanse(pt, n);
  free(pt);
  *len = out ? n + BG_AEAD_OVERHEAD : 0;
  return out;
}

json_t *prx_open(const char *query_id, const char *item, const char *kid, const unsigned char *sealed, size_t len)
{
  char ad[128];
  if (len < BG_AEAD_OVERHEAD || !aad(query_id, item, ad, sizeof ad))
    return NULL;
  size_t n = len - BG_AEAD_OVERHEAD;
  unsigned char *pt = malloc(n + 1);
  if (!pt)
    return NULL;
  json_t *doc = NULL;
  if (bg_aead_open(&prx.keys, kid, ad, strlen(ad), sealed, len, pt))
    doc = json_loadb((const char *)pt, n, JSON_REJECT_DUPLICATES, NULL);
  else
    bg_error("result %s does not open with key %s (altered, or the key is gone)", query_id, kid);
  OPENSSL_cleanse(pt, n);
  free(pt);
  return doc;
}

json_t *prx_watermark(const char *account_id, const char *name, const char *unit_id, const char *at)
{
  char text[512];
  bg_fmt(text, sizeof text, "機密 限本案使用 禁止複製 CONFIDENTIAL: case use only, do not copy | %s (%s) | %s",
         name ? name : account_id, account_id, at);
  return json_pack("{s:s, s:s, s:s*, s:s*, s:s}", "text", text, "account_id", account_id, "name", name, "unit_id",
                   unit_id, "at", at);
}

static json_t *col(PGresult *res, int row, int c)
{
  return PQgetisnull(res, row, c) ? json_null() : json_string(PQgetvalue(res, row, c));
}

json_t *prx_query_json(PGresult *res, int row, const json_t *doc)
{
  const char *item = PQgetvalue(res, row, Q_ITEM);
  const struct bg_bli_item *it = bg_bli_item(item);
  json_t *subject = json_pack("{s:s, s:s}", "id", PQgetvalue(res, row, Q_SUBJECT), "national_id_masked",
                              PQgetvalue(res, row, Q_MASKED));
  json_t *j = json_pack(
    "{s:s, s:s, s:s, s:s, s:s?, s:o, s:s, s:{s:s, s:s}, s:s, s:o, s:o, s:o, s:s, s:o, s:s, s:o}", "id",
    PQgetvalue(res, row, Q_ID), "request_id", PQgetvalue(res, row, Q_REQUEST), "registration_no",
    PQgetvalue(res, row, Q_REG_NO), "item", item, "item_name_zh", it ? it->name_zh : NULL, "subject", subject,
    "state", PQgetvalue(res, row, Q_STATE), "querier", "id", PQgetvalue(res, row, Q_QUERIER), "name",
    PQgetvalue(res, row, Q_QUERIER_NAME), "unit_id", PQgetvalue(res, row, Q_UNIT), "external_application_id",
    col(res, row, Q_EXTERNAL), "found", PQgetisnull(res, row, Q_FOUND) ? json_null()
                                                                     : json_boolean(PQgetvalue(res, row, Q_FOUND)[0] == 't'),
    "error_code", col(res, row, Q_ERROR), "created_at", PQgetvalue(res, row, Q_CREATED), "retrieved_at",
    col(res, row, Q_RETRIEVED), "retention_until", PQgetvalue(res, row, Q_RETENTION), "destroyed_at",
    col(res, row, Q_DESTROYED));
  if (doc) {
    json_t *name = json_object_get(doc, "subject_name");
    if (json_is_string(name))
      json_object_set(subject, "name", name);
    json_t *rec = json_object_get(doc, "record");
    json_object_set(j, "data", rec ? rec : json_null());
  }
  return j;
}

json_t *prx_read_result(struct bg_request *r, PGresult *res, int row, const char *role, const char *ext_app_id,
                        json_t *events)
{
  const char *id = PQgetvalue(res, row, Q_ID);
  /* a failed or unfinished query has no data: its record is all there is to see */
  if (strcmp(PQgetvalue(res, row, Q_STATE), "succeeded") != 0)
    return prx_query_json(res, row, NULL);
  size_t len = 0;
  unsigned char *sealed = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, Q_SEALED), &len);
  json_t *doc = sealed ? prx_open(id, PQgetvalue(res, row, Q_ITEM), PQgetvalue(res, row, Q_KID), sealed, len) : NULL;
  PQfreemem(sealed);
  if (!doc)
    return NULL;
  json_t *ev = bg_event_new(r, "bli_query.viewed", "bli_query", id, "success");
  json_t *subject = json_object_get(doc, "subject");
  if (json_is_object(subject))
    json_object_set(ev, "subject", subject);
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "request_id", json_string(PQgetvalue(res, row, Q_REQUEST)));
  json_object_set_new(d, "item", json_string(PQgetvalue(res, row, Q_ITEM)));
  json_object_set_new(d, "viewer_id", json_string(r->token.sub));
  json_object_set_new(d, "viewer_role", json_string(role));
  if (ext_app_id)
    json_object_set_new(d, "external_application_id", json_string(ext_app_id));
  json_array_append_new(events, ev);
  json_t *j = prx_query_json(res, row, doc);
  json_decref(doc);
  return j;
}

char *prx_uuid_array(const json_t *ids)
{
  size_t n = json_array_size(ids), cap = n * 38 + 3;
  char *s = malloc(cap), *p = s;
  if (!s)
    return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) {
    const char *id = json_string_value(json_array_get(ids, i));
    if (!id || strlen(id) != 36) {
      free(s);
      return NULL;
    }
    if (i)
      *p++ = ',';
    memcpy(p, id, 36);
    p += 36;
  }
  *p++ = '}';
  *p = '\0';
  return s;
}

int prx_reads_still_held(struct bg_request *r, const json_t *events)
{
  json_t *ids = json_array();
  size_t i;
  json_t *ev;
  json_array_foreach(events, i, ev)
  {
    json_t *id = json_object_get(json_object_get(ev, "object"), "id");
    json_array_append(ids, id ? id : json_null()); /* a missing one fails prx_uuid_array */
  }
  char today[BG_DATE_LEN], n_s[24];
  bg_date_fmt(bg_now(), today);
  snprintf(n_s, sizeof n_s, "%zu", json_array_size(ids));
  char *arr = prx_uuid_array(ids);
  json_decref(ids);
  if (!arr) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return -1;
  }
  const char *p[] = {arr, today};
  PGresult *res = bg_db_fetch(r, prx.db, "q_held", 2, p);
  free(arr);
  if (!res)
    return -1;
  int held = !strcmp(PQgetvalue(res, 0, 0), n_s);
  PQclear(res);
  return held;
}
