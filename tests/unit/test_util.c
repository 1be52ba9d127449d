/* Proves the small helpers (base64/base64url, UUIDs, bounded parsing and formatting, constant-time compare,
 * SHA-256) and the service clock (RFC 3339 / PostgreSQL time parsing, formatting, test offset) are exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bligate/clock.h"
#include "bligate/util.h"

/* ---------- base64 ---------- */

static void fill(unsigned char *b, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)(i * 37u + seed * 101u + (i >> 3));
}

static void b64_round_trips(void **state)
{
  unsigned char data[70], ref[128];
  for (size_t n = 0; n <= 70; n++) {
    fill(data, n, (unsigned)n);
    char *std = bg_b64_encode(data, n), *url = bg_b64url_encode(data, n);
    assert_non_null(std);
    assert_non_null(url);

    /* standard alphabet: OpenSSL's encoder as the reference */
    int rl = EVP_EncodeBlock(ref, data, (int)n);
    assert_int_equal(strlen(std), (size_t)rl);
    assert_memory_equal(std, ref, (size_t)rl);

    /* url alphabet: same text with -_ for +/ and no padding */
    size_t want_url = (n * 4 + 2) / 3;
    assert_int_equal(strlen(url), want_url);
    for (size_t i = 0; i < want_url; i++) {
      char c = std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i];
      assert_int_equal(url[i], c);
    }
    assert_null(strchr(url, '='));

    size_t dn = 12345;
    unsigned char *d = bg_b64_decode(std, &dn);
    assert_non_null(d);
    assert_int_equal(dn, n);
    assert_memory_equal(d, data, n);
    assert_int_equal(d[n], 0); /* NUL-terminated for convenience */
    free(d);
    dn = 12345;
    d = bg_b64_decode(url, &dn);
    assert_non_null(d);
    assert_int_equal(dn, n);
    assert_memory_equal(d, data, n);
    free(d);
    free(std);
    free(url);
  }
}

static void b64_every_byte_value(void **state)
{
  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  char *url = bg_b64url_encode(all, sizeof all);
  size_t n;
  unsigned char *d = bg_b64_decode(url, &n);
  assert_non_null(d);
  assert_int_equal(n, 256);
  assert_memory_equal(d, all, 256);
  free(d);
  free(url);
}

static void b64_decode_rejects_garbage(void **state)
{
  static const char *const bad[] = {
    "@@@",    "A",       "AAAAA",    "QQ==QQ", "QQ=QQ", "QUJD=REVG", "QU!D", "QUJD\x01", "QUJD*",
    "Q===",   "QQ===",   "\xc3\xa9\xc3\xa9",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = 777;
    unsigned char *d = bg_b64_decode(bad[i], &n);
    if (d) {
      free(d);
      fail_msg("decoded garbage \"%s\"", bad[i]);
    }
  }
}

static void b64_decode_accepts_whitespace_and_both_alphabets(void **state)
{
  static const struct {
    const char *in, *out;
  } ok[] = {
    {"QUJDREVG", "ABCDEF"},       {"QUJD\nREVG", "ABCDEF"},     {" Q U J D\r\n\tR E V G ", "ABCDEF"},
    {"QUI=", "AB"},               {"QUI", "AB"},                {"QQ==", "A"},
    {"QQ", "A"},                  {"", ""},                     {"QUJD\nREVGRw==\n", "ABCDEFG"},
    {"-_-_", "\xfb\xff\xbf"},     {"+/+/", "\xfb\xff\xbf"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    size_t n = 777;
    unsigned char *d = bg_b64_decode(ok[i].in, &n);
    if (!d)
      fail_msg("refused \"%s\"", ok[i].in);
    assert_int_equal(n, strlen(ok[i].out));
    assert_memory_equal(d, ok[i].out, n);
    free(d);
  }
}

static void hex_and_sha256(void **state)
{
  char hex[65];
  bg_hex("\x00\x01\xab\xff", 4, hex);
  assert_string_equal(hex, "0001abff");
  bg_sha256_hex("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  unsigned char md[32];
  bg_sha256("", 0, md);
  bg_hex(md, 32, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---------- UUIDs ---------- */

static void uuid_v4(void **state)
{
  enum { N = 500 };
  static char seen[N][BG_UUID_LEN];
  for (int k = 0; k < N; k++) {
    char *u = seen[k];
    memset(u, 'x', BG_UUID_LEN);
    bg_uuid_v4(u);
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
      if (i == 8 || i == 13 || i == 18 || i == 23)
        assert_int_equal(u[i], '-');
      else if (!strchr("0123456789abcdef", u[i]) || !u[i])
        fail_msg("%s: not lower-case hex at %d", u, i);
    }
    assert_int_equal(u[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
    assert_true(bg_uuid_valid(u));
    for (int j = 0; j < k; j++)
      assert_string_not_equal(u, seen[j]);
  }
}

static void uuid_valid(void **state)
{
  assert_true(bg_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
  assert_true(bg_uuid_valid("00000000-0000-0000-0000-000000000000"));
  assert_true(bg_uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
  static const char *const bad[] = {
    "",
    "123e4567-e89b-42d3-a456-42661417400",   /* short */
    "123e4567-e89b-42d3-a456-4266141740000", /* long */
    "123e4567e89b-42d3-a456-4266141740000",  /* hyphen moved */
    "123e4567-e89b-42d3-a456_426614174000",
    "123e4567-e89b-42d3-a456-42661417400g",
    "{23e4567-e89b-42d3-a456-42661417400}",
    " 23e4567-e89b-42d3-a456-426614174000",
    "123e4567-e89b-42d3-a456-426614174000\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (bg_uuid_valid(bad[i]))
      fail_msg("accepted \"%s\"", bad[i]);
  assert_false(bg_uuid_valid(NULL));
}

/* ---------- bounded parsing and formatting ---------- */

static void parse_long(void **state)
{
  long v = -99;
  assert_true(bg_parse_long("0", 0, 10, &v));
  assert_int_equal(v, 0);
  assert_true(bg_parse_long("10", 0, 10, &v));
  assert_int_equal(v, 10);
  assert_true(bg_parse_long("-5", -5, 5, &v));
  assert_int_equal(v, -5);
  assert_true(bg_parse_long("200", 1, 200, &v));
  assert_int_equal(v, 200);

  char buf[32];
  snprintf(buf, sizeof buf, "%ld", LONG_MAX);
  assert_true(bg_parse_long(buf, 0, LONG_MAX, &v));
  assert_true(v == LONG_MAX);
  snprintf(buf, sizeof buf, "%ld", LONG_MIN);
  assert_true(bg_parse_long(buf, LONG_MIN, 0, &v));
  assert_true(v == LONG_MIN);

  v = 1234;
  static const char *const bad[] = {
    "11", "-1", "201", "",      "abc", "12abc", "1.5", "0x10", "1e3", "5 ",
    "99999999999999999999",    "-99999999999999999999",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    long hi = i < 3 ? (i == 2 ? 200 : 10) : LONG_MAX, lo = i < 3 ? (i == 2 ? 1 : 0) : LONG_MIN;
    if (bg_parse_long(bad[i], lo, hi, &v))
      fail_msg("accepted \"%s\" for %ld..%ld", bad[i], lo, hi);
    assert_int_equal(v, 1234); /* untouched on failure */
  }
  assert_false(bg_parse_long(NULL, 0, 10, &v));
  assert_int_equal(v, 1234);
}

static void ct_eq(void **state)
{
  assert_true(bg_ct_eq("secret", 6, "secret", 6));
  assert_false(bg_ct_eq("secret", 6, "secreT", 6));
  assert_false(bg_ct_eq("Secret", 6, "secret", 6));
  assert_false(bg_ct_eq("secret", 6, "secret!", 7));
  assert_false(bg_ct_eq("secret", 6, "secr", 4));
  assert_true(bg_ct_eq("", 0, "", 0));
  assert_true(bg_ct_eq("a\0b", 3, "a\0b", 3));
  assert_false(bg_ct_eq("a\0b", 3, "a\0c", 3));
}

static void fmt_truncation(void **state)
{
  char buf[8];
  assert_true(bg_fmt(buf, sizeof buf, "%s", "1234567"));
  assert_string_equal(buf, "1234567");
  assert_false(bg_fmt(buf, sizeof buf, "%s", "12345678"));
  assert_int_equal(strlen(buf), 7); /* still terminated */
  assert_true(bg_fmt(buf, sizeof buf, "%d-%d", 12, 34));
  assert_string_equal(buf, "12-34");
  assert_false(bg_fmt(buf, sizeof buf, "%d", 123456789));
  assert_true(bg_fmt(buf, sizeof buf, "%s", ""));
  assert_string_equal(buf, "");
}

/* ---------- clock ---------- */

#define T_2026_11_26_213422 ((time_t)1795728862)

static void time_parse_forms(void **state)
{
  static const char *const same[] = {
    "2026-11-26T21:34:22Z",
    "2026-11-26t21:34:22z",
    "2026-11-26T21:34:22+00:00",
    "2026-11-26T21:34:22-00:00",
    "2026-11-27T05:34:22+08:00",
    "2026-11-26T16:04:22-05:30",
    "2026-11-26T21:34:22.5Z",
    "2026-11-26T21:34:22.999999999Z",
    "2026-11-27T05:34:22.123+08:00",
    "2026-11-26 21:34:22.123456+00",
    "2026-11-26 21:34:22+00",
    "2026-11-27 05:34:22+08",
  };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    time_t t = 0;
    if (!bg_time_parse(same[i], &t))
      fail_msg("refused \"%s\"", same[i]);
    if (t != T_2026_11_26_213422)
      fail_msg("\"%s\" parsed as %lld", same[i], (long long)t);
  }
  time_t t;
  assert_true(bg_time_parse("2024-02-29T00:00:00Z", &t));
  assert_int_equal(t, 1709164800);
  assert_true(bg_time_parse("1970-01-01T00:00:00Z", &t));
  assert_int_equal(t, 0);
}

static void time_parse_rejects(void **state)
{
  static const char *const bad[] = {
    "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-26",
    "garbage",              "",                     "2026-11-26T21:34:22",  "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-26T24:00:00Z", "2026-11-26T21:60:00Z",
    "2026-11-26T21:34:22Zx", "2026-11-26T21:34:22.Z", "2026-11-26X21:34:22Z", "2026/11/26T21:34:22Z",
    "2026-11-26T21:34:22+8", "2026-11-26T21:34:22 Z", "2026-1-26T21:34:22Z",  "2026-11-26T21:34:22+08:00:00",
    /* well formed, but out of PostgreSQL's range: they were 500s from the database */
    "0000-01-01T00:00:00Z", "2024-01-01T00:00:00+16:00", "9999-12-31T23:00:00-23:00",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    time_t t = 42;
    if (bg_time_parse(bad[i], &t))
      fail_msg("accepted \"%s\" as %lld", bad[i], (long long)t);
    assert_int_equal(t, 42);
  }
  time_t t = 42;
  assert_false(bg_time_parse(NULL, &t));
}

/* RFC 3339 time-numoffset is "+" or "-", hour 00-23, ":", minute 00-59 (PostgreSQL's "+08" form aside).
 * Each of these once parsed (e.g. "+99:99" as a 100 h 39 min offset). */
static void time_parse_rejects_malformed_offsets(void **state)
{
  static const char *const bad[] = {
    "2026-11-26T21:34:22+08:",
    "2026-11-26T21:34:22+08:60",
    "2026-11-26T21:34:22+24:00",
    "2026-11-26T21:34:22+99:99",
  };
  size_t accepted = 0;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    time_t t = 42;
    if (bg_time_parse(bad[i], &t)) {
      print_error("accepted \"%s\" as %lld\n", bad[i], (long long)t);
      accepted++;
    }
  }
  assert_int_equal(accepted, 0);
}

static void time_fmt_round_trip(void **state)
{
  char buf[BG_TIME_LEN];
  assert_string_equal(bg_time_fmt(T_2026_11_26_213422, buf), "2026-11-26T21:34:22Z");
  assert_string_equal(bg_time_fmt(0, buf), "1970-01-01T00:00:00Z");
  static const time_t ts[] = {0, 1, 951782400 /* 2000-02-29 */, 1709164799, T_2026_11_26_213422, 4102444799};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
    time_t back = -1;
    bg_time_fmt(ts[i], buf);
    assert_int_equal(strlen(buf), 20);
    assert_true(bg_time_parse(buf, &back));
    assert_int_equal(back, ts[i]);
  }
  time_t now = time(NULL), back;
  assert_true(bg_time_parse(bg_time_fmt(now, buf), &back));
  assert_int_equal(back, now);
}

static void date_is_taipei(void **state)
{
  char d[BG_DATE_LEN];
  time_t t;
  assert_true(bg_time_parse("2026-11-26T15:59:59Z", &t));
  assert_string_equal(bg_date_fmt(t, d), "2026-11-26");
  assert_true(bg_time_parse("2026-11-26T16:00:00Z", &t));
  assert_string_equal(bg_date_fmt(t, d), "2026-11-27");
}

static void clock_offset(void **state)
{
  assert_int_equal(bg_clock_offset(), 0);
  time_t real0 = time(NULL);
  time_t before = bg_now();
  assert_true(before >= real0 && before <= real0 + 2);

  bg_clock_set_offset(86400 * 3);
  assert_int_equal(bg_clock_offset(), 86400 * 3);
  time_t shifted = bg_now();
  assert_true(shifted - before >= 86400 * 3 && shifted - before <= 86400 * 3 + 2);
  int64_t us = bg_now_us();
  assert_true(us / 1000000 - shifted >= 0 && us / 1000000 - shifted <= 2);

  bg_clock_set_offset(-3600);
  time_t back = bg_now();
  assert_true(before - back >= 3600 - 2 && before - back <= 3600);

  bg_clock_set_offset(0);
  time_t again = bg_now();
  assert_true(again >= before && again <= before + 2);

  /* the monotonic clock is not shifted */
  int64_t m0 = bg_mono_us();
  bg_clock_set_offset(1000000);
  int64_t m1 = bg_mono_us();
  bg_clock_set_offset(0);
  assert_true(m1 >= m0 && m1 - m0 < 1000000);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(b64_round_trips),
    cmocka_unit_test(b64_every_byte_value),
    cmocka_unit_test(b64_decode_rejects_garbage),
    cmocka_unit_test(b64_decode_accepts_whitespace_and_both_alphabets),
    cmocka_unit_test(hex_and_sha256),
    cmocka_unit_test(uuid_v4),
    cmocka_unit_test(uuid_valid),
    cmocka_unit_test(parse_long),
    cmocka_unit_test(ct_eq),
    cmocka_unit_test(fmt_truncation),
    cmocka_unit_test(time_parse_forms),
    cmocka_unit_test(time_parse_rejects),
    cmocka_unit_test(time_parse_rejects_malformed_offsets),
    cmocka_unit_test(time_fmt_round_trip),
    cmocka_unit_test(date_is_taipei),
    cmocka_unit_test(clock_offset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
