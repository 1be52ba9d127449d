/* The BLI sandbox's data generator (services/bli-sandbox/data.c): the same answer every time,
 * different people differ, the documented demo IDs, the no-record rule as README.md states it
 * (an independent HMAC here), a record for every catalogue item, and plausible shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "bligate/bli_items.h"
#include "bligate/twid.h"
#include "sbx.h"

/* The ID every example uses (records for every item) and the documented one without records
 * (default seed). */
#define WITH_RECORDS "A123456789"
#define WITHOUT_RECORDS "A123456814"

static int setup(void **state)
{
  (void)state;
  sbx_data_init(SBX_DEFAULT_SEED);
  return 0;
}

/* The n-th valid national ID of the form A1xxxxxxxc (n < 10^7). */
static void valid_id(unsigned n, char out[11])
{
  for (int c = 0; c < 10; c++) {
    snprintf(out, 11, "A1%07u%d", n % 10000000u, c);
    if (bg_twid_valid(out))
      return;
  }
  fail_msg("no check digit for %u", n);
}

static char *dump(const json_t *j)
{
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  assert_non_null(s);
  return s;
}

static void test_same_answer_every_time(void **state)
{
  (void)state;
  for (size_t i = 0; i < bg_bli_nitems; i++) {
    json_t *a = sbx_record(WITH_RECORDS, bg_bli_items[i].code), *b = sbx_record(WITH_RECORDS, bg_bli_items[i].code);
    assert_non_null(a);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
  }
}

static void test_every_catalogue_item_has_data(void **state)
{
  (void)state;
  /* an item added to bli_items.h without a generator would answer nothing for everyone */
  for (size_t i = 0; i < bg_bli_nitems; i++) {
    json_t *rec = sbx_record(WITH_RECORDS, bg_bli_items[i].code);
    assert_non_null(rec);
    assert_true(json_is_object(rec));
    assert_true(json_object_size(rec) > 0);
    json_decref(rec);
  }
  assert_null(sbx_record(WITH_RECORDS, "X0001"));
}

static void test_different_people_differ(void **state)
{
  (void)state;
  char *first = NULL;
  int differ = 0, compared = 0;
  for (unsigned n = 1000; n < 1040; n++) {
    char id[11];
    valid_id(n, id);
    json_t *rec = sbx_record(id, "C0101");
    if (!rec)
      continue;
    char *s = dump(rec);
    json_decref(rec);
    if (!first) {
      first = s;
      continue;
    }
    compared++;
    differ += strcmp(first, s) != 0;
    free(s);
  }
  free(first);
  assert_true(compared > 20);
  assert_int_equal(differ, compared);
}

static void test_items_of_one_person_differ(void **state)
{
  (void)state;
  /* B0201 and N0101 share a shape ({payments: [...]}) but not their content */
  json_t *a = sbx_record(WITH_RECORDS, "B0201"), *b = sbx_record(WITH_RECORDS, "N0101");
  assert_false(json_equal(a, b));
  json_decref(a);
  json_decref(b);
}

static void test_documented_ids(void **state)
{
  (void)state;
  for (size_t i = 0; i < bg_bli_nitems; i++) {
    json_t *rec = sbx_record(WITHOUT_RECORDS, bg_bli_items[i].code);
    assert_null(rec);
  }
  assert_true(bg_twid_valid(WITHOUT_RECORDS));
}

/* README.md: no record when the first 8 bytes (big-endian) of HMAC-SHA256(SHA-256(seed),
 * "<ID>|exists") are divisible by 10, except A123456789. */
static int documented_no_record(const char *seed, const char *id)
{
  unsigned char key[32], mac[32];
  unsigned len = 0;
  char msg[32];
  SHA256((const unsigned char *)seed, strlen(seed), key);
  snprintf(msg, sizeof msg, "%s|exists", id);
  HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)msg, strlen(msg), mac, &len);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | mac[i];
  return strcmp(id, WITH_RECORDS) != 0 && v % 10 == 0;
}

static void test_about_one_in_ten_has_no_record(void **state)
{
  (void)state;
  int none = 0;
  for (unsigned n = 0; n < 2000; n++) {
    char id[11];
    valid_id(2345000 + n, id);
    json_t *rec = sbx_record(id, "B0101");
    assert_int_equal(rec == NULL, documented_no_record(SBX_DEFAULT_SEED, id));
    none += rec == NULL;
    json_decref(rec);
  }
  assert_in_range(none, 120, 280);
}

static void test_the_seed_changes_the_data(void **state)
{
  (void)state;
  json_t *a = sbx_record(WITH_RECORDS, "C0101");
  sbx_data_init("another seed");
  json_t *b = sbx_record(WITH_RECORDS, "C0101");
  assert_false(json_equal(a, b));
  /* the no-record rule follows the seed too */
  json_t *other = sbx_record(WITHOUT_RECORDS, "C0101");
  assert_int_equal(other == NULL, documented_no_record("another seed", WITHOUT_RECORDS));
  json_decref(other);
  sbx_data_init(SBX_DEFAULT_SEED);
  json_t *c = sbx_record(WITH_RECORDS, "C0101");
  assert_true(json_equal(a, c));
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

static int num(const char *s, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static int is_date(const char *s)
{
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return 0;
  int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
  return y >= 1990 && y <= 2026 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static void test_enrollment_periods_are_plausible(void **state)
{
  (void)state;
  for (unsigned n = 0; n < 300; n++) {
    char id[11];
    valid_id(5000000 + n, id);
    json_t *rec = sbx_record(id, "C0101");
    if (!rec)
      continue;
    json_t *periods = json_object_get(rec, "periods"), *p;
    size_t i;
    assert_true(json_array_size(periods) >= 1);
    const char *prev_to = "";
    json_array_foreach(periods, i, p)
    {
      const char *from = json_string_value(json_object_get(p, "insured_from"));
      json_t *to = json_object_get(p, "insured_to");
      assert_true(is_date(from));
      assert_true(strcmp(from, prev_to) >= 0); /* in order, not overlapping */
      if (json_is_null(to)) {
        assert_int_equal(i, json_array_size(periods) - 1); /* only the last one is current */
        prev_to = "9999";
      } else {
        assert_true(is_date(json_string_value(to)));
        assert_true(strcmp(json_string_value(to), from) > 0);
        prev_to = json_string_value(to);
      }
      json_int_t grade = json_integer_value(json_object_get(p, "salary_grade"));
      assert_in_range(grade, 1, 12);
      assert_true(json_integer_value(json_object_get(p, "insured_salary")) >= 28590);
      assert_true(strlen(json_string_value(json_object_get(p, "employer"))) > 0);
      assert_int_equal(strlen(json_string_value(json_object_get(p, "employer_tax_id"))), 8);
    }
    json_decref(rec);
  }
}

static void test_unemployment_eligibility_is_consistent(void **state)
{
  (void)state;
  int eligible = 0, not = 0;
  for (unsigned n = 0; n < 300; n++) {
    char id[11];
    valid_id(6000000 + n, id);
    json_t *rec = sbx_record(id, "B0301");
    if (!rec)
      continue;
    int e = json_is_true(json_object_get(rec, "eligible"));
    json_int_t months = json_integer_value(json_object_get(rec, "insured_months_last_3_years"));
    int involuntary = json_is_true(json_object_get(rec, "involuntary_separation"));
    assert_int_equal(e, months >= 12 && involuntary);
    assert_int_equal(json_integer_value(json_object_get(rec, "monthly_amount")) > 0, e);
    eligible += e;
    not += !e;
    json_decref(rec);
  }
  assert_true(eligible > 0 && not > 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_same_answer_every_time, setup),
    cmocka_unit_test_setup(test_every_catalogue_item_has_data, setup),
    cmocka_unit_test_setup(test_different_people_differ, setup),
    cmocka_unit_test_setup(test_items_of_one_person_differ, setup),
    cmocka_unit_test_setup(test_documented_ids, setup),
    cmocka_unit_test_setup(test_about_one_in_ten_has_no_record, setup),
    cmocka_unit_test_setup(test_the_seed_changes_the_data, setup),
    cmocka_unit_test_setup(test_enrollment_periods_are_plausible, setup),
    cmocka_unit_test_setup(test_unemployment_eligibility_is_consistent, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
