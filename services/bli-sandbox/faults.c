/* The sandbox's fault settings and counters. Faults let tests and front-end teams see what the
 * real service does on a bad day: added latency, a share of errors, a share of calls held until
 * the caller gives up, and — for tests that must be exact — "fail the next N calls". Settings
 * come from BLIGATE_SANDBOX_* at start and from PUT /_sandbox/faults, which exists only here. */
#include "sbx.h"
#include "bligate/config.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include "bligate/bli_items.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  long latency_ms, error_status, timeout_ms, fail_next;
  double error_rate, timeout_rate;
} f = {.error_status = 503, .timeout_ms = 10000};
/* by_status by exact code (100..599), so a test can tell a 502 from a 504 */
static unsigned long long calls, by_item[16], by_status[500];

static double rate_env(const char *name)
{
  const char *v = bg_cfg_str(name, "0");
  char *end;
  double d = strtod(v, &end);
  if (*end || !(d >= 0 && d <= 1)) {
    fprintf(stderr, "configuration error: %s must be a number from 0 to 1\n", name);
    exit(2);
  }
  return d;
}

/* 501 would say BLI does not implement the query at all, which no caller should handle as a
 * passing outage; the contract documents these five: 429 is BLI limiting the agency's calls,
 * the others its failures. */
static bool error_status_ok(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

void sbx_faults_init(void)
{
  f.latency_ms = bg_cfg_long("BLIGATE_SANDBOX_LATENCY_MS", 0, 0, 600000);
  f.error_rate = rate_env("BLIGATE_SANDBOX_ERROR_RATE");
  f.error_status = bg_cfg_long("BLIGATE_SANDBOX_ERROR_STATUS", 503, 429, 504);
  if (!error_status_ok(f.error_status)) {
    fprintf(stderr, "configuration error: BLIGATE_SANDBOX_ERROR_STATUS must be 429, 500, 502, 503 or 504\n");
    exit(2);
  }
  f.timeout_rate = rate_env("BLIGATE_SANDBOX_TIMEOUT_RATE");
  f.timeout_ms = bg_cfg_long("BLIGATE_SANDBOX_TIMEOUT_MS", 10000, 0, 600000);
}

/* Simulated latency and held calls wait here, not in nanosleep: a stopping sandbox wakes them
 * (sbx_faults_stop) instead of waiting out a hold of up to ten minutes, which kept it from
 * stopping at all. */
static pthread_cond_t woken = PTHREAD_COND_INITIALIZER;
static bool stopping;

/* true when the wait ran its course, false when the sandbox is stopping */
static bool sleep_ms(long ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&mu);
  while (ms > 0 && !stopping && pthread_cond_timedwait(&woken, &mu, &until) == 0)
    ;
  bool ran = ms <= 0 || !stopping; /* no wait: an answer as usual while the drain lasts */
  pthread_mutex_unlock(&mu);
  return ran;
}

void sbx_faults_stop(void)
{
  pthread_mutex_lock(&mu);
  stopping = true;
  pthread_cond_broadcast(&woken);
  pthread_mutex_unlock(&mu);
}

static double uniform(void)
{
  unsigned r = 0;
  bg_random(&r, sizeof r);
  return (double)r / 4294967296.0;
}

int sbx_fault_for_call(void)
{
  pthread_mutex_lock(&mu);
  long latency = f.latency_ms, hold = f.timeout_ms;
  int fail = 0;
  bool held = false;
  if (f.fail_next > 0) {
    f.fail_next--;
    fail = (int)f.error_status;
  } else if (f.timeout_rate > 0 && uniform() < f.timeout_rate) {
    held = true;
  } else if (f.error_rate > 0 && uniform() < f.error_rate) {
    fail = (int)f.error_status;
  }
  pthread_mutex_unlock(&mu);
  /* a call held past the caller's patience, answered 504 when it may still be listening; a
   * sandbox stopping meanwhile answers 503 at once, as a BLI going down would */
  if (!sleep_ms(held ? hold : latency))
    return 503;
  return held ? 504 : fail;
}

void sbx_count_call(const char *item)
{
  pthread_mutex_lock(&mu);
  calls++;
  for (size_t i = 0; item && i < bg_bli_nitems && i < 16; i++)
    if (!strcmp(bg_bli_items[i].code, item))
      by_item[i]++;
  pthread_mutex_unlock(&mu);
}

void sbx_count_status(int status)
{
  pthread_mutex_lock(&mu);
  if (status >= 100 && status < 600)
    by_status[status - 100]++;
  pthread_mutex_unlock(&mu);
}

static json_t *faults_json(void)
{
  return json_pack("{s:I, s:f, s:I, s:f, s:I, s:I}", "latency_ms", (json_int_t)f.latency_ms, "error_rate", f.error_rate,
                   "error_status", (json_int_t)f.error_status, "timeout_rate", f.timeout_rate, "timeout_ms",
                   (json_int_t)f.timeout_ms, "fail_next", (json_int_t)f.fail_next);
}

void sbx_h_faults_get(struct bg_request *r)
{
  pthread_mutex_lock(&mu);
  json_t *j = faults_json();
  pthread_mutex_unlock(&mu);
  bg_reply_json(r, 200, j);
}

struct faults_body {
  long latency_ms, error_status, timeout_ms, fail_next;
  json_t *error_rate, *timeout_rate;
};

static bool rate_ok(struct bg_request *r, const char *name, json_t *v)
{
  if (!v || (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1))
    return true;
  bg_reply_field_error(r, BG_P_VALIDATION, name, "range", "must be a number from 0 to 1");
  return false;
}

void sbx_h_faults_put(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("latency_ms", BG_F_INT, false, struct faults_body, latency_ms, .imin = 0, .imax = 600000),
    BG_FIELD("error_status", BG_F_INT, false, struct faults_body, error_status, .imin = 429, .imax = 504),
    BG_FIELD("timeout_ms", BG_F_INT, false, struct faults_body, timeout_ms, .imin = 0, .imax = 600000),
    BG_FIELD("fail_next", BG_F_INT, false, struct faults_body, fail_next, .imin = 0, .imax = 1000000),
    BG_FIELD_END};
  /* the rates are numbers from 0 to 1, which the declarative parser does not take: checked
   * here and taken out before it looks at the rest */
  struct faults_body b = {.latency_ms = -1,
                          .error_status = -1,
                          .timeout_ms = -1,
                          .fail_next = -1,
                          .error_rate = json_incref(json_object_get(r->json, "error_rate")),
                          .timeout_rate = json_incref(json_object_get(r->json, "timeout_rate"))};
  json_object_del(r->json, "error_rate");
  json_object_del(r->json, "timeout_rate");
  bool ok = rate_ok(r, "error_rate", b.error_rate) && rate_ok(r, "timeout_rate", b.timeout_rate) &&
            bg_json_parse(r, r->json, spec, &b);
  if (ok && b.error_status >= 0 && !error_status_ok(b.error_status)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "error_status", "enum", "must be 429, 500, 502, 503 or 504");
    ok = false;
  }
  if (!ok) {
    json_decref(b.error_rate);
    json_decref(b.timeout_rate);
    return;
  }
  pthread_mutex_lock(&mu);
  if (b.latency_ms >= 0)
    f.latency_ms = b.latency_ms;
  if (b.error_status >= 0)
    f.error_status = b.error_status;
  if (b.timeout_ms >= 0)
    f.timeout_ms = b.timeout_ms;
  if (b.fail_next >= 0)
    f.fail_next = b.fail_next;
  if (b.error_rate)
    f.error_rate = json_number_value(b.error_rate);
  if (b.timeout_rate)
    f.timeout_rate = json_number_value(b.timeout_rate);
  json_t *j = faults_json();
  pthread_mutex_unlock(&mu);
  json_decref(b.error_rate);
  json_decref(b.timeout_rate);
  bg_reply_json(r, 200, j);
}

void sbx_h_stats(struct bg_request *r)
{
  json_t *items = json_object(), *statuses = json_object();
  pthread_mutex_lock(&mu);
  for (size_t i = 0; i < bg_bli_nitems && i < 16; i++)
    json_object_set_new(items, bg_bli_items[i].code, json_integer((json_int_t)by_item[i]));
  for (int i = 0; i < 500; i++) {
    if (by_status[i]) {
      char code[4];
      snprintf(code, sizeof code, "%d", i + 100);
      json_object_set_new(statuses, code, json_integer((json_int_t)by_status[i]));
    }
  }
  json_int_t total = (json_int_t)calls;
  pthread_mutex_unlock(&mu);
  bg_reply_json(r, 200, json_pack("{s:I, s:o, s:o}", "calls", total, "by_item", items, "by_status", statuses));
}

void sbx_h_reset(struct bg_request *r)
{
  pthread_mutex_lock(&mu);
  calls = 0;
  memset(by_item, 0, sizeof by_item);
  memset(by_status, 0, sizeof by_status);
  f.fail_next = 0;
  pthread_mutex_unlock(&mu);
  bg_reply_empty(r, 204);
}
