/* Proves the problem registry (problems.def) is well-formed, that the lookups agree with it, and that every
 * code is documented in the OpenAPI contract under openapi/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bligate/problems.h"

#ifndef OPENAPI_DIR
#error "OPENAPI_DIR must name the openapi/ folder"
#endif

static const struct {
  const char *ename, *code;
  unsigned status;
  const char *title;
} table[] = {
#define X(e, code, status, title) {#e, code, status, title},
#include "bligate/problems.def"
#undef X
};
#define NCODES (sizeof table / sizeof table[0])

static bool kebab(const char *s)
{
  if (!(*s >= 'a' && *s <= 'z'))
    return false;
  for (const char *p = s; *p; p++) {
    bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
    if (!alnum && !(*p == '-' && p[1] && p[1] != '-'))
      return false;
  }
  return true;
}

static void registry_is_well_formed(void **state)
{
  assert_int_equal(NCODES, BG_P__COUNT);
  for (size_t i = 0; i < NCODES; i++) {
    if (!kebab(table[i].code))
      fail_msg("%s: code \"%s\" is not lower-case kebab-case", table[i].ename, table[i].code);
    if (table[i].status < 400 || table[i].status > 599)
      fail_msg("%s: status %u is not an error status", table[i].code, table[i].status);
    size_t tl = strlen(table[i].title);
    if (tl == 0 || table[i].title[0] == ' ' || table[i].title[tl - 1] == ' ')
      fail_msg("%s: empty or padded title", table[i].code);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(table[i].code, table[j].code))
        fail_msg("code \"%s\" is registered twice (%s and %s)", table[i].code, table[j].ename, table[i].ename);
  }
}

static void lookups_agree_with_the_registry(void **state)
{
  for (size_t i = 0; i < NCODES; i++) {
    enum bg_problem p = (enum bg_problem)i;
    assert_string_equal(bg_problem_code(p), table[i].code);
    assert_int_equal(bg_problem_status(p), table[i].status);
    assert_string_equal(bg_problem_title(p), table[i].title);
  }
  /* a few pinned by hand: the registry order and the enum stay in step */
  assert_string_equal(bg_problem_code(BG_P_NOT_FOUND), "not-found");
  assert_int_equal(bg_problem_status(BG_P_NOT_FOUND), 404);
  assert_string_equal(bg_problem_code(BG_P_METHOD_NOT_ALLOWED), "method-not-allowed");
  assert_int_equal(bg_problem_status(BG_P_METHOD_NOT_ALLOWED), 405);
  assert_int_equal(bg_problem_status(BG_P_VALIDATION), 400);
  assert_int_equal(bg_problem_status(BG_P_DB_UNAVAILABLE), 503);
  /* out of range falls back to internal-error, never reads past the table */
  assert_string_equal(bg_problem_code(BG_P__COUNT), "internal-error");
  assert_int_equal(bg_problem_status(BG_P__COUNT), 500);
  assert_non_null(bg_problem_title(BG_P__COUNT));
}

/* ---------- the contract ---------- */

struct text {
  char *buf;
  size_t len, cap;
  int nfiles;
};

static bool has_suffix(const char *s, const char *suf)
{
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

static void append_file(struct text *t, const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot read %s", path);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (t->len + n + 2 > t->cap) {
      t->cap = (t->len + n + 2) * 2;
      t->buf = realloc(t->buf, t->cap);
      assert_non_null(t->buf);
    }
    memcpy(t->buf + t->len, chunk, n);
    t->len += n;
  }
  fclose(f);
  t->buf[t->len++] = '\n'; /* files never run together into one token */
  t->buf[t->len] = '\0';
  t->nfiles++;
}

/* Every .yaml or .yml file below dir, except the bundled copies in openapi/build and any node_modules. */
static void collect(struct text *t, const char *dir, int depth)
{
  if (depth > 16)
    return;
  DIR *d = opendir(dir);
  if (!d)
    fail_msg("cannot open %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "node_modules") || (depth == 0 && !strcmp(e->d_name, "build")))
      continue;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    struct stat st;
    if (stat(path, &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      collect(t, path, depth + 1);
    else if (S_ISREG(st.st_mode) && (has_suffix(e->d_name, ".yaml") || has_suffix(e->d_name, ".yml")))
      append_file(t, path);
  }
  closedir(d);
}

static bool token_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

static bool has_token(const char *text, const char *word)
{
  size_t n = strlen(word);
  for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
    if ((p == text || !token_char(p[-1])) && !token_char(p[n]))
      return true;
  return false;
}

static void token_matching(void **state)
{
  /* the matcher itself: whole tokens only */
  assert_true(has_token("code: not-found\n", "not-found"));
  assert_true(has_token("[not-found]", "not-found"));
  assert_true(has_token("not-found", "not-found"));
  assert_true(has_token("\"not-found\"", "not-found"));
  assert_false(has_token("code: not-found-here\n", "not-found"));
  assert_false(has_token("code: is-not-found\n", "not-found"));
  assert_false(has_token("notfound", "not-found"));
  assert_false(has_token("forbidden2", "forbidden"));
  assert_true(has_token("forbidden2 forbidden", "forbidden"));
}

static void every_code_is_in_the_contract(void **state)
{
  struct text t = {0};
  collect(&t, OPENAPI_DIR, 0);
  if (t.nfiles == 0)
    fail_msg("no YAML files under %s", OPENAPI_DIR);

  char missing[4096] = "";
  size_t nmissing = 0;
  for (size_t i = 0; i < NCODES; i++)
    if (!has_token(t.buf, table[i].code)) {
      nmissing++;
      size_t l = strlen(missing);
      snprintf(missing + l, sizeof missing - l, "%s%s", l ? ", " : "", table[i].code);
    }
  free(t.buf);
  if (nmissing)
    fail_msg("%zu problem code(s) not documented under %s: %s", nmissing, OPENAPI_DIR, missing);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(registry_is_well_formed),
    cmocka_unit_test(lookups_agree_with_the_registry),
    cmocka_unit_test(token_matching),
    cmocka_unit_test(every_code_is_in_the_contract),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
