/* HTTP server on libmicrohttpd (http.h): thread per connection, so handlers may block on
 * libpq and libcurl (PITFALLS.md). Everything common to all endpoints happens here. */
#include "bligate/http.h"
#include "bligate/cidr.h"
#include "bligate/tls.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/idempotency.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_URI 2048
#define NSTATUS 20
#define NBUCKETS 12
static const unsigned status_slots[NSTATUS] = {200, 201, 204, 400, 401, 403, 404, 405, 406, 409,
                                               410, 413, 414, 415, 422, 429, 500, 502, 503, 504};
static const double bucket_le[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

struct route_stats {
  _Atomic uint64_t by_status[NSTATUS + 1]; /* last: any other status */
  _Atomic uint64_t buckets[NBUCKETS + 1];  /* last: +Inf */
  _Atomic uint64_t sum_us;
};

/* Verified tokens by SHA-256: an ES256 verification costs ~40 µs of CPU, a hash ~1 µs, and a
 * client sends the same token for its whole 5 minutes. Claims are re-checked against the
 * clock on every hit; only the signature check is saved. */
#define TOKEN_CACHE 1024
#define TOKEN_LOCKS 16
struct token_entry {
  unsigned char hash[32];
  struct bg_token claims;
  bool used;
};

#define MAX_METRIC_FNS 8
struct bg_server {
  struct token_entry *tokens;
  pthread_mutex_t token_locks[TOKEN_LOCKS];
  struct bg_server_cfg cfg;
  struct MHD_Daemon *d;
  struct route_stats *stats; /* nroutes + 1 (unmatched/builtin) */
  bg_metrics_fn metric_fns[MAX_METRIC_FNS];
  int nmetric_fns;
  _Atomic int inflight;
  _Atomic bool draining; /* after SIGTERM: responses close their connections */
  struct bg_cidr proxies[32]; /* BLIGATE_TRUSTED_PROXIES */
  size_t nproxies;
  struct MHD_OptionItem tls[5]; /* the PEM texts MHD keeps pointers to, freed after it stops */
};

/* ---------- replies ---------- */

static void reset_reply(struct bg_request *r)
{
  json_decref(r->reply);
  r->reply = NULL;
  free(r->raw_reply);
  r->raw_reply = NULL;
}

void bg_reply_json(struct bg_request *r, unsigned status, json_t *body)
{
  if (r->replied) { /* a handler bug; keep the first reply */
    bg_log(BG_LOG_ERROR, r->request_id, "second reply on %s ignored", r->route ? r->route->pattern : r->path);
    json_decref(body);
    return;
  }
  reset_reply(r);
  r->status = status;
  r->reply = body;
  r->content_type = "application/json";
  r->replied = true;
}

void bg_reply_empty(struct bg_request *r, unsigned status) { bg_reply_json(r, status, NULL); }

void bg_reply_text(struct bg_request *r, unsigned status, const char *content_type, char *body, size_t len)
{
  if (r->replied) {
    free(body);
    return;
  }
  reset_reply(r);
  r->status = status;
  r->raw_reply = body;
  r->raw_reply_len = len;
  r->content_type = content_type;
  r->replied = true;
}

void bg_reply_stream(struct bg_request *r, unsigned status, const char *content_type, bg_stream_fn fn,
                     void (*free_fn)(void *ctx), void *ctx)
{
  if (r->replied) {
    if (free_fn)
      free_fn(ctx);
    return;
  }
  reset_reply(r);
  r->status = status;
  r->content_type = content_type;
  r->stream_fn = fn;
  r->stream_free = free_fn;
  r->stream_ctx = ctx;
  r->replied = true;
}

static void problem(struct bg_request *r, enum bg_problem p, const char *detail, json_t *errors)
{
  char type[160];
  snprintf(type, sizeof type, "https://bligate.example/problems/%s", bg_problem_code(p));
  json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title", bg_problem_title(p), "status",
                           (int)bg_problem_status(p), "code", bg_problem_code(p), "instance",
                           r->path ? r->path : "/", "request_id", r->request_id);
  if (detail && *detail)
    json_object_set_new(body, "detail", json_string(detail));
  if (errors)
    json_object_set_new(body, "errors", errors);
  bg_reply_json(r, bg_problem_status(p), body);
  if (r->status == bg_problem_status(p))
    r->content_type = "application/problem+json";
}

void bg_reply_problem(struct bg_request *r, enum bg_problem p, const char *fmt, ...)
{
  char detail[512] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
  }
  problem(r, p, detail, NULL);
}

void bg_reply_problem_errors(struct bg_request *r, enum bg_problem p, json_t *errors, const char *detail)
{
  problem(r, p, detail, errors);
}

void bg_reply_field_error(struct bg_request *r, enum bg_problem p, const char *field, const char *code,
                          const char *detail)
{
  json_t *errors = json_array();
  bg_field_err(errors, field, code, detail);
  char d[256];
  snprintf(d, sizeof d, "invalid field '%s': %s", field, detail);
  problem(r, p, d, errors);
}

void bg_reply_header(struct bg_request *r, const char *name, const char *value)
{
  if (r->nheaders >= BG_MAX_HEADERS)
    return;
  r->headers[r->nheaders].name = strdup(name);
  r->headers[r->nheaders].value = strdup(value);
  r->nheaders++;
}

/* ---------- request accessors ---------- */

const char *bg_req_header(struct bg_request *r, const char *name)
{
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *bg_req_query(struct bg_request *r, const char *name)
{
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool bg_req_limit(struct bg_request *r, int *limit)
{
  const char *s = bg_req_query(r, "limit");
  long v = 50;
  if (s && !bg_parse_long(s, 1, 200, &v)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "limit", "range", "must be an integer from 1 to 200");
    return false;
  }
  *limit = (int)v;
  return true;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes application/x-www-form-urlencoded in place; false on a bad escape. */
static bool form_decode(char *s)
{
  char *w = s;
  for (char *p = s; *p; p++) {
    if (*p == '+') {
      *w++ = ' ';
    } else if (*p == '%') {
      int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
      if (hi < 0 || lo < 0)
        return false;
      *w++ = (char)(hi << 4 | lo);
      p += 2;
    } else {
      *w++ = *p;
    }
  }
  *w = '\0';
  return true;
}

const char *bg_req_form(struct bg_request *r, const char *name)
{
  if (!r->body || !r->body_len)
    return NULL;
  size_t nlen = strlen(name);
  const char *p = r->body, *end = r->body + r->body_len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *pe = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
      size_t vlen = (size_t)(pe - eq - 1);
      char *v = malloc(vlen + 1);
      if (!v)
        return NULL;
      memcpy(v, eq + 1, vlen);
      v[vlen] = '\0';
      if (!form_decode(v)) {
        free(v);
        return NULL;
      }
      if (r->nscratch >= BG_MAX_SCRATCH) {
        free(v);
        return NULL;
      }
      r->scratch[r->nscratch++] = v; /* freed with the request */
      return v;
    }
    p = pe + 1;
  }
  return NULL;
}

bool bg_req_uuid_param(struct bg_request *r, int i, const char **out)
{
  if (i >= BG_MAX_PARAMS || !r->params[i] || !bg_uuid_valid(r->params[i])) {
    bg_reply_problem(r, BG_P_NOT_FOUND, NULL);
    return false;
  }
  /* One spelling: PostgreSQL matches a uuid in any case, so a handler comparing the id with the
   * caller's (r->token.sub, lower case) must see it lower case too, or "my own" checks are
   * passed by upper-casing one's own id. The copy is the request's own. */
  for (char *p = (char *)r->params[i]; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  *out = r->params[i];
  return true;
}

bool bg_req_has_role(const struct bg_request *r, const char *role) { return bg_token_has_role(&r->token, role); }

/* ---------- routing ---------- */

int bg_route_match(const struct bg_route *routes, size_t n, const char *method, const char *path,
                   char params[BG_MAX_PARAMS][128], bool *path_matched)
{
  *path_matched = false;
  for (size_t i = 0; i < n; i++) {
    const char *p = routes[i].pattern, *u = path;
    int np = 0;
    for (int k = 0; k < BG_MAX_PARAMS; k++) /* a failed earlier candidate leaves no parameters */
      params[k][0] = '\0';
    bool ok = true;
    while (ok && *p && *u) {
      if (p[0] == '{' && p[1] == '}') {
        const char *e = strchr(u, '/');
        size_t len = e ? (size_t)(e - u) : strlen(u);
        if (len == 0 || len >= 128 || np >= BG_MAX_PARAMS) {
          ok = false;
          break;
        }
        memcpy(params[np], u, len);
        params[np][len] = '\0';
        np++;
        u += len;
        p += 2;
      } else if (*p == *u) {
        p++;
        u++;
      } else {
        ok = false;
      }
    }
    if (!ok || *p || *u)
      continue;
    *path_matched = true;
    if (strcmp(routes[i].method, method) == 0)
      return (int)i;
  }
  return -1;
}

static void allow_header(struct bg_request *r, const struct bg_route *routes, size_t n)
{
  char allow[128] = "";
  char params[BG_MAX_PARAMS][128];
  for (size_t i = 0; i < n; i++) {
    bool pm;
    if (bg_route_match(&routes[i], 1, routes[i].method, r->path, params, &pm) == 0 && !strstr(allow, routes[i].method)) {
      if (*allow)
        strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
      strncat(allow, routes[i].method, sizeof allow - strlen(allow) - 1);
    }
  }
  bg_reply_header(r, "Allow", allow);
}

/* ---------- metrics ---------- */

void bg_metrics_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
      return;
    if ((size_t)n < *cap - *len) {
      *len += (size_t)n;
      return;
    }
    size_t ncap = *cap * 2 + (size_t)n;
    char *nb = realloc(*buf, ncap);
    if (!nb)
      return;
    *buf = nb;
    *cap = ncap;
  }
}

void bg_server_add_metrics(struct bg_server *s, bg_metrics_fn fn)
{
  if (s->nmetric_fns < MAX_METRIC_FNS)
    s->metric_fns[s->nmetric_fns++] = fn;
}

static void record(struct bg_server *s, size_t route_idx, unsigned status, int64_t us)
{
  struct route_stats *st = &s->stats[route_idx];
  int slot = NSTATUS;
  for (int i = 0; i < NSTATUS; i++)
    if (status_slots[i] == status) {
      slot = i;
      break;
    }
  atomic_fetch_add(&st->by_status[slot], 1);
  int b = NBUCKETS;
  for (int i = 0; i < NBUCKETS; i++)
    if ((double)us / 1e6 <= bucket_le[i]) {
      b = i;
      break;
    }
  atomic_fetch_add(&st->buckets[b], 1);
  atomic_fetch_add(&st->sum_us, (uint64_t)us);
}

static void render_metrics(struct bg_server *s, struct bg_request *r)
{
  size_t cap = 16384, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  buf[0] = '\0';
  const char *svc = s->cfg.service;
  bg_metrics_append(&buf, &len, &cap,
                    "# HELP bligate_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE bligate_http_requests_total counter\n");
  for (size_t i = 0; i <= s->cfg.nroutes; i++) {
    const char *name = i < s->cfg.nroutes ? (s->cfg.routes[i].name ? s->cfg.routes[i].name : s->cfg.routes[i].pattern)
                                          : "(other)";
    const char *method = i < s->cfg.nroutes ? s->cfg.routes[i].method : "";
    for (int k = 0; k <= NSTATUS; k++) {
      uint64_t v = atomic_load(&s->stats[i].by_status[k]);
      if (!v)
        continue;
      char st[8];
      snprintf(st, sizeof st, "%u", k < NSTATUS ? status_slots[k] : 0u);
      bg_metrics_append(&buf, &len, &cap,
                        "bligate_http_requests_total{service=\"%s\",method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n",
                        svc, method, name, k < NSTATUS ? st : "other", (unsigned long long)v);
    }
  }
  bg_metrics_append(&buf, &len, &cap,
                    "# HELP bligate_http_request_duration_seconds Request latency by route.\n"
                    "# TYPE bligate_http_request_duration_seconds histogram\n");
  for (size_t i = 0; i <= s->cfg.nroutes; i++) {
    const char *name = i < s->cfg.nroutes ? (s->cfg.routes[i].name ? s->cfg.routes[i].name : s->cfg.routes[i].pattern)
                                          : "(other)";
    const char *method = i < s->cfg.nroutes ? s->cfg.routes[i].method : "";
    uint64_t cum = 0, total = 0;
    for (int b = 0; b <= NBUCKETS; b++)
      total += atomic_load(&s->stats[i].buckets[b]);
    if (!total)
      continue;
    for (int b = 0; b <= NBUCKETS; b++) {
      cum += atomic_load(&s->stats[i].buckets[b]);
      char le[16];
      if (b < NBUCKETS)
        snprintf(le, sizeof le, "%g", bucket_le[b]);
      else
        snprintf(le, sizeof le, "+Inf");
      bg_metrics_append(&buf, &len, &cap,
                        "bligate_http_request_duration_seconds_bucket{service=\"%s\",method=\"%s\",route=\"%s\",le=\"%s\"} %llu\n",
                        svc, method, name, le, (unsigned long long)cum);
    }
    bg_metrics_append(&buf, &len, &cap,
                      "bligate_http_request_duration_seconds_sum{service=\"%s\",method=\"%s\",route=\"%s\"} %.6f\n"
                      "bligate_http_request_duration_seconds_count{service=\"%s\",method=\"%s\",route=\"%s\"} %llu\n",
                      svc, method, name, (double)atomic_load(&s->stats[i].sum_us) / 1e6, svc, method, name,
                      (unsigned long long)total);
  }
  bg_metrics_append(&buf, &len, &cap, "# TYPE bligate_http_inflight gauge\nbligate_http_inflight{service=\"%s\"} %d\n",
                    svc, atomic_load(&s->inflight));
  for (int i = 0; i < s->nmetric_fns; i++)
    s->metric_fns[i](s->cfg.ctx, &buf, &len, &cap);
  bg_reply_text(r, 200, "text/plain; version=0.0.4", buf, len);
}

/* ---------- built-in endpoints ---------- */

static bool builtin(struct bg_server *s, struct bg_request *r)
{
  bool get = strcmp(r->method, "GET") == 0;
  if (get && strcmp(r->path, "/healthz") == 0) {
    bg_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    return true;
  }
  if (get && strcmp(r->path, "/readyz") == 0) {
    const char *why = NULL;
    if (s->cfg.ready && !s->cfg.ready(s->cfg.ctx, &why))
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "not ready: %s", why ? why : "unknown");
    else
      bg_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
    return true;
  }
  if (get && strcmp(r->path, "/metrics") == 0) {
    render_metrics(s, r);
    return true;
  }
  if (s->cfg.test_clock && strcmp(r->path, "/internal/test/clock") == 0 && strcmp(r->method, "POST") == 0) {
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *off = json_object_get(j, "offset_seconds");
    if (!json_is_integer(off)) {
      json_decref(j);
      bg_reply_field_error(r, BG_P_VALIDATION, "offset_seconds", "type", "must be an integer");
      return true;
    }
    bg_clock_set_offset(json_integer_value(off));
    json_decref(j);
    char ts[BG_TIME_LEN];
    bg_reply_json(r, 200, json_pack("{s:I, s:s}", "offset_seconds", (json_int_t)bg_clock_offset(), "now",
                                    bg_time_fmt(bg_now(), ts)));
    return true;
  }
  return false;
}

/* ---------- the request cycle ---------- */

/* Request ids are UUID-shaped and unique, not secret: a random per-process prefix and a
 * counter through a bijective mixer (splitmix64's finaliser) instead of RAND_bytes per
 * request, which cost several % of a small request's CPU. */
static uint64_t rid_prefix, rid_key;
static _Atomic uint64_t rid_counter;

static uint64_t rid_mix(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void request_id(char out[BG_UUID_LEN])
{
  uint64_t lo = rid_mix(atomic_fetch_add(&rid_counter, 1) ^ rid_key);
  unsigned char b[16];
  for (int i = 0; i < 8; i++) {
    b[i] = (unsigned char)(rid_prefix >> (56 - 8 * i));
    b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
  }
  bg_uuid_v4_format(b, out);
}

static bool sane_request_id(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return false;
  }
  /* it goes into every log line and event of the request: not an ID number (an event holding
   * one is refused by the audit log), in either case — "x-a123456789" is the number too.
   * Looked for in upper case here only: elsewhere lower-case hex (digests, UUIDs) would be
   * taken for one now and then; a request id taken for one is only replaced. */
  char up[65];
  for (size_t i = 0; i <= n; i++)
    up[i] = (char)toupper((unsigned char)s[i]);
  return !bg_twid_in_text(up);
}

static bool media_is(const char *ct, const char *want)
{
  if (!ct)
    return false;
  size_t n = strlen(want);
  if (strncasecmp(ct, want, n) != 0)
    return false;
  return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* SHA-256 fetched once: OpenSSL 3's one-shot SHA256() looks the algorithm up on every call,
 * which cost more than the hashing. */
static EVP_MD *token_md;

static enum bg_jwt_err verify_cached(struct bg_server *s, const char *token, time_t now, int leeway,
                                     struct bg_token *out)
{
  unsigned char hash[32];
  if (!token_md || !EVP_Digest(token, strlen(token), hash, NULL, token_md, NULL))
    bg_sha256(token, strlen(token), hash);
  size_t slot = ((size_t)hash[0] << 8 | hash[1]) % TOKEN_CACHE;
  pthread_mutex_t *lock = &s->token_locks[slot % TOKEN_LOCKS];
  struct token_entry *e = &s->tokens[slot];
  pthread_mutex_lock(lock);
  bool hit = e->used && memcmp(e->hash, hash, sizeof hash) == 0;
  if (hit)
    *out = e->claims;
  pthread_mutex_unlock(lock);
  if (hit) {
    if (now >= out->exp + leeway) {
      memset(out, 0, sizeof *out);
      return BG_JWT_EXPIRED;
    }
    if (out->nbf && now < out->nbf) {
      memset(out, 0, sizeof *out);
      return BG_JWT_NOT_YET_VALID;
    }
    return BG_JWT_OK;
  }
  enum bg_jwt_err rc = bg_jwt_verify(s->cfg.keys, token, s->cfg.issuer, s->cfg.audience, now, leeway, out);
  if (rc == BG_JWT_OK) {
    pthread_mutex_lock(lock);
    memcpy(e->hash, hash, sizeof hash);
    e->claims = *out;
    e->used = true;
    pthread_mutex_unlock(lock);
  }
  return rc;
}

static bool authenticate(struct bg_server *s, struct bg_request *r)
{
  const char *h = bg_req_header(r, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
    bg_reply_header(r, "WWW-Authenticate", "Bearer");
    bg_reply_problem(r, BG_P_UNAUTHENTICATED, "send Authorization: Bearer <access token>");
    return false;
  }
  int leeway = (r->route->flags & BG_R_EXPIRED_OK) ? (int)s->cfg.expired_leeway_s : 0;
  enum bg_jwt_err e = verify_cached(s, h + 7, bg_now(), leeway, &r->token);
  if (e != BG_JWT_OK) {
    bg_reply_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    bg_reply_problem(r, e == BG_JWT_EXPIRED ? BG_P_TOKEN_EXPIRED : BG_P_TOKEN_INVALID, "%s", bg_jwt_err_str(e));
    return false;
  }
  unsigned f = r->route->flags;
  if ((f & BG_R_AUTH) && r->token.is_client) {
    char arg[128];
    if ((f & BG_R_INTEGRATION) && r->route->scope && bg_token_scope_arg(&r->token, r->route->scope, arg, sizeof arg))
      return true;
    bg_reply_problem(r, BG_P_FORBIDDEN, "this endpoint is for signed-in staff, not clients");
    return false;
  }
  if (f & BG_R_CLIENT) {
    if (!r->token.is_client || (r->route->scope && !bg_token_has_scope(&r->token, r->route->scope))) {
      bg_reply_problem(r, BG_P_FORBIDDEN, "requires a client token with scope %s",
                       r->route->scope ? r->route->scope : "(none)");
      return false;
    }
    return true;
  }
  return !s->cfg.auth_hook || s->cfg.auth_hook(r);
}

static void dispatch(struct bg_server *s, struct bg_request *r)
{
  if (s->cfg.tls_client_ca_file && !bg_tls_peer_verified(r->conn)) {
    bg_reply_problem(r, BG_P_CLIENT_CERT_REQUIRED, "present a client certificate issued by the trusted CA");
    return;
  }
  if (r->too_large) {
    bg_reply_problem(r, BG_P_BODY_TOO_LARGE, "the limit is %zu bytes", s->cfg.max_body);
    return;
  }
  if (builtin(s, r))
    return;
  char params[BG_MAX_PARAMS][128] = {{0}};
  bool path_matched;
  int idx = bg_route_match(s->cfg.routes, s->cfg.nroutes, r->method, r->path, params, &path_matched);
  if (idx < 0) {
    if (path_matched) {
      allow_header(r, s->cfg.routes, s->cfg.nroutes);
      bg_reply_problem(r, BG_P_METHOD_NOT_ALLOWED, "%s is not allowed here", r->method);
    } else {
      bg_reply_problem(r, BG_P_NOT_FOUND, NULL);
    }
    return;
  }
  r->route = &s->cfg.routes[idx];
  /* path parameters are percent-decoded copies owned by the request */
  for (int i = 0; i < BG_MAX_PARAMS && params[i][0]; i++) {
    char *copy = strdup(params[i]);
    if (!copy || !form_decode(copy)) {
      free(copy);
      bg_reply_problem(r, BG_P_NOT_FOUND, NULL);
      return;
    }
    r->params[i] = copy;
  }
  unsigned f = r->route->flags;
  if ((f & (BG_R_AUTH | BG_R_CLIENT)) && !authenticate(s, r))
    return;
  if (f & BG_R_JSON) {
    if (r->body_len == 0) {
      if (!(f & BG_R_BODY_OPTIONAL)) {
        bg_reply_problem(r, BG_P_BAD_JSON, "a JSON object body is required");
        return;
      }
    } else {
      if (!media_is(bg_req_header(r, "Content-Type"), "application/json")) {
        bg_reply_problem(r, BG_P_UNSUPPORTED_MEDIA, "send Content-Type: application/json");
        return;
      }
      json_error_t err;
      r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
      if (!r->json) {
        bg_reply_problem(r, BG_P_BAD_JSON, "line %d column %d: %s", err.line, err.column, err.text);
        return;
      }
      if (!json_is_object(r->json)) {
        bg_reply_problem(r, BG_P_BAD_JSON, "the body must be a JSON object");
        return;
      }
    }
  } else if (f & BG_R_FORM) {
    if (!media_is(bg_req_header(r, "Content-Type"), "application/x-www-form-urlencoded")) {
      bg_reply_problem(r, BG_P_UNSUPPORTED_MEDIA, "send Content-Type: application/x-www-form-urlencoded");
      return;
    }
  }
  if ((f & BG_R_IDEMPOTENT) && s->cfg.idem_db && bg_req_header(r, "Idempotency-Key"))
    bg_idem_run(s->cfg.idem_db, r);
  else
    r->route->handler(r);
  if (!r->replied) {
    bg_log(BG_LOG_ERROR, r->request_id, "handler for %s %s set no reply", r->method, r->route->pattern);
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
  }
}

static enum MHD_Result queue(struct bg_server *s, struct MHD_Connection *conn, struct bg_request *r)
{
  char *body = NULL;
  size_t len = 0;
  struct MHD_Response *resp;
  if (r->stream_fn) {
    /* MHD owns the stream from here: it calls stream_free when the response is destroyed. */
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, (MHD_ContentReaderCallback)r->stream_fn,
                                             r->stream_ctx, r->stream_free);
    r->stream_fn = NULL;
    r->stream_free = NULL;
    r->stream_ctx = NULL;
    if (!resp)
      return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    goto headers;
  }
  if (r->raw_reply) {
    body = r->raw_reply;
    len = r->raw_reply_len;
    r->raw_reply = NULL;
  } else if (r->reply) {
    body = json_dumps(r->reply, JSON_COMPACT);
    len = body ? strlen(body) : 0;
  }
  resp = MHD_create_response_from_buffer(len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  if (body)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : "application/json");
headers:
  MHD_add_response_header(resp, "X-Request-Id", r->request_id);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  /* Nothing this API returns may sit in a shared or browser cache. */
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  for (int i = 0; i < r->nheaders; i++)
    MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
  /* stopping: the gateway must not send another request on this connection */
  if (atomic_load(&s->draining))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
  MHD_destroy_response(resp);
  int64_t us = bg_mono_us() - r->start_us;
  size_t ridx = r->route ? (size_t)(r->route - s->cfg.routes) : s->cfg.nroutes;
  record(s, ridx, r->status, us);
  bg_log_access(r->request_id, r->method, r->route ? (r->route->name ? r->route->name : r->route->pattern) : "(other)",
                r->status, (double)us / 1000.0, r->client_addr);
  return ret;
}

/* One spare request struct per connection thread: a bg_request is a large-bin allocation
 * for malloc, and allocating one per request consolidated the thread's free lists each time. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_key_init(void) { pthread_key_create(&spare_key, free); }

static struct bg_request *request_new(void)
{
  pthread_once(&spare_once, spare_key_init);
  struct bg_request *r = pthread_getspecific(spare_key);
  if (!r)
    return calloc(1, sizeof *r);
  pthread_setspecific(spare_key, NULL);
  memset(r, 0, sizeof *r);
  return r;
}

static void request_free(struct bg_request *r)
{
  if (!r)
    return;
  json_decref(r->json);
  json_decref(r->auth_info);
  json_decref(r->reply);
  free(r->raw_reply);
  if (r->stream_free) /* a stream that was never handed to MHD */
    r->stream_free(r->stream_ctx);
  free(r->body);
  for (int i = 0; i < BG_MAX_PARAMS; i++)
    free((char *)r->params[i]);
  for (int i = 0; i < r->nscratch; i++)
    free(r->scratch[i]);
  for (int i = 0; i < r->nheaders; i++) {
    free(r->headers[i].name);
    free(r->headers[i].value);
  }
  free((char *)r->client_addr);
  free((char *)r->path);
  if (!pthread_getspecific(spare_key) && pthread_setspecific(spare_key, r) == 0)
    return;
  free(r);
}

/* Is peer one of the gateways whose X-Forwarded-For we believe? Loopback always (the stack's
 * nginx); elsewhere the addresses and ranges an operator lists in BLIGATE_TRUSTED_PROXIES. */
static bool trusted_proxy(const struct bg_server *s, const struct sockaddr *peer, bool loopback)
{
  return loopback || bg_cidr_match(s->proxies, s->nproxies, peer);
}

static char *client_address(const struct bg_server *s, struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char peer[INET6_ADDRSTRLEN] = "";
  bool loopback = false;
  if (ci && ci->client_addr) {
    if (ci->client_addr->sa_family == AF_INET) {
      const struct sockaddr_in *in = (const void *)ci->client_addr;
      inet_ntop(AF_INET, &in->sin_addr, peer, sizeof peer);
      loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (ci->client_addr->sa_family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const void *)ci->client_addr;
      inet_ntop(AF_INET6, &in6->sin6_addr, peer, sizeof peer);
      loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
  }
  /* Behind our gateway the client is the last X-Forwarded-For hop nginx added; from anyone
   * else the header is the client's own claim and is ignored. */
  const char *xff = trusted_proxy(s, ci ? ci->client_addr : NULL, loopback)
                      ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For")
                      : NULL;
  if (xff && *xff) {
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
      last++;
    if (strlen(last) < INET6_ADDRSTRLEN && strspn(last, "0123456789abcdefABCDEF.:") == strlen(last))
      return strdup(last);
  }
  return strdup(peer);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
  struct bg_server *s = cls;
  struct bg_request *r = *con_cls;
  if (!r) {
    r = request_new();
    if (!r)
      return MHD_NO;
    *con_cls = r;
    atomic_fetch_add(&s->inflight, 1);
    r->start_us = bg_mono_us();
    r->conn = conn;
    r->service = s->cfg.ctx;
    r->method = method;
    r->path = strdup(url);
    r->client_addr = client_address(s, conn);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (sane_request_id(rid))
      snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
      request_id(r->request_id);
    r->body_cap = s->cfg.max_body;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long clv;
    if (cl && bg_parse_long(cl, 0, 1L << 40, &clv) && (size_t)clv > s->cfg.max_body)
      r->too_large = true;
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0; /* consume every chunk, also the ones we drop */
    if (r->too_large || r->body_len + n > r->body_cap) {
      r->too_large = true;
      return MHD_YES;
    }
    char *nb = realloc(r->body, r->body_len + n + 1);
    if (!nb)
      return MHD_NO;
    r->body = nb;
    memcpy(r->body + r->body_len, upload_data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return MHD_YES;
  }
  if (strlen(url) > MAX_URI)
    bg_reply_problem(r, BG_P_URI_TOO_LONG, NULL);
  else
    dispatch(s, r);
  return queue(s, conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
  struct bg_server *s = cls;
  if (*con_cls) {
    request_free(*con_cls);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
  }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  bg_log(BG_LOG_WARN, NULL, "microhttpd: %s", msg);
}

static void server_free(struct bg_server *s)
{
  for (int i = 0; i < TOKEN_LOCKS; i++)
    pthread_mutex_destroy(&s->token_locks[i]);
  free(s->tokens);
  free(s->stats);
  for (int i = 0; s->tls[i].option != MHD_OPTION_END; i++)
    free(s->tls[i].ptr_value);
  free(s);
}

struct bg_server *bg_server_start(const struct bg_server_cfg *cfg)
{
  struct bg_server *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->cfg = *cfg;
  if (!s->cfg.trusted_proxies)
    s->cfg.trusted_proxies = bg_cfg_str("BLIGATE_TRUSTED_PROXIES", "");
  char why[128];
  if (!bg_cidr_parse_list(s->cfg.trusted_proxies, s->proxies, sizeof s->proxies / sizeof s->proxies[0],
                          &s->nproxies, why, sizeof why)) {
    /* a gateway that is not believed would put its own address on every audit event */
    fprintf(stderr, "configuration error: BLIGATE_TRUSTED_PROXIES: %s\n", why);
    exit(2);
  }
  if (!s->cfg.max_body)
    s->cfg.max_body = 1u << 20;
  if (!s->cfg.max_conns)
    s->cfg.max_conns = 512;
  if (!s->cfg.conn_timeout_s)
    s->cfg.conn_timeout_s = 30;
  for (int i = 0; i < TOKEN_LOCKS; i++)
    pthread_mutex_init(&s->token_locks[i], NULL);
  s->stats = calloc(cfg->nroutes + 1, sizeof *s->stats);
  s->tokens = calloc(TOKEN_CACHE, sizeof *s->tokens);
  if (!s->stats || !s->tokens) {
    server_free(s);
    return NULL;
  }
  if (!rid_prefix) {
    uint64_t seed[2];
    if (!bg_random(seed, sizeof seed)) {
      server_free(s);
      return NULL;
    }
    rid_prefix = seed[0] | 1;
    rid_key = seed[1];
  }
  if (!token_md)
    token_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  signal(SIGPIPE, SIG_IGN);
  /* SIGINT/SIGTERM are taken by bg_server_wait's sigwait; every thread started from here on
   * inherits the blocked mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
  if (inet_pton(AF_INET, cfg->addr ? cfg->addr : "127.0.0.1", &sa.sin_addr) != 1) {
    bg_error("BLIGATE_LISTEN_ADDR is not an IPv4 address");
    server_free(s);
    return NULL;
  }
  /* Thread per connection: handlers block on the database and on other services. Stacks are
   * kept small; sanitizer builds need more. A connection's memory pool (headers, the read
   * buffer) is 32 KiB: MHD clears it between requests, so its size is paid on every request;
   * bodies are collected outside it. */
#if defined(__SANITIZE_ADDRESS__)
  size_t stack = 1u << 20;
#else
  size_t stack = 256u << 10;
#endif
  /* poll(), not select(): a connection thread waits on one socket, and select() would both
   * scan a descriptor bitmap on every wait and fail past descriptor 1023. */
  /* ITC: MHD_quiesce_daemon and MHD_add_connection, both used when draining, want it */
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                   MHD_USE_ITC;
  bg_tls_mhd_options(&s->cfg, &flags, s->tls);
  s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)s->cfg.conn_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32u << 10),
                          MHD_OPTION_THREAD_STACK_SIZE, stack, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                          MHD_OPTION_ARRAY, s->tls, MHD_OPTION_END);
  if (!s->d) {
    bg_error("cannot listen on %s:%u", cfg->addr ? cfg->addr : "127.0.0.1", cfg->port);
    server_free(s);
    return NULL;
  }
  bg_info("%s listening on %s:%u", cfg->service, cfg->addr ? cfg->addr : "127.0.0.1", cfg->port);
  return s;
}

/* Connections the kernel has completed on the listening socket but MHD has not accepted yet:
 * closing the socket would reset them, and a gateway that has already sent its request on one
 * gets "connection reset" for a POST it must not retry elsewhere (seen as a 503 when a replica
 * was stopped under load). They are accepted here and handed to MHD, to be served like the rest
 * (told to close). */
static void accept_backlog(struct bg_server *s, MHD_socket listener)
{
  int fl = fcntl(listener, F_GETFL);
  if (fl < 0 || fcntl(listener, F_SETFL, fl | O_NONBLOCK) < 0)
    return;
  int n = 0;
  for (;;) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(listener, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC);
    if (fd < 0)
      break; /* EAGAIN: nothing left */
    if (MHD_add_connection(s->d, fd, (struct sockaddr *)&addr, len) == MHD_YES)
      n++;
    else
      bg_warn("a connection accepted while draining could not be served");
  }
  if (n)
    bg_info("draining: %d connection(s) waiting in the listening socket's queue served", n);
}

void bg_server_wait(struct bg_server *s)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  bg_info("signal %d: finishing in-flight requests", sig);
  /* The listening socket is closed, not merely no longer accepted from (connections waiting
   * in its queue would get no answer): a gateway's next connection goes to another replica.
   * For a grace period the requests still arriving on open keep-alive connections are served
   * and told "Connection: close", so the gateway retires those connections instead of finding
   * one closed under a request it has just sent; so are the connections still waiting in the
   * socket's queue (accept_backlog). Then what is in flight finishes (at most 10 s in all). */
  atomic_store(&s->draining, true);
  if (s->cfg.draining)
    s->cfg.draining();
  MHD_socket listener = MHD_quiesce_daemon(s->d);
  if (listener != MHD_INVALID_SOCKET) {
    accept_backlog(s, listener);
    close(listener);
  }
  int64_t start = bg_mono_us();
  for (;;) {
    int64_t ms = (bg_mono_us() - start) / 1000;
    if ((ms >= 1000 && atomic_load(&s->inflight) == 0) || ms >= 10000)
      break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

void bg_server_stop(struct bg_server *s)
{
  if (!s)
    return;
  MHD_stop_daemon(s->d);
  server_free(s);
}
