/* Oversight arithmetic (rules 7-9), pure: the bureau's calendar and office hours, a quarterly
 * review computed from events of the log, and an inspection's reproducible sample. The
 * handlers fetch the events; everything that decides what the review says is here, so it can
 * be tested without a database. */
#include "oversight.h"
#include "bligate/clock.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- calendar ---- */

bool aud_quarter_bounds(int year, int quarter, time_t *start, time_t *end)
{
  if (year < 1970 || year > 9999 || quarter < 1 || quarter > 4)
    return false;
  struct tm a = {.tm_year = year - 1900, .tm_mon = (quarter - 1) * 3, .tm_mday = 1};
  struct tm b = {.tm_year = (quarter == 4 ? year + 1 : year) - 1900, .tm_mon = quarter == 4 ? 0 : quarter * 3,
                 .tm_mday = 1};
  *start = timegm(&a) - AUD_TZ_OFFSET;
  *end = timegm(&b) - AUD_TZ_OFFSET;
  return true;
}

void aud_quarter_of(time_t t, int *year, int *quarter)
{
  time_t local = t + AUD_TZ_OFFSET;
  struct tm tm;
  gmtime_r(&local, &tm);
  *year = tm.tm_year + 1900;
  *quarter = tm.tm_mon / 3 + 1;
}

bool aud_date_start(const char *date, time_t *out)
{
  long y, m, d;
  char buf[11];
  if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-')
    return false;
  memcpy(buf, date, 11);
  buf[4] = buf[7] = '\0';
  if (!bg_parse_long(buf, 1970, 9999, &y) || !bg_parse_long(buf + 5, 1, 12, &m) || !bg_parse_long(buf + 8, 1, 31, &d))
    return false;
  struct tm tm = {.tm_year = (int)y - 1900, .tm_mon = (int)m - 1, .tm_mday = (int)d};
  time_t t = timegm(&tm);
  struct tm back;
  gmtime_r(&t, &back);
  if (back.tm_mday != (int)d || back.tm_mon != (int)m - 1) /* 2026-02-30 */
    return false;
  *out = t - AUD_TZ_OFFSET;
  return true;
}

void aud_local_fmt(time_t t, char out[32])
{
  time_t local = t + AUD_TZ_OFFSET;
  struct tm tm;
  gmtime_r(&local, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

/* ---- office hours ---- */

static bool parse_hhmm(const char *s, size_t n, int *out)
{
  char buf[6];
  long h, m;
  if (n != 5 || s[2] != ':')
    return false;
  memcpy(buf, s, 5);
  buf[2] = buf[5] = '\0';
  if (!bg_parse_long(buf, 0, 24, &h) || !bg_parse_long(buf + 3, 0, 59, &m) || (h == 24 && m != 0))
    return false;
  *out = (int)(h * 60 + m);
  return true;
}

bool aud_office_hours_parse(const char *days, const char *hours, struct aud_office_hours *out)
{
  struct aud_office_hours oh = {0};
  /* days: ISO weekdays, ranges and lists ("1-5", "1,2,3,4,5", "1-5,6") */
  const char *p = days;
  if (!p || !*p)
    return false;
  while (*p) {
    if (p[0] < '1' || p[0] > '7')
      return false;
    int a = p[0] - '0', b = a;
    p++;
    if (*p == '-') {
      if (p[1] < '1' || p[1] > '7')
        return false;
      b = p[1] - '0';
      p += 2;
    }
    if (b < a)
      return false;
    for (int d = a; d <= b; d++)
      oh.days |= 1u << (d % 7); /* ISO 7 (Sunday) is tm_wday 0 */
    if (*p == ',')
      p++;
    else if (*p)
      return false;
  }
  const char *dash = hours ? strchr(hours, '-') : NULL;
  if (!dash || !parse_hhmm(hours, (size_t)(dash - hours), &oh.start_min) ||
      !parse_hhmm(dash + 1, strlen(dash + 1), &oh.end_min) || oh.start_min >= oh.end_min)
    return false;
  *out = oh;
  return true;
}

bool aud_office_hours_contains(const struct aud_office_hours *oh, time_t t)
{
  time_t local = t + AUD_TZ_OFFSET;
  struct tm tm;
  gmtime_r(&local, &tm);
  int min = tm.tm_hour * 60 + tm.tm_min;
  return (oh->days & (1u << tm.tm_wday)) && min >= oh->start_min && min < oh->end_min;
}

json_t *aud_office_hours_json(const struct aud_office_hours *oh)
{
  json_t *days = json_array();
  for (int iso = 1; iso <= 7; iso++)
    if (oh->days & (1u << (iso % 7)))
      json_array_append_new(days, json_integer(iso));
  char a[16], b[16];
  snprintf(a, sizeof a, "%02d:%02d", oh->start_min / 60, oh->start_min % 60);
  snprintf(b, sizeof b, "%02d:%02d", oh->end_min / 60, oh->end_min % 60);
  return json_pack("{s:s, s:o, s:s, s:s}", "time_zone", "Asia/Taipei", "weekdays", days, "start", a, "end", b);
}

/* ---- the review ---- */

/* Each type a review counts is trusted only from the service that owns it: an event of that
 * type delivered by another client is not evidence of it (and shows up nowhere here). */
static const struct {
  const char *type, *source;
} trusted[] = {
  {"bli_query.executed", "bliproxy"},
  {"bli_query.failed", "bliproxy"},
  {"bli_query.viewed", "bliproxy"},
  {"query_request.submitted", "workflow"},
  {"query_request.decided", "workflow"},
  {"query_request.use_consumed", "workflow"},
  {"query_request.use_released", "workflow"},
  {"external_application.accepted", "workflow"},
  {"grants.changed", "accounts"},
  {"grants.suspended", "accounts"},
  {"account.updated", "accounts"},
  {"account.deactivated", "accounts"},
  {"permission_admin.handover", "accounts"},
};

const char *aud_review_source_of(const char *type)
{
  for (size_t i = 0; type && i < sizeof trusted / sizeof trusted[0]; i++)
    if (!strcmp(trusted[i].type, type))
      return trusted[i].source;
  return NULL;
}

static const char *str(const json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }
static const json_t *obj(const json_t *j, const char *k) { return json_object_get(j, k); }
static const char *dstr(const json_t *ev, const char *k) { return str(obj(ev, "details"), k); }

/* One {index, event} of an input list, if it is a trusted event; its time in *t. */
static const json_t *entry_event(const json_t *entry, json_int_t *index, time_t *t)
{
  const json_t *ev = obj(entry, "event");
  const char *type = str(ev, "type"), *src = aud_review_source_of(type);
  if (!src || !str(ev, "source") || strcmp(src, str(ev, "source")) != 0 || !bg_time_parse(str(ev, "time"), t))
    return NULL;
  *index = json_integer_value(obj(entry, "index"));
  return ev;
}

static bool is(const json_t *ev, const char *type) { return !strcmp(str(ev, "type"), type); }

static json_t *time_json(time_t t)
{
  char ts[BG_TIME_LEN];
  return json_string(bg_time_fmt(t, ts));
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* A count per key, kept in a JSON object; then a list sorted by count (descending) and key. */
static void bump(json_t *counts, const char *key)
{
  if (!key)
    key = "";
  json_t *v = json_object_get(counts, key);
  json_object_set_new(counts, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

struct kc {
  const char *key;
  json_int_t n;
};

static int kc_cmp(const void *a, const void *b)
{
  const struct kc *x = a, *y = b;
  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return strcmp(x->key, y->key);
}

/* extra: per key, an object merged into the row (e.g. a legal basis's law name); may be NULL */
static json_t *count_list(json_t *counts, const char *key_name, json_t *extra)
{
  size_t n = json_object_size(counts), i = 0;
  struct kc *v = calloc(n ? n : 1, sizeof *v);
  json_t *out = json_array();
  if (!v)
    return out;
  const char *k;
  json_t *c;
  json_object_foreach(counts, k, c) v[i++] = (struct kc){k, json_integer_value(c)};
  qsort(v, n, sizeof *v, kc_cmp);
  for (i = 0; i < n; i++) {
    json_t *row = json_pack("{s:o, s:I}", key_name, *v[i].key ? json_string(v[i].key) : json_null(), "count", v[i].n);
    json_t *x = extra ? json_object_get(extra, v[i].key) : NULL;
    if (x)
      json_object_update(row, x);
    json_array_append_new(out, row);
  }
  free(v);
  return out;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* A JSON object used as a set, turned into a sorted array of its keys. */
static json_t *sorted_keys(const json_t *set)
{
  size_t n = json_object_size(set), i = 0;
  const char **v = calloc(n ? n : 1, sizeof *v);
  json_t *out = json_array();
  if (!v)
    return out;
  const char *k;
  json_t *x;
  json_object_foreach((json_t *)set, k, x) v[i++] = k;
  qsort(v, n, sizeof *v, cmp_str);
  for (i = 0; i < n; i++)
    json_array_append_new(out, json_string(v[i]));
  free(v);
  return out;
}

static json_t *subject_of(const json_t *ev)
{
  const json_t *s = obj(ev, "subject");
  return json_is_object(s) ? json_pack("{s:o, s:o}", "id_hmac", str_or_null(str(s, "id_hmac")), "id_masked",
                                       str_or_null(str(s, "id_masked")))
                           : json_null();
}

/* -- queries, office hours, the same subject under different requests -- */

static void review_queries(const struct aud_review_in *in, json_t *out, json_t *anomalies)
{
  json_t *by_querier = json_object(), *by_unit = json_object(), *by_item = json_object(), *by_lb = json_object();
  json_t *lb_extra = json_object(), *subjects = json_object(), *ooh = json_array();
  json_int_t total = 0, failed = 0;
  size_t i;
  const json_t *entry;
  json_array_foreach(in->usage, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    if (!ev || t < in->start || t >= in->end)
      continue;
    if (is(ev, "bli_query.failed")) {
      failed++;
      continue;
    }
    if (!is(ev, "bli_query.executed"))
      continue;
    total++;
    bump(by_querier, dstr(ev, "querier_id"));
    bump(by_unit, dstr(ev, "unit_id"));
    bump(by_item, dstr(ev, "item"));
    const json_t *lb = obj(obj(ev, "purpose"), "legal_basis");
    const char *code = str(lb, "code");
    bump(by_lb, code);
    if (code && !json_object_get(lb_extra, code))
      json_object_set_new(lb_extra, code, json_pack("{s:o, s:o}", "legal_basis_id", str_or_null(str(lb, "id")),
                                                    "law_name", str_or_null(str(lb, "law_name"))));
    if (!aud_office_hours_contains(in->office, t)) {
      char local[32];
      aud_local_fmt(t, local);
      json_array_append_new(ooh, json_pack("{s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "index", index, "time",
                                           time_json(t), "local_time", local, "query_id",
                                           str_or_null(str(obj(ev, "object"), "id")), "querier_id",
                                           str_or_null(dstr(ev, "querier_id")), "unit_id",
                                           str_or_null(dstr(ev, "unit_id")), "item", str_or_null(dstr(ev, "item")),
                                           "request_id", str_or_null(dstr(ev, "request_id"))));
    }
    const char *hmac = str(obj(ev, "subject"), "id_hmac");
    if (hmac) {
      json_t *g = json_object_get(subjects, hmac);
      if (!g) {
        g = json_pack("{s:o, s:{}, s:{}, s:[], s:I}", "subject", subject_of(ev), "requests", "queriers", "indices",
                      "first", index);
        json_object_set_new(subjects, hmac, g);
      }
      const char *rq = dstr(ev, "request_id"), *qr = dstr(ev, "querier_id");
      if (rq)
        json_object_set_new(json_object_get(g, "requests"), rq, json_true());
      if (qr)
        json_object_set_new(json_object_get(g, "queriers"), qr, json_true());
      json_array_append_new(json_object_get(g, "indices"), json_integer(index));
    }
  }
  json_object_set_new(out, "queries",
                      json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}", "total", total, "failed", failed, "by_querier",
                                count_list(by_querier, "querier_id", NULL), "by_unit",
                                count_list(by_unit, "unit_id", NULL), "by_item", count_list(by_item, "item", NULL),
                                "by_legal_basis", count_list(by_lb, "code", lb_extra)));
  /* the same person queried under more than one registration: each may be lawful, together
   * they are worth a look (purpose limitation, rule 4) */
  json_t *same = json_array();
  const char *k;
  json_t *g;
  json_object_foreach(subjects, k, g)
  {
    if (json_object_size(json_object_get(g, "requests")) < 2)
      continue;
    json_array_append_new(same, json_pack("{s:O, s:o, s:o, s:O, s:O}", "subject", json_object_get(g, "subject"),
                                          "request_ids", sorted_keys(json_object_get(g, "requests")), "querier_ids",
                                          sorted_keys(json_object_get(g, "queriers")), "query_indices",
                                          json_object_get(g, "indices"), "first", json_object_get(g, "first")));
  }
  /* in log order of the first query */
  size_t n = json_array_size(same);
  for (size_t a = 1; a < n; a++)
    for (size_t b = a; b > 0; b--) {
      json_t *x = json_array_get(same, b - 1), *y = json_array_get(same, b);
      if (json_integer_value(json_object_get(x, "first")) <= json_integer_value(json_object_get(y, "first")))
        break;
      json_incref(x);
      json_array_set(same, b - 1, y);
      json_array_set_new(same, b, x);
    }
  json_array_foreach(same, i, g) json_object_del(g, "first");
  json_object_set_new(anomalies, "out_of_office_hours", ooh);
  json_object_set_new(anomalies, "same_subject_multiple_requests", same);
  json_decref(by_querier);
  json_decref(by_unit);
  json_decref(by_item);
  json_decref(by_lb);
  json_decref(lb_extra);
  json_decref(subjects);
}

/* -- reconciliation of registered uses against executed BLI calls (bliproxy/EVENTS.md) -- */

static json_t *use_record(json_t *uses, const char *cid)
{
  json_t *u = json_object_get(uses, cid);
  if (!u) {
    u = json_pack("{s:n, s:i, s:[], s:[], s:[], s:I}", "consumed", "released", 0, "executed", "failed", "indices",
                  "anchor", (json_int_t)-1);
    json_object_set_new(uses, cid, u);
  }
  return u;
}

static void difference(json_t *list, const char *kind, const char *cid, const json_t *u, const json_t *sample)
{
  json_array_append_new(
    list, json_pack("{s:s, s:o, s:o, s:o, s:o, s:O, s:I}", "kind", kind, "consumption_id", str_or_null(cid),
                    "request_id", str_or_null(dstr(sample, "request_id")), "querier_id",
                    str_or_null(dstr(sample, "querier_id")), "item", str_or_null(dstr(sample, "item")), "indices",
                    json_object_get(u, "indices"), "first_index", json_integer_value(json_object_get(u, "first"))));
}

static int diff_cmp(const void *a, const void *b)
{
  json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "first_index"));
  json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "first_index"));
  return x < y ? -1 : x > y;
}

static json_t *sort_by_first(json_t *list)
{
  size_t n = json_array_size(list);
  json_t **v = calloc(n ? n : 1, sizeof *v);
  json_t *out = json_array();
  if (!v) {
    json_decref(out);
    return list;
  }
  for (size_t i = 0; i < n; i++)
    v[i] = json_array_get(list, i);
  qsort(v, n, sizeof *v, diff_cmp);
  for (size_t i = 0; i < n; i++) {
    json_object_del(v[i], "first_index");
    json_array_append(out, v[i]);
  }
  free(v);
  json_decref(list);
  return out;
}

static void review_reconcile(const struct aud_review_in *in, json_t *out, json_t *anomalies)
{
  json_t *uses = json_object(), *loose = json_array();
  size_t i;
  const json_t *entry;
  json_array_foreach(in->usage, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    if (!ev)
      continue;
    const char *cid = dstr(ev, "consumption_id");
    bool consumed = is(ev, "query_request.use_consumed"), released = is(ev, "query_request.use_released");
    bool executed = is(ev, "bli_query.executed"), failed = is(ev, "bli_query.failed");
    if (!consumed && !released && !executed && !failed)
      continue;
    if (!cid) {
      /* a query or use that names no consumption cannot be matched: a difference of its own */
      if ((executed || failed) && t >= in->start && t < in->end)
        json_array_append_new(loose, json_pack("{s:I, s:O}", "index", index, "event", obj(entry, "event")));
      continue;
    }
    json_t *u = use_record(uses, cid);
    json_array_append_new(json_object_get(u, "indices"), json_integer(index));
    if (!json_object_get(u, "first"))
      json_object_set_new(u, "first", json_integer(index));
    if (consumed) {
      json_object_set_new(u, "consumed", json_pack("{s:I, s:O}", "index", index, "event", ev));
      json_object_set_new(u, "anchor", json_integer((json_int_t)t));
    } else if (released) {
      json_object_set_new(u, "released", json_integer(json_integer_value(json_object_get(u, "released")) + 1));
    } else {
      json_array_append_new(json_object_get(u, executed ? "executed" : "failed"),
                            json_pack("{s:I, s:O}", "index", index, "event", ev));
    }
    /* a consumption belongs to the quarter of its use; one without a use to its first event */
    if (!consumed && !json_object_get(u, "other_time"))
      json_object_set_new(u, "other_time", json_integer((json_int_t)t));
  }
  json_t *diffs = json_array(), *without = json_array();
  json_int_t n_consumed = 0, n_released = 0, n_executed = 0, n_failed = 0, n_matched = 0;
  const char *cid;
  json_t *u;
  json_object_foreach(uses, cid, u)
  {
    json_int_t anchor = json_integer_value(json_object_get(u, "anchor"));
    if (anchor < 0)
      anchor = json_integer_value(json_object_get(u, "other_time"));
    if (anchor < (json_int_t)in->start || anchor >= (json_int_t)in->end)
      continue;
    const json_t *c = json_object_get(u, "consumed");
    bool consumed = !json_is_null(c);
    json_int_t rel = json_integer_value(json_object_get(u, "released"));
    size_t ex = json_array_size(json_object_get(u, "executed")), fa = json_array_size(json_object_get(u, "failed"));
    n_consumed += consumed;
    n_released += consumed && rel > 0;
    n_executed += (json_int_t)ex;
    n_failed += (json_int_t)fa;
    const json_t *sample = consumed ? obj(c, "event")
                           : ex     ? obj(json_array_get(json_object_get(u, "executed"), 0), "event")
                                    : obj(json_array_get(json_object_get(u, "failed"), 0), "event");
    if (!consumed) {
      difference(diffs, ex ? "query_without_use" : rel ? "release_without_use" : "failed_query_without_use", cid, u,
                 sample);
      continue;
    }
    if (rel > 1)
      difference(diffs, "released_more_than_once", cid, u, sample);
    if (ex > 1)
      difference(diffs, "multiple_queries", cid, u, sample);
    if (rel > 0) {
      /* given back: no data may have been taken (a query that ran must have failed) */
      if (ex > fa)
        difference(diffs, "released_but_executed", cid, u, sample);
      continue;
    }
    if (ex == 0 && fa == 0) {
      difference(diffs, "use_without_query", cid, u, sample);
      json_int_t t = json_integer_value(json_object_get(u, "anchor"));
      json_array_append_new(without, json_pack("{s:I, s:o, s:s, s:o, s:o, s:o, s:o}", "index",
                                               json_integer_value(obj(c, "index")), "time", time_json((time_t)t),
                                               "consumption_id", cid, "request_id",
                                               str_or_null(str(obj(sample, "object"), "id")), "querier_id",
                                               str_or_null(dstr(sample, "querier_id")), "item",
                                               str_or_null(dstr(sample, "item")), "subject", subject_of(sample)));
    } else if (fa > 0) {
      difference(diffs, "failed_not_released", cid, u, sample);
    } else if (ex == 1) {
      n_matched++;
    }
  }
  json_array_foreach(loose, i, entry)
  {
    const json_t *ev = obj(entry, "event");
    json_t *u1 = json_pack("{s:[I], s:I}", "indices", json_integer_value(obj(entry, "index")), "first",
                           json_integer_value(obj(entry, "index")));
    difference(diffs, "query_without_consumption_id", NULL, u1, ev);
    json_decref(u1);
    if (is(ev, "bli_query.executed"))
      n_executed++;
    else
      n_failed++;
  }
  /* differences name the request from the consumption's event (object.id) or the query's details */
  json_array_foreach(diffs, i, u)
  {
    if (json_is_null(json_object_get(u, "request_id"))) {
      const char *c2 = str(u, "consumption_id");
      const json_t *rec = c2 ? json_object_get(uses, c2) : NULL;
      const json_t *ce = rec ? obj(json_object_get(rec, "consumed"), "event") : NULL;
      if (ce && str(obj(ce, "object"), "id"))
        json_object_set_new(u, "request_id", json_string(str(obj(ce, "object"), "id")));
    }
  }
  diffs = sort_by_first(diffs);
  json_object_set_new(out, "reconciliation",
                      json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "uses_consumed", n_consumed, "uses_released",
                                n_released, "queries_executed", n_executed, "queries_failed", n_failed, "matched",
                                n_matched, "balanced", json_array_size(diffs) == 0, "differences", diffs));
  json_object_set_new(anomalies, "uses_without_query", without);
  json_decref(uses);
  json_decref(loose);
}

/* -- registrations approved in the quarter and never used -- */

static void review_unused_registrations(const struct aud_review_in *in, json_t *anomalies)
{
  /* per request: net uses (consumed - released), the querier named at submission and the form
   * it came by (a Form 3 acceptance's linked request says F3 in its purpose) */
  json_t *net = json_object(), *querier = json_object(), *form = json_object();
  size_t i;
  const json_t *entry;
  json_array_foreach(in->request_events, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    const char *rq = ev ? str(obj(ev, "object"), "id") : NULL;
    if (!rq)
      continue;
    json_int_t n = json_integer_value(json_object_get(net, rq));
    if (is(ev, "query_request.use_consumed"))
      json_object_set_new(net, rq, json_integer(n + 1));
    else if (is(ev, "query_request.use_released"))
      json_object_set_new(net, rq, json_integer(n - 1));
    else if (is(ev, "query_request.submitted")) {
      if (dstr(ev, "querier_id"))
        json_object_set_new(querier, rq, json_string(dstr(ev, "querier_id")));
      if (str(obj(ev, "purpose"), "form"))
        json_object_set_new(form, rq, json_string(str(obj(ev, "purpose"), "form")));
    }
  }
  json_t *never = json_array(), *seen = json_object();
  json_array_foreach(in->approvals, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    if (!ev || t < in->start || t >= in->end)
      continue;
    /* The approval is the supervisor's decision, for a Form 3's linked request too: accepting
     * an application only creates that request, pending, and its supervisor may reject it. */
    if (!is(ev, "query_request.decided") || !dstr(ev, "decision") || strcmp(dstr(ev, "decision"), "approve") != 0)
      continue;
    const char *rq = str(obj(ev, "object"), "id"), *reg = dstr(ev, "registration_no");
    const char *via = json_string_value(json_object_get(form, rq ? rq : ""));
    if (!via || strcmp(via, "F3") != 0)
      via = "F2";
    if (!rq || json_object_get(seen, rq))
      continue;
    json_object_set_new(seen, rq, json_true());
    if (json_integer_value(json_object_get(net, rq)) > 0)
      continue;
    const char *q = json_string_value(json_object_get(querier, rq));
    json_array_append_new(never, json_pack("{s:I, s:o, s:s, s:s, s:o, s:o}", "index", index, "approved_at",
                                           time_json(t), "request_id", rq, "form", via, "registration_no",
                                           str_or_null(reg), "querier_id", str_or_null(q)));
  }
  json_object_set_new(anomalies, "approved_never_used", never);
  json_decref(net);
  json_decref(querier);
  json_decref(form);
  json_decref(seen);
}

/* -- permissions: changes in the quarter, grants held (unused 90 days), unit changes -- */

/* grants[account][item] = {status, since (date), application_id} rebuilt from accounts' events */
static json_t *grant_of(json_t *grants, const char *account, const char *item)
{
  json_t *a = json_object_get(grants, account);
  if (!a) {
    a = json_object();
    json_object_set_new(grants, account, a);
  }
  return json_object_get(a, item);
}

static void grant_set(json_t *grants, const char *account, const char *item, const char *status, const char *since,
                      const char *app)
{
  json_t *a = json_object_get(grants, account);
  if (!a) {
    a = json_object();
    json_object_set_new(grants, account, a);
  }
  json_t *g = json_object_get(a, item);
  if (!g) {
    json_object_set_new(a, item, json_pack("{s:s, s:o, s:o}", "status", status, "since", str_or_null(since),
                                           "application_id", str_or_null(app)));
    return;
  }
  json_object_set_new(g, "status", json_string(status));
  if (since)
    json_object_set_new(g, "since", json_string(since));
  if (app)
    json_object_set_new(g, "application_id", json_string(app));
}

/* the items an account holds now (not revoked, not suspended) */
static json_t *held(json_t *grants, const char *account)
{
  json_t *set = json_object();
  const char *item;
  json_t *g;
  json_object_foreach(json_object_get(grants, account), item, g) if (!strcmp(str(g, "status"), "active"))
    json_object_set_new(set, item, json_true());
  json_t *out = sorted_keys(set);
  json_decref(set);
  return out;
}

static void suspend_items(json_t *grants, const char *account, const json_t *items)
{
  size_t i;
  const json_t *v;
  json_array_foreach(items, i, v)
  {
    /* suspension lists are items (strings), or rows naming the item */
    const char *item = json_is_string(v) ? json_string_value(v) : str(v, "item");
    json_t *g = item ? grant_of(grants, account, item) : NULL;
    if (g && !strcmp(str(g, "status"), "active"))
      json_object_set_new(g, "status", json_string("suspended"));
  }
}

static bool permission_change(const json_t *ev)
{
  if (!is(ev, "account.updated"))
    return true;
  const json_t *ch = obj(obj(ev, "details"), "changes");
  return obj(ch, "roles") || obj(ch, "unit_id") || obj(ch, "title") || obj(obj(ev, "details"), "change_of_duties");
}

static void review_permissions(const struct aud_review_in *in, json_t *out, json_t *anomalies, json_t *used)
{
  json_t *grants = json_object(), *changes = json_array(), *moved = json_array();
  size_t i;
  const json_t *entry;
  json_array_foreach(in->permissions, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    if (!ev || t >= in->end)
      continue;
    const char *account = str(obj(ev, "object"), "id");
    const json_t *d = obj(ev, "details");
    bool in_quarter = t >= in->start;
    if (!account)
      continue;
    if (in_quarter && permission_change(ev)) {
      const json_t *actor = obj(ev, "actor");
      const char *by = str(actor, "account_id") ? str(actor, "account_id") : str(actor, "client_id");
      json_array_append_new(changes, json_pack("{s:I, s:o, s:s, s:s, s:o, s:O}", "index", index, "time", time_json(t),
                                               "type", str(ev, "type"), "account_id", account, "actor_id",
                                               str_or_null(by), "details", d ? d : json_null()));
    }
    if (is(ev, "grants.changed")) {
      size_t j;
      const json_t *v;
      json_array_foreach(obj(d, "revoked_items"), j, v) if (json_is_string(v))
        grant_set(grants, account, json_string_value(v), "revoked", NULL, NULL);
      json_array_foreach(obj(d, "granted_items"), j, v)
      {
        if (!json_is_string(v))
          continue;
        json_t *g = grant_of(grants, account, json_string_value(v));
        /* an item already held keeps its date: re-listing it changes nothing in accounts */
        if (g && !strcmp(str(g, "status"), "active"))
          continue;
        grant_set(grants, account, json_string_value(v), "active", str(d, "effective_date"),
                  str(d, "application_id"));
      }
    } else if (is(ev, "grants.suspended")) {
      suspend_items(grants, account, obj(d, "items"));
    } else if (is(ev, "account.deactivated")) {
      const char *item;
      json_t *g;
      json_object_foreach(json_object_get(grants, account), item, g)
        json_object_set_new(g, "status", json_string("revoked"));
    } else if (is(ev, "account.updated")) {
      const json_t *unit = obj(obj(d, "changes"), "unit_id");
      const json_t *cod = obj(d, "change_of_duties");
      json_t *h = held(grants, account);
      if (in_quarter && unit && json_array_size(h) > 0)
        json_array_append_new(moved, json_pack("{s:I, s:o, s:s, s:o, s:o, s:O, s:o}", "index", index, "time",
                                               time_json(t), "account_id", account, "from_unit_id",
                                               str_or_null(str(unit, "from")), "to_unit_id",
                                               str_or_null(str(unit, "to")), "items_held", h, "grants",
                                               str_or_null(str(cod, "grants"))));
      json_decref(h);
      if (cod && str(cod, "grants") && !strcmp(str(cod, "grants"), "suspended"))
        suspend_items(grants, account, obj(cod, "items"));
    }
  }
  /* active at the quarter's end, in force for 90 days or more, and not queried in those days */
  time_t cutoff = in->end - AUD_UNUSED_DAYS * AUD_DAY;
  json_t *unused = json_array();
  json_t *accounts_sorted = sorted_keys(grants);
  json_t *acc;
  json_array_foreach(accounts_sorted, i, acc)
  {
    const char *account = json_string_value(acc);
    json_t *items = held(grants, account);
    size_t j;
    json_t *it;
    json_array_foreach(items, j, it)
    {
      const char *item = json_string_value(it);
      const json_t *g = grant_of(grants, account, item);
      time_t since;
      if (!str(g, "since") || !aud_date_start(str(g, "since"), &since) || since > cutoff)
        continue;
      char key[160];
      snprintf(key, sizeof key, "%s|%s", account, item);
      if (json_object_get(used, key))
        continue;
      json_array_append_new(unused, json_pack("{s:s, s:s, s:s, s:O, s:n}", "account_id", account, "item", item,
                                              "effective_date", str(g, "since"), "application_id",
                                              json_object_get(g, "application_id"), "last_used_at"));
    }
    json_decref(items);
  }
  json_decref(accounts_sorted);
  json_object_set_new(out, "permission_changes", changes);
  json_object_set_new(out, "unused_grants", unused);
  json_object_set_new(anomalies, "unit_changes_with_grants", moved);
  json_decref(grants);
}

json_t *aud_review_build(const struct aud_review_in *in)
{
  json_t *out = json_object(), *anomalies = json_object();
  /* which (querier, item) pairs were queried in the 90 days before the quarter's end */
  json_t *used = json_object();
  time_t cutoff = in->end - AUD_UNUSED_DAYS * AUD_DAY;
  size_t i;
  const json_t *entry;
  json_array_foreach(in->usage, i, entry)
  {
    json_int_t index;
    time_t t;
    const json_t *ev = entry_event(entry, &index, &t);
    if (!ev || !is(ev, "bli_query.executed") || t < cutoff || t >= in->end || !dstr(ev, "querier_id") ||
        !dstr(ev, "item"))
      continue;
    char key[160];
    snprintf(key, sizeof key, "%s|%s", dstr(ev, "querier_id"), dstr(ev, "item"));
    json_object_set_new(used, key, json_true());
  }
  review_queries(in, out, anomalies);
  review_reconcile(in, out, anomalies);
  review_unused_registrations(in, anomalies);
  review_permissions(in, out, anomalies, used);
  json_decref(used);
  json_t *summary = json_object();
  const char *k;
  json_t *v;
  json_int_t total = 0;
  json_object_foreach(anomalies, k, v)
  {
    json_object_set_new(summary, k, json_integer((json_int_t)json_array_size(v)));
    total += (json_int_t)json_array_size(v);
  }
  json_object_set_new(summary, "anomalies", json_integer(total));
  json_object_set_new(summary, "queries", json_integer(json_integer_value(obj(obj(out, "queries"), "total"))));
  json_object_set_new(summary, "permission_changes",
                      json_integer((json_int_t)json_array_size(obj(out, "permission_changes"))));
  json_object_set_new(summary, "unused_grants", json_integer((json_int_t)json_array_size(obj(out, "unused_grants"))));
  json_object_set_new(summary, "reconciliation_differences",
                      json_integer((json_int_t)json_array_size(obj(obj(out, "reconciliation"), "differences"))));
  json_object_set_new(out, "anomalies", anomalies);
  json_object_set_new(out, "summary", summary);
  return out;
}

/* ---- the sample ---- */

struct draw {
  char key[65];
  size_t pos;
};

static int draw_key_cmp(const void *a, const void *b)
{
  const struct draw *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->pos < y->pos ? -1 : x->pos > y->pos);
}

static int draw_pos_cmp(const void *a, const void *b)
{
  const struct draw *x = a, *y = b;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

size_t aud_sample_draw(const char *seed, const char *const *ids, size_t n, size_t k, size_t *out)
{
  if (n == 0 || k == 0)
    return 0;
  struct draw *d = calloc(n, sizeof *d);
  if (!d)
    return 0;
  size_t sl = strlen(seed);
  for (size_t i = 0; i < n; i++) {
    size_t il = strlen(ids[i]);
    char *buf = malloc(sl + 1 + il);
    if (!buf) {
      free(d);
      return 0;
    }
    memcpy(buf, seed, sl);
    buf[sl] = ':';
    memcpy(buf + sl + 1, ids[i], il);
    bg_sha256_hex(buf, sl + 1 + il, d[i].key);
    free(buf);
    d[i].pos = i;
  }
  qsort(d, n, sizeof *d, draw_key_cmp);
  size_t m = k < n ? k : n;
  qsort(d, m, sizeof *d, draw_pos_cmp);
  for (size_t i = 0; i < m; i++)
    out[i] = d[i].pos;
  free(d);
  return m;
}
