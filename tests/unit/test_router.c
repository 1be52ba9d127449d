/* Proves bg_route_match picks the route by method and exact path shape, extracts path parameters,
 * and tells "path known, method not" (405) from "no such path" (404). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "bligate/http.h"

static const struct bg_route routes[] = {
  {.method = "GET", .pattern = "/v1/accounts"},
  {.method = "POST", .pattern = "/v1/accounts"},
  {.method = "GET", .pattern = "/v1/accounts/{}"},
  {.method = "POST", .pattern = "/v1/accounts/{}/certificates"},
  {.method = "DELETE", .pattern = "/v1/accounts/{}/certificates/{}"},
  {.method = "GET", .pattern = "/v1/units/current"},
  {.method = "GET", .pattern = "/v1/units/{}"},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static char params[BG_MAX_PARAMS][128];

static int match(const char *method, const char *path, bool *pm)
{
  memset(params, 'x', sizeof params); /* stale content must not survive */
  return bg_route_match(routes, NROUTES, method, path, params, pm);
}

static void exact_matches(void **state)
{
  bool pm = false;
  assert_int_equal(match("GET", "/v1/accounts", &pm), 0);
  assert_true(pm);
  assert_string_equal(params[0], "");
  assert_int_equal(match("POST", "/v1/accounts", &pm), 1);
  assert_true(pm);
  assert_int_equal(match("GET", "/v1/units/current", &pm), 5); /* a literal before a parameter wins */
}

static void parameters_extracted(void **state)
{
  bool pm = false;
  assert_int_equal(match("GET", "/v1/accounts/123e4567-e89b-42d3-a456-426614174000", &pm), 2);
  assert_string_equal(params[0], "123e4567-e89b-42d3-a456-426614174000");
  assert_string_equal(params[1], "");

  assert_int_equal(match("POST", "/v1/accounts/abc/certificates", &pm), 3);
  assert_string_equal(params[0], "abc");
  assert_string_equal(params[1], "");

  /* earlier candidates that captured a parameter and then failed leave nothing behind */
  assert_int_equal(match("DELETE", "/v1/accounts/a1/certificates/c2", &pm), 4);
  assert_string_equal(params[0], "a1");
  assert_string_equal(params[1], "c2");
  assert_string_equal(params[2], "");
  assert_string_equal(params[3], "");

  assert_int_equal(match("GET", "/v1/units/u-9", &pm), 6);
  assert_string_equal(params[0], "u-9");

  /* parameters are raw here; the router percent-decodes them afterwards */
  assert_int_equal(match("GET", "/v1/accounts/a%2Fb", &pm), 2);
  assert_string_equal(params[0], "a%2Fb");
}

static void other_method_is_405(void **state)
{
  static const struct {
    const char *method, *path;
  } cases[] = {
    {"PUT", "/v1/accounts"},
    {"DELETE", "/v1/accounts"},
    {"get", "/v1/accounts"}, /* methods are case-sensitive */
    {"DELETE", "/v1/accounts/abc"},
    {"PATCH", "/v1/accounts/abc"},
    {"GET", "/v1/accounts/abc/certificates"},
    {"GET", "/v1/accounts/abc/certificates/def"},
    {"POST", "/v1/units/current"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool pm = false;
    int idx = match(cases[i].method, cases[i].path, &pm);
    if (idx != -1 || !pm)
      fail_msg("%s %s: expected -1 with path_matched, got %d/%d", cases[i].method, cases[i].path, idx, pm);
  }
}

static void unknown_path_is_404(void **state)
{
  static const char *const paths[] = {
    "/v1/nothing",
    "/v1/account",
    "/v1/accountsX",
    "/v2/accounts",
    "/v1/accounts/a/b",
    "/v1/accounts/a/certificates/b/c",
    "",
    "/",
    "//v1/accounts",
    "v1/accounts",
    /* trailing slashes do not match */
    "/v1/accounts/",
    "/v1/accounts/abc/",
    "/v1/accounts/abc/certificates/",
    "/v1/units/current/",
    /* an empty segment is not a parameter */
    "/v1/accounts//certificates",
    "/v1/accounts/a//certificates",
  };
  const char *const methods[] = {"GET", "POST", "DELETE"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    for (size_t m = 0; m < 3; m++) {
      bool pm = true;
      int idx = match(methods[m], paths[i], &pm);
      if (idx != -1 || pm)
        fail_msg("%s \"%s\": expected -1 without path_matched, got %d/%d", methods[m], paths[i], idx, pm);
    }
  /* path_matched is reset by every call */
  bool pm = true;
  assert_int_equal(bg_route_match(routes, NROUTES, "GET", "/nope", params, &pm), -1);
  assert_false(pm);
}

static void long_segments(void **state)
{
  char path[400], seg[256];
  bool pm;

  memset(seg, 'a', 200);
  seg[200] = '\0';
  snprintf(path, sizeof path, "/v1/accounts/%s", seg);
  pm = true;
  assert_int_equal(match("GET", path, &pm), -1);
  assert_false(pm);
  snprintf(path, sizeof path, "/v1/accounts/%s/certificates", seg);
  assert_int_equal(match("POST", path, &pm), -1);
  assert_false(pm);

  /* the longest parameter that fits, 127 bytes, is taken whole; 128 is refused */
  seg[127] = '\0';
  snprintf(path, sizeof path, "/v1/accounts/%s", seg);
  assert_int_equal(match("GET", path, &pm), 2);
  assert_string_equal(params[0], seg);
  seg[127] = 'a';
  seg[128] = '\0';
  snprintf(path, sizeof path, "/v1/accounts/%s", seg);
  assert_int_equal(match("GET", path, &pm), -1);
  assert_false(pm);
}

static void empty_table(void **state)
{
  bool pm = true;
  assert_int_equal(bg_route_match(routes, 0, "GET", "/v1/accounts", params, &pm), -1);
  assert_false(pm);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(exact_matches),
    cmocka_unit_test(parameters_extracted),
    cmocka_unit_test(other_method_is_405),
    cmocka_unit_test(unknown_path_is_404),
    cmocka_unit_test(long_segments),
    cmocka_unit_test(empty_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
