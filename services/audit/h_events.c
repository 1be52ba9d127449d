/* Reading the log: GET /v1/audit/events (a page of JSON, or with Accept: application/x-ndjson
 * a complete range streamed line by line with each event's index and leaf hash) and
 * POST /v1/audit/events/search by subject (the national ID arrives in the body and is hashed
 * here; it never travels in a URL). Readers only; every read is recorded on the log first. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define CHUNK 1000
/* how long an export's next chunk waits for a connection before the stream is cut */
#define EXPORT_WAIT_S 10

struct filters {
  const char *type, *actor_id, *object_kind, *object_id, *from, *to, *subject_hmac;
};

static json_t *filters_json(const struct filters *f)
{
  json_t *j = json_object();
  if (f->type)
    json_object_set_new(j, "type", json_string(f->type));
  if (f->actor_id)
    json_object_set_new(j, "actor_id", json_string(f->actor_id));
  if (f->object_kind)
    json_object_set_new(j, "object_kind", json_string(f->object_kind));
  if (f->object_id)
    json_object_set_new(j, "object_id", json_string(f->object_id));
  if (f->from)
    json_object_set_new(j, "from", json_string(f->from));
  if (f->to)
    json_object_set_new(j, "to", json_string(f->to));
  return j;
}

static PGresult *fetch(struct bg_dbc *c, const struct filters *f, uint64_t from_idx, uint64_t to_idx, int limit)
{
  char a[24], b[24], l[16];
  snprintf(a, sizeof a, "%" PRIu64, from_idx);
  snprintf(b, sizeof b, "%" PRIu64, to_idx);
  snprintf(l, sizeof l, "%d", limit);
  const char *p[] = {a, b, f->type, f->actor_id, f->object_kind, f->object_id, f->from, f->to, f->subject_hmac, l};
  return aud_events_select(c, f->subject_hmac != NULL, p);
}

static json_t *item_json(PGresult *res, int row)
{
  json_t *ev = json_loads(PQgetvalue(res, row, 2), JSON_REJECT_DUPLICATES, NULL);
  return json_pack("{s:I, s:s, s:o}", "index", (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "leaf_hash",
                   PQgetvalue(res, row, 1), "event", ev ? ev : json_null());
}

static char *cursor_make(const char *idx)
{
  char buf[48];
  snprintf(buf, sizeof buf, "idx:%s", idx);
  return bg_b64url_encode(buf, strlen(buf));
}

static bool cursor_parse(const char *cur, uint64_t *after)
{
  size_t n;
  char *raw = strlen(cur) < 64 ? (char *)bg_b64_decode(cur, &n) : NULL;
  long v;
  /* below the largest index: the page starts after it (one more would not fit in a bigint) */
  bool ok = raw && !strncmp(raw, "idx:", 4) && bg_parse_long(raw + 4, 0, INT64_MAX - 1, &v);
  if (ok)
    *after = (uint64_t)v;
  free(raw);
  return ok;
}

/* One page from index `start` on (the log's size caps it). */
static void reply_page(struct bg_request *r, struct bg_dbc *c, const struct filters *f, uint64_t start, int limit)
{
  PGresult *res = fetch(c, f, start, (uint64_t)INT64_MAX, limit + 1);
  if (!res) {
    bg_db_failed(r, c);
    return;
  }
  int n = PQntuples(res), take = n > limit ? limit : n;
  json_t *items = json_array();
  for (int i = 0; i < take; i++)
    json_array_append_new(items, item_json(res, i));
  json_t *next = json_null();
  if (n > limit && take > 0) {
    char *cur = cursor_make(PQgetvalue(res, take - 1, 0));
    if (cur) {
      next = json_string(cur);
      free(cur);
    }
  }
  PQclear(res);
  bg_reply_json(r, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

static bool time_param(struct bg_request *r, const char *name, const char **out)
{
  const char *s = bg_req_query(r, name);
  time_t t;
  if (s && !bg_time_parse(s, &t)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, name, "format", "must be an RFC 3339 time");
    return false;
  }
  *out = s;
  return true;
}

static bool text_param(struct bg_request *r, const char *name, size_t max, const char **out)
{
  const char *s = bg_req_query(r, name);
  if (s && (!*s || strlen(s) > max)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, name, "length", "must not be empty or too long");
    return false;
  }
  *out = s;
  return true;
}

/* Accept: JSON (the default), or NDJSON for an export; anything else is 406. */
static int wanted_format(struct bg_request *r)
{
  const char *a = bg_req_header(r, "Accept");
  if (!a || !*a)
    return 0;
  if (strstr(a, "application/x-ndjson"))
    return 1;
  if (strstr(a, "application/json") || strstr(a, "*/*") || strstr(a, "application/*"))
    return 0;
  return -1;
}

/* ---- the NDJSON export: rows fetched CHUNK at a time while the client reads ---- */

/* A stream lasts as long as its reader takes, and a reader may take hours: each chunk is read on
 * a connection taken for that read alone, so a stream waiting on its reader holds none (a few
 * slow readers held the whole pool, and every request of the service waited, the intake too --
 * every service's audit append, without which the whole system fails closed). And however many
 * exports run, their reads take at most half the pool at once, so the intake and every other
 * request always find a connection. The rows below the export's end were committed before it
 * began and the log is append-only, so reads at different times on different connections still
 * make one export of the log as it was at its start. */
static pthread_mutex_t export_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t export_cv = PTHREAD_COND_INITIALIZER;
static int export_reading;

static void export_share_leave(void)
{
  pthread_mutex_lock(&export_mu);
  export_reading--;
  pthread_cond_signal(&export_cv);
  pthread_mutex_unlock(&export_mu);
}

/* A connection for one chunk's read, or NULL after EXPORT_WAIT_S. */
static struct bg_dbc *export_conn_acquire(void)
{
  int share = aud.db_pool / 2 > 0 ? aud.db_pool / 2 : 1;
  struct timespec t0, until;
  clock_gettime(CLOCK_REALTIME, &t0);
  until = t0;
  until.tv_sec += EXPORT_WAIT_S;
  int rc = 0;
  pthread_mutex_lock(&export_mu);
  while (export_reading >= share && rc == 0)
    rc = pthread_cond_timedwait(&export_cv, &export_mu, &until);
  bool mine = export_reading < share;
  if (mine)
    export_reading++;
  pthread_mutex_unlock(&export_mu);
  if (!mine)
    return NULL;
  struct timespec t1;
  clock_gettime(CLOCK_REALTIME, &t1);
  long left = (until.tv_sec - t1.tv_sec) * 1000L + (until.tv_nsec - t1.tv_nsec) / 1000000L;
  struct bg_dbc *c = bg_db_acquire(aud.db, left > 0 ? (int)left : 0);
  if (!c)
    export_share_leave();
  return c;
}

static void export_conn_release(struct bg_dbc *c)
{
  bg_db_release(c);
  export_share_leave();
}

struct export {
  struct filters f;
  char *strs[7]; /* owned copies of the filter strings */
  uint64_t next, end;
  char *buf;
  size_t len, off, cap;
  bool done;
};

static void export_free(void *arg)
{
  struct export *x = arg;
  if (!x)
    return;
  for (int i = 0; i < 7; i++)
    free(x->strs[i]);
  free(x->buf);
  free(x);
}

static bool export_add(struct export *x, const char *s, size_t n)
{
  if (x->len + n > x->cap) {
    size_t cap = x->cap ? x->cap : 1 << 16;
    while (cap < x->len + n)
      cap *= 2;
    char *nb = realloc(x->buf, cap);
    if (!nb)
      return false;
    x->buf = nb;
    x->cap = cap;
  }
  memcpy(x->buf + x->len, s, n);
  x->len += n;
  return true;
}

static bool export_refill(struct export *x)
{
  x->len = x->off = 0;
  if (x->next >= x->end) {
    x->done = true;
    return true;
  }
  struct bg_dbc *c = export_conn_acquire();
  if (!c) {
    bg_error("export stopped: no database connection for its next rows within %d s", EXPORT_WAIT_S);
    return false;
  }
  PGresult *res = fetch(c, &x->f, x->next, x->end, CHUNK);
  export_conn_release(c);
  if (!res)
    return false;
  int n = PQntuples(res);
  bool ok = true;
  for (int i = 0; ok && i < n; i++) {
    char head[160];
    int hl = snprintf(head, sizeof head, "{\"index\":%s,\"leaf_hash\":\"%s\",\"event\":", PQgetvalue(res, i, 0),
                      PQgetvalue(res, i, 1));
    ok = hl > 0 && (size_t)hl < sizeof head && export_add(x, head, (size_t)hl) &&
         export_add(x, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)) && export_add(x, "}\n", 2);
  }
  if (n < CHUNK)
    x->next = x->end;
  else
    x->next = strtoull(PQgetvalue(res, n - 1, 0), NULL, 10) + 1;
  if (n == 0)
    x->done = true;
  PQclear(res);
  return ok;
}

static long export_read(void *arg, uint64_t pos, char *out, size_t max)
{
  struct export *x = arg;
  while (x->off >= x->len) {
    if (x->done)
      return -1; /* end of stream */
    if (!export_refill(x)) {
      bg_error("export stopped: the database failed mid-stream");
      return -2; /* the connection is cut: the client sees an incomplete export */
    }
    if (x->done && x->len == 0)
      return -1;
  }
  size_t n = x->len - x->off < max ? x->len - x->off : max;
  memcpy(out, x->buf + x->off, n);
  x->off += n;
  return (long)n;
}

static const char *keep(struct export *x, int i, const char *s)
{
  x->strs[i] = s ? strdup(s) : NULL;
  return x->strs[i];
}

static void export_ndjson(struct bg_request *r, const struct filters *f)
{
  /* The range: [from_index, tree_size), tree_size defaulting to the latest signed tree head so
   * the export can be checked against it at once. */
  long from = 0, size = -1;
  const char *fs = bg_req_query(r, "from_index"), *ss = bg_req_query(r, "tree_size");
  if (fs && !bg_parse_long(fs, 0, INT64_MAX, &from)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "from_index", "range", "must be a non-negative integer");
    return;
  }
  if (ss && !bg_parse_long(ss, 0, INT64_MAX, &size)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "tree_size", "range", "must be a non-negative integer");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  uint64_t cur;
  unsigned char root[AUD_HASH_LEN];
  if (!aud_state(c, &cur, root)) {
    bg_db_failed(r, c);
    bg_db_release(c);
    return;
  }
  if (size < 0) {
    PGresult *res = bg_dbc_exec(c, "aud_sth_latest", 0, NULL, NULL);
    if (!res) {
      bg_db_failed(r, c);
      bg_db_release(c);
      return;
    }
    size = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
  }
  /* given back before the read is recorded (which takes a connection of its own) and the
   * stream starts (which takes one per chunk) */
  bg_db_release(c);
  if ((uint64_t)size > cur) {
    bg_reply_problem(r, BG_P_AUD_TREE_SIZE, "the log has %" PRIu64 " events", cur);
    return;
  }
  json_t *details = json_pack("{s:s, s:I, s:I, s:o}", "format", "ndjson", "from_index", (json_int_t)from, "tree_size",
                              (json_int_t)size, "filters", filters_json(f));
  if (!aud_record_read(r, "audit.events.exported", "success", details, NULL))
    return;
  struct export *x = calloc(1, sizeof *x);
  if (!x) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  x->f.type = keep(x, 0, f->type);
  x->f.actor_id = keep(x, 1, f->actor_id);
  x->f.object_kind = keep(x, 2, f->object_kind);
  x->f.object_id = keep(x, 3, f->object_id);
  x->f.from = keep(x, 4, f->from);
  x->f.to = keep(x, 5, f->to);
  x->f.subject_hmac = keep(x, 6, f->subject_hmac);
  x->next = (uint64_t)from;
  x->end = (uint64_t)size;
  char hdr[24];
  snprintf(hdr, sizeof hdr, "%ld", size);
  bg_reply_header(r, "X-Tree-Size", hdr);
  bg_reply_stream(r, 200, "application/x-ndjson", export_read, export_free, x);
}

void aud_h_events(struct bg_request *r)
{
  int fmt = wanted_format(r);
  if (fmt < 0) {
    bg_reply_problem(r, BG_P_NOT_ACCEPTABLE, "this resource is application/json or application/x-ndjson");
    return;
  }
  if (!aud_is_reader(r)) {
    if (aud_record_read(r, "audit.events.read", "denied", NULL, NULL))
      bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator, IT staff, the Ethics Office and the "
                                          "Director read the audit log");
    return;
  }
  struct filters f = {0};
  if (!text_param(r, "type", 100, &f.type) || !text_param(r, "actor_id", 100, &f.actor_id) ||
      !text_param(r, "object_kind", 64, &f.object_kind) || !text_param(r, "object_id", 200, &f.object_id) ||
      !time_param(r, "from", &f.from) || !time_param(r, "to", &f.to))
    return;
  if (fmt == 1) {
    export_ndjson(r, &f);
    return;
  }
  int limit;
  if (!bg_req_limit(r, &limit))
    return;
  uint64_t start = 0, after;
  const char *cur = bg_req_query(r, "cursor");
  if (cur) {
    if (!cursor_parse(cur, &after)) {
      bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
      return;
    }
    start = after + 1;
  }
  json_t *details = json_pack("{s:s, s:I, s:I, s:o}", "format", "json", "from_index", (json_int_t)start, "limit",
                              (json_int_t)limit, "filters", filters_json(&f));
  if (!aud_record_read(r, "audit.events.read", "success", details, NULL))
    return;
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  reply_page(r, c, &f, start, limit);
  bg_db_release(c);
}

struct search_body {
  const char *national_id, *cursor, *type, *from, *to;
  long limit;
};

void aud_h_search(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct search_body, national_id),
    BG_FIELD("type", BG_F_STRING, false, struct search_body, type, .min = 1, .max = 100),
    BG_FIELD("from", BG_F_STRING, false, struct search_body, from, .min = 1, .max = 40),
    BG_FIELD("to", BG_F_STRING, false, struct search_body, to, .min = 1, .max = 40),
    BG_FIELD("cursor", BG_F_STRING, false, struct search_body, cursor, .min = 1, .max = 64),
    BG_FIELD("limit", BG_F_INT, false, struct search_body, limit, .imin = 1, .imax = 200),
    BG_FIELD_END};
  if (!aud_is_reader(r)) {
    if (aud_record_read(r, "audit.events.searched", "denied", NULL, NULL))
      bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator, IT staff, the Ethics Office and the "
                                          "Director read the audit log");
    return;
  }
  struct search_body b = {.limit = 50};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  time_t t;
  if (b.from && !bg_time_parse(b.from, &t)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "from", "format", "must be an RFC 3339 time");
    return;
  }
  if (b.to && !bg_time_parse(b.to, &t)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "to", "format", "must be an RFC 3339 time");
    return;
  }
  uint64_t start = 0, after;
  if (b.cursor) {
    if (!cursor_parse(b.cursor, &after)) {
      bg_reply_problem(r, BG_P_BAD_CURSOR, NULL);
      return;
    }
    start = after + 1;
  }
  char hmac[65], masked[11];
  if (!bg_id_hmac(b.national_id, hmac)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  bg_twid_mask(b.national_id, masked);
  struct filters f = {.type = b.type, .from = b.from, .to = b.to, .subject_hmac = hmac};
  json_t *details = json_pack("{s:I, s:I, s:o}", "from_index", (json_int_t)start, "limit", (json_int_t)b.limit,
                              "filters", filters_json(&f));
  /* The search itself is about the subject: it is found by the next search for them. */
  json_t *subject = json_pack("{s:s, s:s}", "id_hmac", hmac, "id_masked", masked);
  if (!aud_record_read(r, "audit.events.searched", "success", details, subject))
    return;
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  reply_page(r, c, &f, start, (int)b.limit);
  bg_db_release(c);
}
