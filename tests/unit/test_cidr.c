/* Proves BLIGATE_TRUSTED_PROXIES' parser takes addresses and ranges of both families, refuses
 * everything else (naming the entry), and that matching honours the prefix to the bit, treats
 * an IPv4-mapped IPv6 peer as its IPv4 address and trusts nothing from an empty list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "bligate/cidr.h"

static struct sockaddr_storage v4(const char *a)
{
  struct sockaddr_storage ss = {0};
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  in->sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *a)
{
  struct sockaddr_storage ss = {0};
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  in6->sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, a, &in6->sin6_addr), 1);
  return ss;
}

static bool in(const char *list, struct sockaddr_storage ss)
{
  struct bg_cidr c[8];
  size_t n = 0;
  char err[128];
  assert_true(bg_cidr_parse_list(list, c, 8, &n, err, sizeof err));
  return bg_cidr_match(c, n, (const struct sockaddr *)&ss);
}

static void parses_lists(void **state)
{
  (void)state;
  struct bg_cidr c[8];
  size_t n = 99;
  char err[128];
  assert_true(bg_cidr_parse_list("", c, 8, &n, err, sizeof err));
  assert_int_equal(n, 0);
  assert_true(bg_cidr_parse_list(NULL, c, 8, &n, err, sizeof err));
  assert_int_equal(n, 0);
  assert_true(bg_cidr_parse_list(" 10.0.0.5, 10.244.0.0/16 fd00::/8,,", c, 8, &n, err, sizeof err));
  assert_int_equal(n, 3);
  assert_int_equal(c[0].family, AF_INET);
  assert_int_equal(c[0].prefix, 32);
  assert_int_equal(c[1].prefix, 16);
  assert_int_equal(c[2].family, AF_INET6);
  assert_int_equal(c[2].prefix, 8);
  assert_true(bg_cidr_parse_list("0.0.0.0/0", c, 8, &n, err, sizeof err));
  assert_int_equal(c[0].prefix, 0);
}

static void refuses_bad_entries(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "gateway",      /* a name: nothing is resolved */
    "10.0.0.256",   /* not an address */
    "10.0.0.0/33",  /* prefix too long for IPv4 */
    "fd00::/129",   /* and for IPv6 */
    "10.0.0.0/-1",  /* negative */
    "10.0.0.0/",    /* no prefix after the slash */
    "10.0.0.0/8x",  /* junk after it */
    "10.0.0.5/8",   /* bits beyond the prefix: a typo, not a range */
    "10.0.0.0/+8",  /* no sign */
    "10.0.0.0/8/8", /* two slashes */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct bg_cidr c[4];
    size_t n = 0;
    char err[128] = "";
    char list[64];
    snprintf(list, sizeof list, "10.1.1.1, %s", bad[i]);
    assert_false(bg_cidr_parse_list(list, c, 4, &n, err, sizeof err));
    assert_non_null(strstr(err, bad[i])); /* the operator is told which entry */
  }
  struct bg_cidr one[1];
  size_t n = 0;
  char err[128] = "";
  assert_false(bg_cidr_parse_list("10.0.0.1, 10.0.0.2", one, 1, &n, err, sizeof err));
  assert_non_null(strstr(err, "too many"));
}

static void matches_to_the_bit(void **state)
{
  (void)state;
  assert_true(in("10.244.0.0/16", v4("10.244.0.1")));
  assert_true(in("10.244.0.0/16", v4("10.244.255.255")));
  assert_false(in("10.244.0.0/16", v4("10.245.0.0")));
  assert_false(in("10.244.0.0/16", v4("10.243.255.255")));
  /* a prefix that is not a multiple of 8: 10.244.128.0/17 is .128.0 to .255.255 */
  assert_true(in("10.244.128.0/17", v4("10.244.128.0")));
  assert_false(in("10.244.128.0/17", v4("10.244.127.255")));
  assert_true(in("10.0.0.5", v4("10.0.0.5")));
  assert_false(in("10.0.0.5", v4("10.0.0.6")));
  assert_true(in("0.0.0.0/0", v4("192.0.2.1")));
  assert_true(in("fd00::/8", v6("fd12:3456::1")));
  assert_false(in("fd00::/8", v6("fe80::1")));
  /* families do not mix, except an IPv4-mapped peer */
  assert_false(in("::/0", v4("10.0.0.1")));
  assert_true(in("10.0.0.0/8", v6("::ffff:10.1.2.3")));
  assert_false(in("10.0.0.0/8", v6("::ffff:11.1.2.3")));
  /* nothing is trusted by an empty list, nor an unknown peer */
  assert_false(in("", v4("10.0.0.1")));
  struct bg_cidr c[1];
  size_t n = 0;
  char err[64];
  assert_true(bg_cidr_parse_list("0.0.0.0/0", c, 1, &n, err, sizeof err));
  assert_false(bg_cidr_match(c, n, NULL));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(parses_lists),
    cmocka_unit_test(refuses_bad_entries),
    cmocka_unit_test(matches_to_the_bit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
