/* BLIGATE_* environment configuration (config.h). */
#include "bligate/config.h"
#include "bligate/util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void default_fail(const char *name, const char *why)
{
  fprintf(stderr, "configuration error: %s %s\n", name, why);
  exit(2);
}

static void (*fail)(const char *, const char *) = default_fail;

void bg_cfg_fail_hook(void (*fn)(const char *name, const char *why)) { fail = fn ? fn : default_fail; }

const char *bg_cfg_str(const char *name, const char *def)
{
  const char *v = getenv(name);
  if (v && *v)
    return v;
  if (!def)
    fail(name, "is required");
  return def;
}

long bg_cfg_long(const char *name, long def, long min, long max)
{
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  long out;
  if (!bg_parse_long(v, min, max, &out)) {
    char why[96];
    snprintf(why, sizeof why, "must be an integer from %ld to %ld", min, max);
    fail(name, why);
    return def;
  }
  return out;
}

bool bg_cfg_bool(const char *name, bool def)
{
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
    return true;
  if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
    return false;
  fail(name, "must be 1/0, true/false or yes/no");
  return def;
}

char *bg_cfg_file(const char *name, size_t *len)
{
  const char *path = bg_cfg_str(name, NULL);
  if (!path)
    return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    char why[256];
    snprintf(why, sizeof why, "names a file that cannot be read: %s", strerror(errno));
    fail(name, why);
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) {
    fail(name, "file is too large");
    return NULL;
  }
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}
