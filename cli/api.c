/* Calls to the bligate gateway for the CLI: URLs, JSON bodies, problem replies, and printing
 * server-supplied text without letting it drive the terminal. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bligate/httpc.h"
#include "bligate/util.h"
#include "cli.h"

#define CLI_CONNECT_TIMEOUT_MS 5000L
#define CLI_TIMEOUT_MS 30000L
#define CLI_MAX_RESPONSE ((size_t)1 << 20)

static bool is_loopback_host(const char *host, size_t n)
{
  static const char *const loop[] = {"127.0.0.1", "localhost", "[::1]"};
  for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++)
    if (strlen(loop[i]) == n && strncasecmp(host, loop[i], n) == 0)
      return true;
  return false;
}

bool cli_url_normalise(const char *in, char out[CLI_URL_MAX])
{
  size_t scheme;
  bool plain;
  if (strncasecmp(in, "https://", 8) == 0) {
    scheme = 8;
    plain = false;
  } else if (strncasecmp(in, "http://", 7) == 0) {
    scheme = 7;
    plain = true;
  } else {
    fprintf(stderr, "bligate: the URL must start with http:// or https://\n");
    return false;
  }
  size_t n = strlen(in);
  while (n > scheme && in[n - 1] == '/')
    n--;
  if (n >= CLI_URL_MAX) {
    fprintf(stderr, "bligate: the URL is too long\n");
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#') {
      fprintf(stderr, "bligate: the URL may hold no spaces, control characters, query or fragment\n");
      return false;
    }
  }
  const char *host = in + scheme;
  size_t hlen = strcspn(host, "/");
  if (hlen > n - scheme)
    hlen = n - scheme;
  if (hlen == 0 || memchr(host, '@', hlen)) {
    fprintf(stderr, "bligate: the URL needs a host (and no user name)\n");
    return false;
  }
  /* Host without the port, for the loopback check. */
  size_t hname = hlen;
  if (host[0] != '[') {
    const char *colon = memchr(host, ':', hlen);
    if (colon)
      hname = (size_t)(colon - host);
  } else {
    const char *close = memchr(host, ']', hlen);
    if (close)
      hname = (size_t)(close - host) + 1;
  }
  if (plain && !is_loopback_host(host, hname))
    fprintf(stderr, "bligate: warning: %.*s is plain http; the token would cross the network unencrypted\n",
            (int)hname, host);
  memcpy(out, in, n);
  out[n] = '\0';
  for (size_t i = 0; i < scheme; i++) /* "HTTP://" → "http://" */
    out[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] - 'A' + 'a' : out[i]);
  return true;
}

bool cli_url_default(const char *opt, char out[CLI_URL_MAX])
{
  const char *u = opt;
  if (!u || !*u)
    u = getenv("BLIGATE_URL");
  if (!u || !*u)
    u = CLI_DEFAULT_URL;
  return cli_url_normalise(u, out);
}

bool cli_call(const char *method, const char *base, const char *path, const char *bearer, const json_t *body,
              struct cli_reply *out)
{
  *out = (struct cli_reply){.status = 0};
  char url[CLI_URL_MAX + 128];
  if (!bg_fmt(url, sizeof url, "%s%s", base, path)) {
    bg_fmt(out->error, sizeof out->error, "URL too long");
    return false;
  }
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (body && !text) {
    bg_fmt(out->error, sizeof out->error, "out of memory");
    return false;
  }
  struct bg_httpc_req req = {
    .method = method,
    .url = url,
    .bearer = bearer,
    .content_type = text ? "application/json" : NULL,
    .body = text,
    .body_len = text ? strlen(text) : 0,
    .connect_timeout_ms = CLI_CONNECT_TIMEOUT_MS,
    .timeout_ms = CLI_TIMEOUT_MS,
    .max_response = CLI_MAX_RESPONSE,
  };
  struct bg_httpc_resp resp;
  bool ok = bg_httpc_do(&req, &resp);
  free(text);
  if (!ok) {
    bg_fmt(out->error, sizeof out->error, "%s", resp.error[0] ? resp.error : "request failed");
    return false;
  }
  out->status = resp.status;
  if (resp.len > 0)
    out->json = bg_httpc_json(&resp);
  if (resp.body)
    explicit_bzero(resp.body, resp.len); /* may hold a token */
  bg_httpc_resp_free(&resp);
  return true;
}

void cli_reply_free(struct cli_reply *r)
{
  json_decref(r->json);
  r->json = NULL;
}

const char *cli_str(const json_t *obj, const char *key)
{
  return json_string_value(json_object_get(obj, key));
}

bool cli_copy(char *dst, size_t cap, const char *src)
{
  return src && bg_fmt(dst, cap, "%s", src);
}

const char *cli_problem_code(const struct cli_reply *r)
{
  const char *c = r->status >= 400 ? cli_str(r->json, "code") : NULL;
  return c ? c : "";
}

void cli_put_safe(FILE *f, const char *s)
{
  if (!s) {
    fputc('-', f);
    return;
  }
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      fputc('?', f);
    } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* C1 controls in UTF-8 */
      fputc('?', f);
      p++;
    } else {
      fputc(*p, f);
    }
  }
}

void cli_report_failure(const char *what, const struct cli_reply *r)
{
  fprintf(stderr, "bligate: %s: ", what);
  if (r->status == 0) {
    fprintf(stderr, "no answer from the server: ");
    cli_put_safe(stderr, r->error);
  } else if (*cli_problem_code(r)) {
    cli_put_safe(stderr, cli_problem_code(r));
    const char *detail = cli_str(r->json, "detail");
    if (!detail)
      detail = cli_str(r->json, "title");
    if (detail) {
      fputs(": ", stderr);
      cli_put_safe(stderr, detail);
    }
    const char *rid = cli_str(r->json, "request_id");
    if (rid) {
      fputs(" (request ", stderr);
      cli_put_safe(stderr, rid);
      fputc(')', stderr);
    }
  } else {
    fprintf(stderr, "unexpected HTTP status %ld", r->status);
  }
  fputc('\n', stderr);
}
