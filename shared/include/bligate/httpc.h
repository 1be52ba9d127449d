/* HTTP client on libcurl for service-to-service calls: one reused handle per thread,
 * connect and total timeouts, a response size cap, http(s) only, no redirects. */
#ifndef BLIGATE_HTTPC_H
#define BLIGATE_HTTPC_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bg_httpc_resp {
  long status;      /* 0 when the request did not complete */
  char *body;       /* malloc'd, NUL-terminated */
  size_t len;
  char error[128];  /* transport error, if status == 0 */
};

struct bg_httpc_header {
  const char *name, *value;
};

struct bg_httpc_req {
  const char *method;     /* "GET", "POST", ... */
  const char *url;
  const char *bearer;     /* Authorization: Bearer ..., optional */
  const char *request_id; /* X-Request-Id to propagate, optional */
  const char *content_type;
  const char *body;
  size_t body_len;
  long connect_timeout_ms; /* default 2000 */
  long timeout_ms;         /* default 5000 */
  size_t max_response;     /* default 4 MiB */
  const struct bg_httpc_header *headers; /* more request headers, optional */
  size_t nheaders;
};

/* A response body collected up to max bytes, for a libcurl CURLOPT_WRITEFUNCTION: past the
 * cap the transfer is aborted with overflow set. buf is malloc'd and NUL-terminated. */
struct bg_httpc_sink {
  char *buf;
  size_t len, cap, max;
  bool overflow;
};
size_t bg_httpc_sink_write(char *ptr, size_t size, size_t nmemb, void *sink);

/* Call once before starting threads. */
void bg_httpc_global_init(void);
bool bg_httpc_do(const struct bg_httpc_req *req, struct bg_httpc_resp *resp);
/* Parses resp->body as JSON (duplicate keys rejected); NULL if not JSON. */
json_t *bg_httpc_json(const struct bg_httpc_resp *resp);
void bg_httpc_resp_free(struct bg_httpc_resp *resp);

#endif
