/* The workflow service's pure code: the subjects of a form (services/workflow/subjects.c)
 * and the encryption of subjects' national IDs at rest (crypt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wf.h"
#include "bligate/json.h"

static json_t *subjects(const char *json)
{
  json_t *j = json_loads(json, 0, NULL);
  assert_non_null(j);
  return j;
}

static const char *field0(json_t *errors)
{
  return json_string_value(json_object_get(json_array_get(errors, 0), "field"));
}

static const char *code0(json_t *errors)
{
  return json_string_value(json_object_get(json_array_get(errors, 0), "code"));
}

static void test_subjects_union_in_catalogue_order(void **state)
{
  json_t *s = subjects("[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[\"B0201\",\"C0101\"]},"
                       " {\"name\":\"b\",\"national_id\":\"B123456780\",\"items\":[\"P0401\",\"C0101\"]}]");
  json_t *errors = json_array(), *items = NULL;
  assert_int_equal(wf_subjects_check(s, errors, &items), WF_SUBJECTS_OK);
  char *dump = json_dumps(items, JSON_COMPACT);
  assert_string_equal(dump, "[\"C0101\",\"B0201\",\"P0401\"]");
  free(dump);
  json_decref(items);
  json_decref(errors);
  json_decref(s);
}

static void test_subjects_refusals(void **state)
{
  static const struct {
    const char *json;
    enum wf_subjects_result want;
    const char *field, *code;
  } cases[] = {
    {"[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[\"C0101\"],\"age\":3}]", WF_SUBJECTS_UNKNOWN_FIELD,
     "subjects[0].age", "unknown"},
    {"[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[\"C0101\"]},"
     " {\"name\":\"b\",\"national_id\":\"A123456788\",\"items\":[\"C0101\"]}]",
     WF_SUBJECTS_INVALID, "subjects[1].national_id", "invalid"},
    {"[{\"name\":\"a\",\"national_id\":\"a123456789\",\"items\":[\"C0101\"]}]", WF_SUBJECTS_INVALID,
     "subjects[0].national_id", "invalid"},
    {"[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[\"C0101\"]},"
     " {\"name\":\"b\",\"national_id\":\"A123456789\",\"items\":[\"B0101\"]}]",
     WF_SUBJECTS_INVALID, "subjects[1].national_id", "duplicate"},
    {"[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[\"C0101\",\"X0000\"]}]", WF_SUBJECTS_ITEM_UNKNOWN,
     "subjects[0].items", "item-unknown"},
    {"[{\"name\":\"a\",\"national_id\":\"A123456789\",\"items\":[]}]", WF_SUBJECTS_INVALID, "subjects[0].items",
     "length"},
    {"[{\"name\":\"\",\"national_id\":\"A123456789\",\"items\":[\"C0101\"]}]", WF_SUBJECTS_INVALID, "subjects[0].name",
     "length"},
    {"[\"A123456789\"]", WF_SUBJECTS_INVALID, "subjects[0].", "type"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *s = subjects(cases[i].json), *errors = json_array(), *items = NULL;
    assert_int_equal(wf_subjects_check(s, errors, &items), cases[i].want);
    assert_null(items);
    assert_string_equal(field0(errors), cases[i].field);
    assert_string_equal(code0(errors), cases[i].code);
    json_decref(errors);
    json_decref(s);
  }
}

static void test_items_missing_and_active(void **state)
{
  json_t *wanted = json_loads("[\"C0101\",\"P0301\",\"B0101\"]", 0, NULL);
  json_t *grants = json_loads("{\"items\":[{\"item\":\"C0101\",\"status\":\"active\"},"
                              "{\"item\":\"B0101\",\"status\":\"suspended\"},{\"item\":\"P0301\",\"status\":\"pending\"}]}",
                              0, NULL);
  json_t *active = wf_active_items(grants);
  json_t *missing = wf_items_missing(wanted, active);
  char *dump = json_dumps(missing, JSON_COMPACT);
  assert_string_equal(dump, "[\"P0301\",\"B0101\"]");
  free(dump);
  json_decref(missing);
  json_decref(active);
  json_decref(grants);
  json_decref(wanted);
}

static void test_national_id_in_free_text(void **state)
{
  char field[160];
  json_t *ok = json_loads("{\"relevance\":\"A12345678 is not ten\",\"subjects\":[{\"national_id\":\"A123456789\"}]}",
                          0, NULL);
  assert_false(bg_json_find_twid(ok, "", field, sizeof field));
  json_t *bad = json_loads("{\"relevance\":\"ok\",\"subjects\":[{\"name\":\"x\"},{\"name\":\"王A123456789\"}]}", 0, NULL);
  assert_true(bg_json_find_twid(bad, "", field, sizeof field));
  assert_string_equal(field, "subjects[1].name");
  json_t *plain = json_string("case B123456780");
  assert_true(bg_json_find_twid(plain, "", field, sizeof field));
  assert_string_equal(field, "(body)");
  json_decref(plain);
  json_decref(bad);
  json_decref(ok);
}

static int crypt_setup(void **state)
{
  char path[] = "/tmp/wf-unit-key-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
  assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
  close(fd);
  setenv("BLIGATE_SUBJECT_KEY_FILE", path, 1);
  wf_crypt_init();
  unlink(path);
  return 0;
}

static void test_seal_and_open(void **state)
{
  const char *hmac = "4f2a0000000000000000000000000000000000000000000000000000000000aa";
  char *a = wf_seal("A123456789", hmac), *b = wf_seal("A123456789", hmac);
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(strstr(a, "v1."));
  assert_null(strstr(a, "A123456789"));
  assert_string_not_equal(a, b); /* a fresh nonce each time */
  char *plain = wf_open(a, hmac);
  assert_non_null(plain);
  assert_string_equal(plain, "A123456789");
  free(plain);
  /* bound to the row's HMAC: moved to another row it does not open */
  assert_null(wf_open(a, "4f2a0000000000000000000000000000000000000000000000000000000000ab"));
  /* tampered */
  size_t n = strlen(a);
  a[n - 2] = a[n - 2] == 'A' ? 'B' : 'A';
  assert_null(wf_open(a, hmac));
  /* another key id */
  b[3] = b[3] == '0' ? '1' : '0';
  assert_null(wf_open(b, hmac));
  assert_null(wf_open("v2.xxxxxxxx.AAAA", hmac));
  assert_null(wf_open("", hmac));
  free(a);
  free(b);
}

/* wf_visible_chars: what a reader sees of a statement, name or reference (rule 5: blank is not
 * a legal statement). */
static void test_visible_chars(void **state)
{
  (void)state;
  assert_int_equal(wf_visible_chars("\xe7\xac\xac" "5" "\xe6\xa2\x9d" "\xe4\xb9\x8b" "1"), 5); /* 第5條之1 */
  assert_int_equal(wf_visible_chars("a b"), 2);
  assert_int_equal(wf_visible_chars("\xf0\x9f\x98\x80"), 1);       /* an emoji shows */
  assert_int_equal(wf_visible_chars("a\xcc\x81"), 1);                /* a + combining acute */
  const char *blank[] = {
    "", " \t\r\n", "\xe3\x80\x80",                  /* ideographic space */
    "\xe2\xa0\x80",                                   /* U+2800 Braille blank */
    "\xef\xb8\x8f", "\xef\xb8\x80",                 /* variation selectors 16, 1 */
    "\xe2\x80\x8b\xe2\x80\x8d\xe2\x80\x8f",      /* zero-width space, joiner, RLM */
    "\xe2\x81\xa0\xe2\x81\xa4",                     /* word joiner, invisible plus */
    "\xef\xbb\xbf",                                   /* BOM */
    "\xe1\xa0\x8b",                                   /* Mongolian variation selector */
    "\xf3\xa0\x81\x81",                              /* tag A, U+E0041 */
    "\xef\xbf\xb9\xef\xbf\xbb",                     /* interlinear annotation */
    "\xe3\x85\xa4",                                   /* Hangul filler */
    "\xcc\x81",                                        /* a lone combining mark */
    "\xee\x80\x80",                                   /* private use */
  };
  for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++)
    if (wf_visible_chars(blank[i]) != 0)
      fail_msg("blank[%zu] counted as showing", i);
  assert_int_equal(wf_visible_chars(NULL), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_subjects_union_in_catalogue_order),
    cmocka_unit_test(test_subjects_refusals),
    cmocka_unit_test(test_items_missing_and_active),
    cmocka_unit_test(test_national_id_in_free_text),
    cmocka_unit_test(test_visible_chars),
    cmocka_unit_test_setup(test_seal_and_open, crypt_setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
