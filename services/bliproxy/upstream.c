/* The BLI client (DESIGN.md §4 step 5). The upstream is a confidential government service
 * that will see our agency's certificate on every call, so the client is strict: mutual TLS,
 * only the configured host (the URL is built from configuration alone; no redirects), connect
 * and total timeouts, at most two retries with jittered exponential backoff and only on
 * timeouts and 502/503/504 (a query is a read: repeating it changes nothing upstream), a cap on
 * concurrent calls, a cap on the response size, and a circuit breaker that stops calling a
 * failing upstream for a while (on the service clock, so tests move it instead of sleeping).
 * The answer is treated as hostile: parsed with duplicates rejected, shape checked. */
#include "prx.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
  char url[512];
  const char *ca_file, *cert_file, *key_file;
  bool https;
  long connect_ms, timeout_ms, backoff_ms;
  int retries, max_concurrent, breaker_failures;
  long breaker_open_ms;
  size_t max_response;
} cfg;

/* breaker: closed (calls flow), open until open_until_us (no calls), then half-open (one trial
 * call at a time decides) */
enum { BRK_CLOSED, BRK_OPEN, BRK_HALF_OPEN };
static pthread_mutex_t brk_mu = PTHREAD_MUTEX_INITIALIZER;
static int brk_state = BRK_CLOSED, brk_fails;
static int64_t brk_open_until_us;
static bool brk_trial;

static atomic_int in_flight;
static atomic_ullong n_ok, n_no_record, n_failed, n_timeout, n_bad, n_open, n_busy, n_retries, n_attempts;

static pthread_key_t handle_key;
static CURLSH *share;
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
  (void)h, (void)a, (void)u;
  pthread_mutex_lock(&share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
  (void)h, (void)u;
  pthread_mutex_unlock(&share_mu[d]);
}

static void free_handle(void *h) { curl_easy_cleanup(h); }

static const char *opt_file(const char *name)
{
  const char *v = bg_cfg_str(name, "");
  return *v ? v : NULL;
}

void prx_upstream_init(void)
{
  const char *base = bg_cfg_str("BLIGATE_BLI_URL", NULL);
  CURLU *u = curl_url();
  char *scheme = NULL, *user = NULL, *query = NULL;
  bool ok = u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            (!strcmp(scheme, "https") || !strcmp(scheme, "http")) &&
            curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
            curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY;
  cfg.https = ok && !strcmp(scheme, "https");
  curl_free(scheme);
  curl_free(user);
  curl_free(query);
  curl_url_cleanup(u);
  size_t n = strlen(base);
  while (n && base[n - 1] == '/')
    n--;
  if (!ok || !bg_fmt(cfg.url, sizeof cfg.url, "%.*s/bli/v1/queries", (int)n, base)) {
    fprintf(stderr, "configuration error: BLIGATE_BLI_URL must be an http(s) URL without user or query\n");
    exit(2);
  }
  cfg.ca_file = opt_file("BLIGATE_BLI_CA_FILE");
  cfg.cert_file = opt_file("BLIGATE_BLI_CLIENT_CERT_FILE");
  cfg.key_file = opt_file("BLIGATE_BLI_CLIENT_KEY_FILE");
  if (!cfg.cert_file != !cfg.key_file) {
    fprintf(stderr, "configuration error: BLIGATE_BLI_CLIENT_CERT_FILE and BLIGATE_BLI_CLIENT_KEY_FILE go together\n");
    exit(2);
  }
  if (cfg.https && !cfg.cert_file)
    bg_warn("BLIGATE_BLI_CLIENT_CERT_FILE is not set: the upstream will refuse us without the agency certificate");
  cfg.connect_ms = bg_cfg_long("BLIGATE_BLI_CONNECT_TIMEOUT_MS", 1000, 10, 60000);
  cfg.timeout_ms = bg_cfg_long("BLIGATE_BLI_TIMEOUT_MS", 5000, 50, 120000);
  cfg.retries = (int)bg_cfg_long("BLIGATE_BLI_RETRIES", 2, 0, 2);
  cfg.backoff_ms = bg_cfg_long("BLIGATE_BLI_BACKOFF_MS", 50, 1, 5000);
  /* The sweep finishes a query pending for PRX_STALE_S as interrupted and gives its use back:
   * a query still asking BLI then would get a second use for one call. Every attempt, every
   * backoff at its longest, and a minute for the record, the audit append and the outcome must
   * fit in that time. */
  long worst_ms = (cfg.retries + 1) * cfg.timeout_ms + 60000;
  for (int k = 0; k < cfg.retries; k++)
    worst_ms += (cfg.backoff_ms << k) * 3 / 2;
  if (worst_ms >= PRX_STALE_S * 1000L) {
    fprintf(stderr,
            "configuration error: BLIGATE_BLI_TIMEOUT_MS, BLIGATE_BLI_RETRIES and BLIGATE_BLI_BACKOFF_MS allow a query"
            " to ask BLI for %ld s, with a minute for the rest; it must stay under %d s, when a pending query counts"
            " as interrupted\n",
            worst_ms / 1000, PRX_STALE_S);
    exit(2);
  }
  cfg.max_concurrent = (int)bg_cfg_long("BLIGATE_BLI_MAX_CONCURRENT", 64, 1, 4096);
  cfg.max_response = (size_t)bg_cfg_long("BLIGATE_BLI_MAX_RESPONSE", 1 << 20, 1024, 64 << 20);
  cfg.breaker_failures = (int)bg_cfg_long("BLIGATE_BLI_BREAKER_FAILURES", 5, 1, 1000);
  cfg.breaker_open_ms = bg_cfg_long("BLIGATE_BLI_BREAKER_OPEN_MS", 30000, 100, 3600000);
  pthread_key_create(&handle_key, free_handle);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&share_mu[i], NULL);
  /* TLS sessions are resumed across the connection threads' handles */
  share = curl_share_init();
  curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
}

/* ---- circuit breaker ---- */

/* May a call go out now? A half-open breaker lets one trial through. */
static bool brk_allow(bool *trial)
{
  *trial = false;
  pthread_mutex_lock(&brk_mu);
  bool ok = true;
  if (brk_state == BRK_OPEN && bg_now_us() >= brk_open_until_us) {
    brk_state = BRK_HALF_OPEN;
    brk_trial = false;
    bg_info("upstream circuit half-open: one trial call");
  }
  if (brk_state == BRK_OPEN)
    ok = false;
  else if (brk_state == BRK_HALF_OPEN) {
    ok = !brk_trial;
    brk_trial = *trial = ok;
  }
  pthread_mutex_unlock(&brk_mu);
  return ok;
}

static void brk_record(bool success, bool trial)
{
  pthread_mutex_lock(&brk_mu);
  if (success) {
    if (brk_state != BRK_CLOSED)
      bg_info("upstream circuit closed");
    brk_state = BRK_CLOSED;
    brk_fails = 0;
  } else if (trial || (brk_state == BRK_CLOSED && ++brk_fails >= cfg.breaker_failures)) {
    brk_state = BRK_OPEN;
    brk_open_until_us = bg_now_us() + (int64_t)cfg.breaker_open_ms * 1000;
    brk_fails = 0;
    bg_warn("upstream circuit open for %ld ms", cfg.breaker_open_ms);
  }
  if (trial)
    brk_trial = false;
  pthread_mutex_unlock(&brk_mu);
}

/* ---- one call ---- */

static CURL *handle(void)
{
  CURL *h = pthread_getspecific(handle_key);
  if (h) {
    curl_easy_reset(h); /* keeps its connection */
  } else if ((h = curl_easy_init())) {
    pthread_setspecific(handle_key, h);
  }
  return h;
}

/* One attempt: the HTTP status (0 on a transport failure, with *timed_out) and the body. */
static long attempt(const char *request_id, const char *body, struct bg_httpc_sink *s, bool *timed_out, char *err,
                    size_t errlen)
{
  *timed_out = false;
  CURL *h = handle();
  if (!h) {
    snprintf(err, errlen, "no curl handle");
    return 0;
  }
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  char line[128];
  if (request_id && bg_fmt(line, sizeof line, "X-Request-Id: %s", request_id))
    hdrs = curl_slist_append(hdrs, line);
  char ebuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, cfg.url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, cfg.https ? "https" : "http");
  curl_easy_setopt(h, CURLOPT_PROXY, ""); /* only the configured host: no proxy from the environment */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_SHARE, share);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg.connect_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg.timeout_ms);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bg_httpc_sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
  if (cfg.https) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg.ca_file)
      curl_easy_setopt(h, CURLOPT_CAINFO, cfg.ca_file);
    if (cfg.cert_file) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, cfg.cert_file);
      curl_easy_setopt(h, CURLOPT_SSLKEY, cfg.key_file);
    }
  }
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  if (rc == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  } else {
    *timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    snprintf(err, errlen, "%s", s->overflow ? "response too large" : ebuf[0] ? ebuf : curl_easy_strerror(rc));
  }
  curl_slist_free_all(hdrs);
  return status;
}

static void backoff(int n)
{
  /* base * 2^n, jittered to 50-150 % so retries of many callers do not arrive together */
  unsigned r = 0;
  bg_random(&r, sizeof r);
  long ms = (cfg.backoff_ms << n) * (50 + (long)(r % 101)) / 100;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

enum prx_up_result prx_upstream_query(const char *request_id, const char *national_id, const char *item,
                                      json_t **record)
{
  *record = NULL;
  if (atomic_fetch_add(&in_flight, 1) >= cfg.max_concurrent) {
    atomic_fetch_sub(&in_flight, 1);
    atomic_fetch_add(&n_busy, 1);
    return PRX_UP_BUSY;
  }
  json_t *req = json_pack("{s:s, s:s}", "national_id", national_id, "item", item);
  char *body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  enum prx_up_result res = PRX_UP_FAILED;
  for (int n = 0; body; n++) {
    bool trial;
    if (!brk_allow(&trial)) {
      res = PRX_UP_OPEN;
      break;
    }
    struct bg_httpc_sink s = {.max = cfg.max_response};
    bool timed_out;
    char err[CURL_ERROR_SIZE + 32] = "";
    atomic_fetch_add(&n_attempts, 1);
    long st = attempt(request_id, body, &s, &timed_out, err, sizeof err);
    bool retryable = timed_out || st == 502 || st == 503 || st == 504;
    if (st == 200 || st == 404) {
      json_error_t je;
      json_t *doc = s.buf ? json_loadb(s.buf, s.len, JSON_REJECT_DUPLICATES, &je) : NULL;
      json_t *rec = json_object_get(doc, "record");
      const char *code = json_string_value(json_object_get(doc, "code"));
      const char *got = json_string_value(json_object_get(doc, "item"));
      /* the answer must be about whom and what was asked: an answer about someone else (BLI
       * mixing up its replies) would be sealed and shown as this person's */
      const char *whom = json_string_value(json_object_get(doc, "national_id_masked"));
      char masked[16] = "";
      bg_twid_mask(national_id, masked);
      if (st == 200 && json_is_object(rec) && got && !strcmp(got, item) && whom && !strcmp(whom, masked)) {
        *record = json_incref(rec);
        res = PRX_UP_OK;
      } else if (st == 404 && code && !strcmp(code, "no-record")) {
        res = PRX_UP_NO_RECORD;
      } else if (st == 200 && json_is_object(rec) && got && !strcmp(got, item)) {
        bg_log(BG_LOG_ERROR, request_id, "BLI's answer names another person than the one asked about; not used");
        res = PRX_UP_BAD;
      } else {
        bg_log(BG_LOG_ERROR, request_id, "BLI answered %ld with a body of an unexpected shape", st);
        res = PRX_UP_BAD;
      }
      json_decref(doc);
      /* an answer in the wrong shape is not the upstream being down */
      brk_record(true, trial);
    } else if (st == 0 && s.overflow) {
      bg_log(BG_LOG_ERROR, request_id, "BLI's answer exceeded %zu bytes", cfg.max_response);
      res = PRX_UP_BAD;
      brk_record(true, trial);
    } else {
      /* 401/403: BLI refused our credentials (the agency certificate): a failure of the
       * upstream link like a 5xx, not a bad answer to this query. 429: BLI is limiting the
       * agency's calls — counted against the breaker, whose pause is what BLI asks for, and not
       * retried at once */
      bool down = st == 0 || st >= 500 || st == 401 || st == 403 || st == 429;
      if (st == 0)
        bg_log(BG_LOG_WARN, request_id, "BLI call failed (attempt %d): %s", n + 1, err);
      else if (st == 401 || st == 403)
        bg_log(BG_LOG_ERROR, request_id, "BLI refused the agency's credentials (%ld); check the client certificate", st);
      else if (st == 429)
        bg_log(BG_LOG_WARN, request_id, "BLI is limiting the agency's calls (429)");
      else
        bg_log(BG_LOG_WARN, request_id, "BLI answered %ld (attempt %d)", st, n + 1);
      res = timed_out ? PRX_UP_TIMEOUT : down ? PRX_UP_FAILED : PRX_UP_BAD;
      brk_record(!down, trial);
    }
    free(s.buf);
    if (res == PRX_UP_OK || res == PRX_UP_NO_RECORD || !retryable || n >= cfg.retries)
      break;
    atomic_fetch_add(&n_retries, 1);
    backoff(n);
  }
  if (body)
    OPENSSL_cleanse(body, strlen(body)); /* it holds the national ID */
  free(body);
  atomic_fetch_sub(&in_flight, 1);
  atomic_ullong *counter[] = {[PRX_UP_OK] = &n_ok, [PRX_UP_NO_RECORD] = &n_no_record, [PRX_UP_FAILED] = &n_failed,
                              [PRX_UP_TIMEOUT] = &n_timeout, [PRX_UP_BAD] = &n_bad, [PRX_UP_OPEN] = &n_open,
                              [PRX_UP_BUSY] = &n_busy};
  atomic_fetch_add(counter[res], 1);
  return res;
}

void prx_upstream_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  (void)ctx;
  pthread_mutex_lock(&brk_mu);
  int state = brk_state;
  pthread_mutex_unlock(&brk_mu);
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_upstream_breaker_state BLI circuit breaker: 0 closed, 1 open, 2 half-open.\n"
                    "# TYPE bligate_upstream_breaker_state gauge\nbligate_upstream_breaker_state %d\n"
                    "# HELP bligate_upstream_in_flight BLI calls in progress.\n"
                    "# TYPE bligate_upstream_in_flight gauge\nbligate_upstream_in_flight %d\n"
                    "# HELP bligate_upstream_attempts_total HTTP attempts made to BLI, retries included.\n"
                    "# TYPE bligate_upstream_attempts_total counter\nbligate_upstream_attempts_total %llu\n"
                    "# HELP bligate_upstream_retries_total Retries after a timeout or 502/503/504.\n"
                    "# TYPE bligate_upstream_retries_total counter\nbligate_upstream_retries_total %llu\n"
                    "# HELP bligate_upstream_queries_total BLI queries by outcome.\n"
                    "# TYPE bligate_upstream_queries_total counter\n"
                    "bligate_upstream_queries_total{outcome=\"ok\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"no_record\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"failed\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"timeout\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"bad_response\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"circuit_open\"} %llu\n"
                    "bligate_upstream_queries_total{outcome=\"busy\"} %llu\n",
                    state == BRK_CLOSED ? 0 : state == BRK_OPEN ? 1 : 2, atomic_load(&in_flight),
                    atomic_load(&n_attempts), atomic_load(&n_retries), atomic_load(&n_ok), atomic_load(&n_no_record),
                    atomic_load(&n_failed), atomic_load(&n_timeout), atomic_load(&n_bad), atomic_load(&n_open),
                    atomic_load(&n_busy));
}
