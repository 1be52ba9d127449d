/* HTTP server on libmicrohttpd: route table, body collection with a hard cap, JSON parsing,
 * bearer-token verification, request ids, problem replies, access logs and metrics happen
 * here, before and after a handler runs. A handler only parses its fields, authorizes, acts
 * and sets a reply. */
#ifndef BLIGATE_HTTP_H
#define BLIGATE_HTTP_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bligate/jwt.h"
#include "bligate/problems.h"

struct bg_request;
struct bg_db;
typedef void (*bg_handler)(struct bg_request *r);
/* Produces the next bytes of a streamed reply into buf (at most max): returns how many, -1 at
 * the end, -2 on an error (the connection is cut, so the client sees an incomplete body). pos
 * is the offset so far. Runs on the connection's thread, after the handler has returned. */
typedef long (*bg_stream_fn)(void *ctx, uint64_t pos, char *buf, size_t max);

enum bg_route_flags {
  BG_R_PUBLIC = 0,        /* no token */
  BG_R_AUTH = 1u << 0,    /* a user's bearer token (has a session) */
  BG_R_CLIENT = 1u << 1,  /* a client-credentials token carrying route.scope */
  BG_R_JSON = 1u << 2,    /* body is a JSON object (may be empty when BG_R_BODY_OPTIONAL) */
  BG_R_FORM = 1u << 3,    /* body is application/x-www-form-urlencoded */
  BG_R_BODY_OPTIONAL = 1u << 4,
  /* With BG_R_AUTH: also accept a token that expired less than cfg.expired_leeway_s ago (the
   * refresh endpoint: an access token outlives its 5 minutes, the session decides). */
  BG_R_EXPIRED_OK = 1u << 5,
  /* A creating POST that honours Idempotency-Key (needs cfg.idem_db; see idempotency.h). */
  BG_R_IDEMPOTENT = 1u << 6,
  /* With BG_R_AUTH: also accept a client token holding a scope that begins with route.scope
   * (an integration client acting for a named person; the handler checks the rest). The
   * service's auth hook does not run for it: there is no session. */
  BG_R_INTEGRATION = 1u << 7,
};

struct bg_route {
  const char *method;
  /* Literal segments and "{}" for one path parameter, e.g. "/v1/accounts/{}/certificates/{}". */
  const char *pattern;
  bg_handler handler;
  unsigned flags;
  const char *scope; /* required scope with BG_R_CLIENT */
  const char *name;  /* metrics label; defaults to pattern */
};

#define BG_MAX_PARAMS 4
#define BG_MAX_HEADERS 8
#define BG_MAX_SCRATCH 8

struct bg_request {
  /* in */
  const char *method;
  const char *path;
  const struct bg_route *route;
  const char *params[BG_MAX_PARAMS]; /* decoded path parameters */
  const char *client_addr;
  char request_id[65];
  char *body;
  size_t body_len;
  json_t *json;   /* parsed body for BG_R_JSON (an object), else NULL */
  struct bg_token token; /* verified claims for BG_R_AUTH / BG_R_CLIENT */
  json_t *auth_info;      /* what the service's auth hook learned (e.g. the session); freed with r */
  void *conn;     /* struct MHD_Connection * */
  void *service;  /* the service's context, from bg_server_cfg.ctx */

  /* out */
  unsigned status;
  json_t *reply;          /* body; NULL for empty */
  const char *content_type;
  char *raw_reply;        /* alternative to reply: pre-serialised bytes (malloc'd) */
  size_t raw_reply_len;
  /* A streamed body (bg_reply_stream) instead of reply/raw_reply. */
  bg_stream_fn stream_fn;
  void (*stream_free)(void *ctx);
  void *stream_ctx;
  struct { char *name, *value; } headers[BG_MAX_HEADERS];
  int nheaders;
  bool replied;

  /* private */
  char *scratch[BG_MAX_SCRATCH]; /* strings owned by the request (decoded form values) */
  int nscratch;
  size_t body_cap;
  bool too_large;
  int64_t start_us;
  int calls;
};

/* Replies: exactly one per request. They take ownership of `body` (jansson "steal"). */
void bg_reply_json(struct bg_request *r, unsigned status, json_t *body);
void bg_reply_empty(struct bg_request *r, unsigned status);
void bg_reply_text(struct bg_request *r, unsigned status, const char *content_type, char *body, size_t len);
void bg_reply_problem(struct bg_request *r, enum bg_problem p, const char *detail_fmt, ...)
  __attribute__((format(printf, 3, 4)));
/* With an "errors" array of {field, code, detail}; takes ownership of errors. */
void bg_reply_problem_errors(struct bg_request *r, enum bg_problem p, json_t *errors, const char *detail);
/* One bad field. */
void bg_reply_field_error(struct bg_request *r, enum bg_problem p, const char *field, const char *code,
                          const char *detail);
void bg_reply_header(struct bg_request *r, const char *name, const char *value);
/* A body of unknown length sent as it is produced (chunked): fn fills it, free_fn(ctx) runs once
 * when the response is done or abandoned (also when this reply is refused as a second one). */
void bg_reply_stream(struct bg_request *r, unsigned status, const char *content_type, bg_stream_fn fn,
                     void (*free_fn)(void *ctx), void *ctx);

/* Request accessors. */
const char *bg_req_header(struct bg_request *r, const char *name);
const char *bg_req_query(struct bg_request *r, const char *name);
/* Parses ?limit= (1..200, default 50) and ?cursor=; replies bad-query-parameter and returns
 * false on a bad limit. */
bool bg_req_limit(struct bg_request *r, int *limit);
/* For BG_R_FORM routes: value of a form field (decoded), or NULL. */
const char *bg_req_form(struct bg_request *r, const char *name);
/* Path parameter i must be a UUID; otherwise 404 is replied (an id that cannot exist). */
bool bg_req_uuid_param(struct bg_request *r, int i, const char **out);
bool bg_req_has_role(const struct bg_request *r, const char *role);

/* The service's own checks after the token verifies (accounts: session live?). Return false
 * after replying to refuse. */
typedef bool (*bg_auth_hook)(struct bg_request *r);
/* readiness probe: return true when ready; set *why on failure. */
typedef bool (*bg_ready_fn)(void *ctx, const char **why);

struct bg_server_cfg {
  const char *service;      /* "accounts" */
  const char *addr;         /* "127.0.0.1" */
  unsigned port;
  const struct bg_route *routes;
  size_t nroutes;
  size_t max_body;          /* bytes */
  unsigned max_conns;
  unsigned conn_timeout_s;
  const struct bg_keyset *keys; /* token verification keys */
  const char *issuer, *audience;
  bg_auth_hook auth_hook;
  bg_ready_fn ready;
  void *ctx;
  bool test_clock;          /* expose POST /internal/test/clock */
  unsigned expired_leeway_s; /* for BG_R_EXPIRED_OK routes */
  struct bg_db *idem_db;     /* where BG_R_IDEMPOTENT routes keep their keys */
  /* Comma-separated addresses of gateways whose X-Forwarded-For is believed (loopback always). */
  const char *trusted_proxies;
  /* TLS served by this process (tls.h; only the BLI sandbox): certificate and key files, and a
   * client CA file that makes a verified client certificate mandatory (403 otherwise). */
  const char *tls_cert_file, *tls_key_file, *tls_client_ca_file;
  /* Called once when SIGINT/SIGTERM starts the drain: a handler that may wait long on purpose
   * (the BLI sandbox's simulated latency) is told to answer now. */
  void (*draining)(void);
};

struct bg_server;
/* Starts serving. Reads BLIGATE_TRUSTED_PROXIES when cfg->trusted_proxies is NULL. */
struct bg_server *bg_server_start(const struct bg_server_cfg *cfg);
/* Blocks until SIGINT/SIGTERM; then stops accepting and waits for in-flight requests. */
void bg_server_wait(struct bg_server *s);
void bg_server_stop(struct bg_server *s);

/* Metrics gauges a service adds to /metrics: called while rendering; append text. */
typedef void (*bg_metrics_fn)(void *ctx, char **buf, size_t *len, size_t *cap);
void bg_server_add_metrics(struct bg_server *s, bg_metrics_fn fn);
void bg_metrics_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

/* Dispatch helpers exposed for unit tests of the router. */
int bg_route_match(const struct bg_route *routes, size_t n, const char *method, const char *path,
                   char params[BG_MAX_PARAMS][128], bool *path_matched);

#endif
