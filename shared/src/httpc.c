/* libcurl client for service-to-service calls (httpc.h). One easy handle per thread keeps
 * connections alive between calls without sharing a handle across threads. */
#include "bligate/httpc.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t handle_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void free_handle(void *h) { curl_easy_cleanup(h); }
static void make_key(void) { pthread_key_create(&handle_key, free_handle); }

void bg_httpc_global_init(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pthread_once(&once, make_key);
}

size_t bg_httpc_sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
  struct bg_httpc_sink *s = ud;
  size_t n = size * nmemb;
  if (s->len + n > s->max) {
    s->overflow = true;
    return 0; /* aborts the transfer */
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1)
      cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb)
      return 0;
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, ptr, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

bool bg_httpc_do(const struct bg_httpc_req *req, struct bg_httpc_resp *resp)
{
  pthread_once(&once, make_key);
  memset(resp, 0, sizeof *resp);
  CURL *h = pthread_getspecific(handle_key);
  if (!h) {
    h = curl_easy_init();
    if (!h) {
      snprintf(resp->error, sizeof resp->error, "curl_easy_init failed");
      return false;
    }
    pthread_setspecific(handle_key, h);
  } else {
    curl_easy_reset(h); /* keeps the connection cache */
  }
  struct bg_httpc_sink s = {.max = req->max_response ? req->max_response : 4u << 20};
  struct curl_slist *hdrs = NULL;
  char line[8300];
  if (req->bearer) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", req->bearer);
    hdrs = curl_slist_append(hdrs, line);
  }
  if (req->request_id) {
    snprintf(line, sizeof line, "X-Request-Id: %s", req->request_id);
    hdrs = curl_slist_append(hdrs, line);
  }
  if (req->content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", req->content_type);
    hdrs = curl_slist_append(hdrs, line);
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    snprintf(line, sizeof line, "%s: %s", req->headers[i].name, req->headers[i].value);
    hdrs = curl_slist_append(hdrs, line);
  }
  hdrs = curl_slist_append(hdrs, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* service to service directly: an http_proxy in the environment must not reroute tokens and
   * records (and looking it up on every call showed in profiles) */
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms ? req->connect_timeout_ms : 2000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 5000L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bg_httpc_sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  if (req->body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
  } else if (strcmp(req->method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK) {
    snprintf(resp->error, sizeof resp->error, "%s", s.overflow ? "response too large" : curl_easy_strerror(rc));
    free(s.buf);
    return false;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  resp->body = s.buf ? s.buf : strdup("");
  resp->len = s.len;
  return true;
}

json_t *bg_httpc_json(const struct bg_httpc_resp *resp)
{
  if (!resp->body)
    return NULL;
  return json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL);
}

void bg_httpc_resp_free(struct bg_httpc_resp *resp)
{
  free(resp->body);
  resp->body = NULL;
}
