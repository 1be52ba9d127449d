/* Unit tests of the oversight arithmetic (services/audit/oversight.c): the bureau's calendar and
 * quarters, office hours, the sample draw (against a vector computed independently in Python),
 * and, over hand-made events, the review's reconciliation (every kind of difference) and its
 * registrations approved and never used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bligate/clock.h"
#include "oversight.h"
#include <string.h>

static time_t t_of(const char *s)
{
  time_t t;
  assert_true(bg_time_parse(s, &t));
  return t;
}

static void quarters(void **state)
{
  time_t a, b;
  char buf[BG_TIME_LEN];
  assert_true(aud_quarter_bounds(2026, 1, &a, &b));
  assert_string_equal(bg_time_fmt(a, buf), "2025-12-31T16:00:00Z");
  assert_string_equal(bg_time_fmt(b, buf), "2026-03-31T16:00:00Z");
  assert_true(aud_quarter_bounds(2026, 4, &a, &b));
  assert_string_equal(bg_time_fmt(a, buf), "2026-09-30T16:00:00Z");
  assert_string_equal(bg_time_fmt(b, buf), "2026-12-31T16:00:00Z");
  assert_false(aud_quarter_bounds(2026, 5, &a, &b));
  assert_false(aud_quarter_bounds(2026, 0, &a, &b));
  int y, q;
  aud_quarter_of(t_of("2026-03-31T16:00:00Z"), &y, &q); /* Taipei midnight of 1 April */
  assert_int_equal(y, 2026);
  assert_int_equal(q, 2);
  aud_quarter_of(t_of("2026-03-31T15:59:59Z"), &y, &q);
  assert_int_equal(q, 1);
  aud_quarter_of(t_of("2026-12-31T16:00:00Z"), &y, &q);
  assert_int_equal(y, 2027);
  assert_int_equal(q, 1);
}

static void dates(void **state)
{
  time_t t;
  char buf[BG_TIME_LEN], local[32];
  assert_true(aud_date_start("2024-02-29", &t));
  assert_string_equal(bg_time_fmt(t, buf), "2024-02-28T16:00:00Z");
  assert_false(aud_date_start("2026-02-29", &t));
  assert_false(aud_date_start("2026-02-30", &t));
  assert_false(aud_date_start("2026-13-01", &t));
  assert_false(aud_date_start("2026-1-01", &t));
  assert_false(aud_date_start(NULL, &t));
  aud_local_fmt(t_of("2026-05-04T12:00:01Z"), local);
  assert_string_equal(local, "2026-05-04T20:00:01+08:00");
}

static void office_hours(void **state)
{
  struct aud_office_hours oh;
  assert_true(aud_office_hours_parse("1-5", "08:00-18:00", &oh));
  /* 2026-05-04 is a Monday */
  assert_true(aud_office_hours_contains(&oh, t_of("2026-05-04T00:00:00Z")));   /* 08:00 */
  assert_false(aud_office_hours_contains(&oh, t_of("2026-05-03T23:59:59Z")));  /* 07:59:59 */
  assert_true(aud_office_hours_contains(&oh, t_of("2026-05-04T09:59:59Z")));   /* 17:59:59 */
  assert_false(aud_office_hours_contains(&oh, t_of("2026-05-04T10:00:00Z")));  /* 18:00 */
  assert_false(aud_office_hours_contains(&oh, t_of("2026-05-09T02:00:00Z")));  /* Saturday 10:00 */
  assert_true(aud_office_hours_contains(&oh, t_of("2026-05-08T02:00:00Z")));   /* Friday 10:00 */
  json_t *j = aud_office_hours_json(&oh);
  char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(s, "{\"end\":\"18:00\",\"start\":\"08:00\",\"time_zone\":\"Asia/Taipei\",\"weekdays\":[1,2,3,4,5]}");
  free(s);
  json_decref(j);
  assert_true(aud_office_hours_parse("1,3,6-7", "07:30-24:00", &oh));
  assert_true(aud_office_hours_contains(&oh, t_of("2026-05-10T15:59:00Z"))); /* Sunday 23:59 */
  assert_false(aud_office_hours_contains(&oh, t_of("2026-05-05T02:00:00Z"))); /* Tuesday */
  const char *bad_days[] = {"", "0-5", "5-1", "1-8", "1;2", "1-", NULL};
  for (int i = 0; bad_days[i]; i++)
    assert_false(aud_office_hours_parse(bad_days[i], "08:00-18:00", &oh));
  const char *bad_hours[] = {"", "8:00-18:00", "08:00-07:00", "08:00-08:00", "08:00-24:01", "08:60-18:00", "08:00",
                             NULL};
  for (int i = 0; bad_hours[i]; i++)
    assert_false(aud_office_hours_parse("1-5", bad_hours[i], &oh));
}

static void sample_draw(void **state)
{
  /* python3: sorted(range(7), key=lambda i: sha256(f"seed-1:{ids[i]}").hexdigest()) == [6,4,1,2,0,3,5] */
  const char *ids[] = {"a", "b", "c", "d", "e", "f", "g"};
  size_t out[7];
  assert_int_equal(aud_sample_draw("seed-1", ids, 7, 3, out), 3);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 4);
  assert_int_equal(out[2], 6);
  assert_int_equal(aud_sample_draw("seed-1", ids, 7, 50, out), 7); /* all of them, in order */
  for (size_t i = 0; i < 7; i++)
    assert_int_equal(out[i], i);
  assert_int_equal(aud_sample_draw("seed-1", ids, 0, 3, out), 0);
  /* any seed: distinct positions in log order */
  size_t other[3];
  assert_int_equal(aud_sample_draw("another seed", ids, 7, 3, other), 3);
  assert_true(other[0] < other[1] && other[1] < other[2] && other[2] < 7);
}

/* {"index": i, "event": {...}} with the fields a review reads */
static json_t *entry(int index, const char *type, const char *source, const char *time, const char *cid,
                     const char *request)
{
  json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:s?}, s:{s:s?, s:s, s:s, s:s}}", "type", type, "source", source,
                         "time", time, "object", "kind", "x", "id", request, "details", "consumption_id", cid,
                         "querier_id", "q1", "unit_id", "u1", "item", "C0101");
  json_object_set_new(json_object_get(ev, "details"), "request_id", json_string(request));
  return json_pack("{s:i, s:o}", "index", index, "event", ev);
}

static const char *kind_of(json_t *diffs, const char *cid)
{
  size_t i;
  json_t *d;
  json_array_foreach(diffs, i, d)
  {
    const char *c = json_string_value(json_object_get(d, "consumption_id"));
    if (c && !strcmp(c, cid))
      return json_string_value(json_object_get(d, "kind"));
  }
  return NULL;
}

static void reconciliation(void **state)
{
  struct aud_office_hours oh;
  aud_office_hours_parse("1-7", "00:00-24:00", &oh);
  time_t start, end;
  aud_quarter_bounds(2026, 2, &start, &end);
  const char *T = "2026-05-04T02:00:00Z", *W = "bliproxy", *F = "workflow";
  json_t *usage = json_array();
  int i = 0;
  /* ok: one use, one query */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, T, "ok", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "ok", "r"));
  /* two queries on one use */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, T, "twice", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "twice", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "twice", "r"));
  /* given back though the query succeeded */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, T, "back", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "back", "r"));
  json_array_append_new(usage, entry(i++, "query_request.use_released", F, T, "back", "r"));
  /* failed and kept */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, T, "kept", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "kept", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.failed", W, T, "kept", "r"));
  /* a release of nothing */
  json_array_append_new(usage, entry(i++, "query_request.use_released", F, T, "ghost", "r"));
  /* failed, released: consistent */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, T, "fine", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, T, "fine", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.failed", W, T, "fine", "r"));
  json_array_append_new(usage, entry(i++, "query_request.use_released", F, T, "fine", "r"));
  /* a query from the wrong source, and one outside the quarter: not there at all */
  json_array_append_new(usage, entry(i++, "bli_query.executed", "accounts", T, "forged", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, "2026-06-30T16:00:00Z", "later", "r"));
  /* a use consumed in the last second of the quarter, queried in the next: matched, counted here */
  json_array_append_new(usage, entry(i++, "query_request.use_consumed", F, "2026-06-30T15:59:59Z", "edge", "r"));
  json_array_append_new(usage, entry(i++, "bli_query.executed", W, "2026-06-30T16:00:01Z", "edge", "r"));
  json_t *none = json_array();
  struct aud_review_in in = {.year = 2026, .quarter = 2, .start = start, .end = end, .office = &oh, .usage = usage,
                             .approvals = none, .request_events = none, .permissions = none};
  json_t *r = aud_review_build(&in);
  json_t *rec = json_object_get(r, "reconciliation");
  json_t *diffs = json_object_get(rec, "differences");
  assert_int_equal(json_array_size(diffs), 4);
  assert_string_equal(kind_of(diffs, "twice"), "multiple_queries");
  assert_string_equal(kind_of(diffs, "back"), "released_but_executed");
  assert_string_equal(kind_of(diffs, "kept"), "failed_not_released");
  assert_string_equal(kind_of(diffs, "ghost"), "release_without_use");
  assert_null(kind_of(diffs, "later"));
  assert_null(kind_of(diffs, "ok"));
  assert_null(kind_of(diffs, "fine"));
  assert_null(kind_of(diffs, "forged"));
  assert_null(kind_of(diffs, "edge"));
  assert_int_equal(json_integer_value(json_object_get(rec, "uses_consumed")), 6);
  assert_int_equal(json_integer_value(json_object_get(rec, "uses_released")), 2);
  assert_int_equal(json_integer_value(json_object_get(rec, "matched")), 2);
  assert_false(json_is_true(json_object_get(rec, "balanced")));
  /* queries in the quarter: ok, twice x2, back, kept, fine (the edge query is in the next one) */
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "queries"), "total")), 6);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "queries"), "failed")), 2);
  json_decref(r);
  json_decref(usage);
  json_decref(none);
}

/* An event about request rq with details d (a JSON object, stolen) and optional purpose form. */
static json_t *req_entry(int index, const char *type, const char *time, const char *rq, json_t *d, const char *form)
{
  json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o}", "type", type, "source", "workflow", "time", time,
                         "object", "kind", "query_request", "id", rq, "details", d);
  if (form)
    json_object_set_new(ev, "purpose", json_pack("{s:s}", "form", form));
  return json_pack("{s:i, s:o}", "index", index, "event", ev);
}

static const json_t *never_used(json_t *list, const char *rq)
{
  size_t i;
  json_t *x;
  json_array_foreach(list, i, x) if (!strcmp(json_string_value(json_object_get(x, "request_id")), rq)) return x;
  return NULL;
}

/* Approved and never used: a supervisor's approval, of a Form 2 or of a Form 3's linked request
 * (form from the submission). A Form 3 acceptance only creates the linked request: one whose
 * supervisor then rejected it was approved by nobody and is not listed. */
static void approved_never_used(void **state)
{
  struct aud_office_hours oh;
  aud_office_hours_parse("1-7", "00:00-24:00", &oh);
  time_t start, end;
  aud_quarter_bounds(2026, 2, &start, &end);
  const char *T = "2026-05-06T02:00:00Z";
  json_t *approvals = json_array(), *requests = json_array(), *none = json_array();
  json_array_append_new(approvals, req_entry(1, "query_request.decided", T, "f2",
                                             json_pack("{s:s, s:s}", "decision", "approve", "registration_no", "F2-1"),
                                             NULL));
  json_array_append_new(approvals, req_entry(2, "query_request.decided", T, "f3",
                                             json_pack("{s:s, s:s}", "decision", "approve", "registration_no", "F2-2"),
                                             NULL));
  json_array_append_new(approvals, req_entry(3, "query_request.decided", T, "rejected",
                                             json_pack("{s:s}", "decision", "reject"), NULL));
  json_array_append_new(approvals, json_pack("{s:i, s:{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s}}}", "index", 4, "event",
                                             "type", "external_application.accepted", "source", "workflow", "time",
                                             T, "object", "kind", "external_application", "id", "app", "details",
                                             "query_request_id", "rejected"));
  json_array_append_new(requests, req_entry(0, "query_request.submitted", T, "f3", json_pack("{s:s}", "querier_id", "q1"),
                                            "F3"));
  json_array_append_new(requests, req_entry(0, "query_request.submitted", T, "f2", json_pack("{s:s}", "querier_id", "q2"),
                                            "F2"));
  struct aud_review_in in = {.year = 2026, .quarter = 2, .start = start, .end = end, .office = &oh, .usage = none,
                             .approvals = approvals, .request_events = requests, .permissions = none};
  json_t *r = aud_review_build(&in);
  json_t *list = json_object_get(json_object_get(r, "anomalies"), "approved_never_used");
  assert_int_equal(json_array_size(list), 2);
  assert_string_equal(json_string_value(json_object_get(never_used(list, "f2"), "form")), "F2");
  assert_string_equal(json_string_value(json_object_get(never_used(list, "f3"), "form")), "F3");
  assert_string_equal(json_string_value(json_object_get(never_used(list, "f3"), "registration_no")), "F2-2");
  assert_string_equal(json_string_value(json_object_get(never_used(list, "f3"), "querier_id")), "q1");
  assert_null(never_used(list, "rejected"));
  json_decref(r);
  json_decref(approvals);
  json_decref(requests);
  json_decref(none);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(quarters),  cmocka_unit_test(dates),          cmocka_unit_test(office_hours),
    cmocka_unit_test(sample_draw), cmocka_unit_test(reconciliation), cmocka_unit_test(approved_never_used),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
