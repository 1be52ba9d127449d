/* Canonical JSON of audit events (canon.h). Written out by hand rather than with jansson's
 * dump flags so the form does not depend on a library version's escaping choices. */
#include "canon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
  char *p;
  size_t len, cap;
  bool ok;
};

static void put(struct buf *b, const char *s, size_t n)
{
  if (!b->ok)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->ok = false;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void put_string(struct buf *b, const char *s, size_t n)
{
  put(b, "\"", 1);
  size_t run = 0; /* bytes copied verbatim in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[8];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default:
      if (c < 0x20) {
        snprintf(u, sizeof u, "\\u%04x", c);
        esc = u;
      }
    }
    if (esc) {
      put(b, s + i - run, run);
      run = 0;
      put(b, esc, strlen(esc));
    } else {
      run++;
    }
  }
  put(b, s + n - run, run);
  put(b, "\"", 1);
}

static int key_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool emit(struct buf *b, const json_t *j, const char **why, int depth)
{
  if (depth > 32) {
    *why = "nested too deeply";
    return false;
  }
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    size_t n = json_object_size(j), i = 0;
    const char **keys = n ? malloc(n * sizeof *keys) : NULL;
    if (n && !keys) {
      b->ok = false;
      return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) keys[i++] = k;
    if (n > 1)
      qsort(keys, n, sizeof *keys, key_cmp);
    put(b, "{", 1);
    bool ok = true;
    for (i = 0; ok && i < n; i++) {
      if (i)
        put(b, ",", 1);
      put_string(b, keys[i], strlen(keys[i]));
      put(b, ":", 1);
      ok = emit(b, json_object_get(j, keys[i]), why, depth + 1);
    }
    put(b, "}", 1);
    free(keys);
    return ok;
  }
  case JSON_ARRAY: {
    put(b, "[", 1);
    for (size_t i = 0; i < json_array_size(j); i++) {
      if (i)
        put(b, ",", 1);
      if (!emit(b, json_array_get(j, i), why, depth + 1))
        return false;
    }
    put(b, "]", 1);
    return true;
  }
  case JSON_STRING:
    put_string(b, json_string_value(j), json_string_length(j));
    return true;
  case JSON_INTEGER: {
    char num[32];
    int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    put(b, num, (size_t)n);
    return true;
  }
  case JSON_REAL:
    *why = "floating-point numbers have no canonical form here; use an integer or a string";
    return false;
  case JSON_TRUE:
    put(b, "true", 4);
    return true;
  case JSON_FALSE:
    put(b, "false", 5);
    return true;
  case JSON_NULL:
    put(b, "null", 4);
    return true;
  }
  *why = "unknown JSON type";
  return false;
}

char *aud_canon(const json_t *j, size_t *len, const char **why)
{
  struct buf b = {.ok = true};
  const char *dummy;
  if (!why)
    why = &dummy;
  *why = NULL;
  if (!j || !emit(&b, j, why, 0) || !b.ok) {
    if (!*why)
      *why = "out of memory";
    free(b.p);
    return NULL;
  }
  if (len)
    *len = b.len;
  return b.p;
}
