/* JSON-lines logs to stdout, one write(2) per line so concurrent threads never interleave. */
#include "bligate/log.h"
#include "bligate/clock.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char *svc = "bligate";
static enum bg_log_level min_level = BG_LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void bg_log_init(const char *service, enum bg_log_level min)
{
  svc = service;
  min_level = min;
}

static void emit(json_t *o)
{
  /* Logs carry wall-clock time, not the test clock: operators read them. */
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char ts[BG_TIME_LEN], full[48];
  bg_time_fmt(tv.tv_sec, ts);
  snprintf(full, sizeof full, "%.19s.%03ldZ", ts, (long)(tv.tv_usec / 1000));
  json_object_set_new(o, "ts", json_string(full));
  json_object_set_new(o, "svc", json_string(svc));
  char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
  json_decref(o);
  if (!line)
    return;
  size_t n = strlen(line);
  line[n] = '\n'; /* replaces the NUL; we write n+1 bytes */
  ssize_t w = write(STDOUT_FILENO, line, n + 1);
  (void)w;
  free(line);
}

void bg_log(enum bg_log_level lvl, const char *request_id, const char *fmt, ...)
{
  if (lvl < min_level)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *o = json_object();
  json_object_set_new(o, "level", json_string(names[lvl]));
  if (request_id && *request_id)
    json_object_set_new(o, "request_id", json_string(request_id));
  json_object_set_new(o, "msg", json_string(msg));
  emit(o);
}

/* Printable ASCII with nothing JSON would escape. */
static bool plain(const char *s)
{
  for (; *s; s++)
    if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
      return false;
  return true;
}

void bg_log_access(const char *request_id, const char *method, const char *route, unsigned status,
                   double ms, const char *client)
{
  if (BG_LOG_INFO < min_level)
    return;
  /* One line per request: written directly when every field is plain ASCII (the usual case),
   * the same bytes jansson would produce, without building a JSON object per request. */
  if (plain(request_id) && plain(method) && plain(route) && (!client || plain(client)) && plain(svc)) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char ts[BG_TIME_LEN], msv[32], line[1024];
    bg_time_fmt(tv.tv_sec, ts);
    snprintf(msv, sizeof msv, "%.6g", ms);
    if (!strchr(msv, '.')) /* jansson writes reals with a decimal point */
      strncat(msv, ".0", sizeof msv - strlen(msv) - 1);
    int n = strpbrk(msv, "eEnN") ? -1 : snprintf(line, sizeof line,
                     "{\"level\":\"info\",\"msg\":\"request\",\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\","
                     "\"status\":%u,\"ms\":%s%s%s%s,\"ts\":\"%.19s.%03ldZ\",\"svc\":\"%s\"}\n",
                     request_id, method, route, status, msv, client ? ",\"client\":\"" : "", client ? client : "",
                     client ? "\"" : "", ts, (long)(tv.tv_usec / 1000), svc);
    if (n > 0 && (size_t)n < sizeof line) {
      ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
      (void)w;
      return;
    }
  }
  json_t *o = json_object();
  json_object_set_new(o, "level", json_string("info"));
  json_object_set_new(o, "msg", json_string("request"));
  json_object_set_new(o, "request_id", json_string(request_id));
  json_object_set_new(o, "method", json_string(method));
  /* The route pattern, never the raw path or query: they may carry identifiers. */
  json_object_set_new(o, "route", json_string(route));
  json_object_set_new(o, "status", json_integer(status));
  json_object_set_new(o, "ms", json_real(ms));
  if (client)
    json_object_set_new(o, "client", json_string(client));
  emit(o);
}
