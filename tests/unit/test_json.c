/* Proves bg_json_parse_into fills a struct from a spec of every field type and reports each bad field,
 * by name and code, all at once (UTF-8 lengths in characters, real calendar dates, prefixes for nesting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bligate/json.h"

struct body {
  const char *name;
  const char *id;
  const char *national_id;
  const char *kind;
  int active;
  long count;
  const char *birth_date;
  json_t *items;
  json_t *tags;
  json_t *list;
  json_t *meta;
  const char *note;
};

static const char *const kinds[] = {"alpha", "beta", NULL};
static const char *const item_codes[] = {"x1", "x2", "x3", "x4", NULL};

static const struct bg_field spec[] = {
  BG_FIELD("name", BG_F_STRING, true, struct body, name, .min = 2, .max = 15),
  BG_FIELD("id", BG_F_UUID, true, struct body, id),
  BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct body, national_id),
  BG_FIELD("kind", BG_F_ENUM, true, struct body, kind, .enumv = kinds),
  BG_FIELD("active", BG_F_BOOL, false, struct body, active),
  BG_FIELD("count", BG_F_INT, false, struct body, count, .imin = 1, .imax = 100),
  BG_FIELD("birth_date", BG_F_DATE, false, struct body, birth_date),
  BG_FIELD("items", BG_F_STR_ARRAY, false, struct body, items, .min = 1, .max = 3, .enumv = item_codes),
  BG_FIELD("tags", BG_F_STR_ARRAY, false, struct body, tags, .max = 4),
  BG_FIELD("list", BG_F_ARRAY, false, struct body, list, .max = 2),
  BG_FIELD("meta", BG_F_OBJECT, false, struct body, meta),
  BG_FIELD("note", BG_F_STRING, false, struct body, note),
  BG_FIELD_END,
};

/* 15 characters, 45 bytes in UTF-8 */
#define ZH15 "臺北市政府社會局長期照顧管理處"
#define UUID "123e4567-e89b-42d3-a456-426614174000"

static const char good_text[] =
  "{\"name\":\"" ZH15 "\",\"id\":\"" UUID "\",\"national_id\":\"A123456789\",\"kind\":\"beta\","
  "\"active\":false,\"count\":100,\"birth_date\":\"2024-02-29\",\"items\":[\"x1\",\"x3\",\"x4\"],"
  "\"tags\":[\"a\",\"b\"],\"list\":[1,{\"k\":2}],\"meta\":{\"any\":[1,2]},\"note\":\"\"}";

static json_t *load(const char *text)
{
  json_error_t err;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (!j)
    fail_msg("bad test JSON %s: %s", text, err.text);
  return j;
}

static void prefill(struct body *b)
{
  memset(b, 0, sizeof *b);
  b->active = 7;
  b->count = 77;
}

/* Number of entries for field with code; every entry must have a non-empty detail. */
static int count_err(const json_t *errors, const char *field, const char *code)
{
  int n = 0;
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e)
  {
    const char *d = json_string_value(json_object_get(e, "detail"));
    assert_true(d && *d);
    if (!strcmp(json_string_value(json_object_get(e, "field")), field) &&
        !strcmp(json_string_value(json_object_get(e, "code")), code))
      n++;
  }
  return n;
}

static void utf8_len(void **state)
{
  assert_int_equal(bg_utf8_len(""), 0);
  assert_int_equal(bg_utf8_len("abc"), 3);
  assert_int_equal(bg_utf8_len(ZH15), 15);
  assert_int_equal(strlen(ZH15), 45);
  assert_int_equal(bg_utf8_len("a\xc3\xa9\xe7\xa4\xbe\xf0\x9f\x98\x80"), 4); /* a é 社 😀 */
}

static void good_input_fills_the_struct(void **state)
{
  json_t *obj = load(good_text), *errors = json_array();
  struct body b;
  prefill(&b);
  assert_true(bg_json_parse_into(obj, spec, &b, errors, NULL));
  assert_int_equal(json_array_size(errors), 0);
  assert_string_equal(b.name, ZH15);
  assert_string_equal(b.id, UUID);
  assert_string_equal(b.national_id, "A123456789");
  assert_string_equal(b.kind, "beta");
  assert_int_equal(b.active, 0);
  assert_int_equal(b.count, 100);
  assert_string_equal(b.birth_date, "2024-02-29");
  assert_ptr_equal(b.items, json_object_get(obj, "items"));
  assert_int_equal(json_array_size(b.items), 3);
  assert_ptr_equal(b.tags, json_object_get(obj, "tags"));
  assert_ptr_equal(b.list, json_object_get(obj, "list"));
  assert_ptr_equal(b.meta, json_object_get(obj, "meta"));
  assert_string_equal(b.note, "");
  /* strings are borrowed from the JSON, not copied */
  assert_ptr_equal(b.name, json_string_value(json_object_get(obj, "name")));
  json_decref(obj);
  json_decref(errors);
}

static void boundaries_accepted(void **state)
{
  static const struct {
    const char *member, *value;
  } ok[] = {
    {"name", "\"ab\""},           {"name", "\"" ZH15 "\""}, {"count", "1"},
    {"count", "100"},             {"active", "true"},       {"birth_date", "\"2000-02-29\""},
    {"birth_date", "\"1900-01-01\""}, {"birth_date", "\"2025-12-31\""}, {"items", "[\"x2\"]"},
    {"tags", "[]"},               {"list", "[]"},           {"national_id", "\"AC01234567\""},
    {"national_id", "\"A800000014\""}, {"kind", "\"alpha\""},   {"meta", "{}"},
    {"note", "null"},             {"active", "null"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    json_t *obj = load(good_text), *errors = json_array();
    json_object_set_new(obj, ok[i].member, load(ok[i].value));
    struct body b;
    prefill(&b);
    if (!bg_json_parse_into(obj, spec, &b, errors, NULL)) {
      char *s = json_dumps(errors, JSON_COMPACT);
      fail_msg("%s = %s refused: %s", ok[i].member, ok[i].value, s);
    }
    json_decref(obj);
    json_decref(errors);
  }
}

static void absent_optionals(void **state)
{
  json_t *obj = load("{\"name\":\"ab\",\"id\":\"" UUID "\",\"national_id\":\"A123456789\",\"kind\":\"alpha\"}");
  json_t *errors = json_array();
  struct body b;
  prefill(&b);
  assert_true(bg_json_parse_into(obj, spec, &b, errors, NULL));
  assert_int_equal(b.active, -1); /* absent bool */
  assert_int_equal(b.count, 77);  /* absent int: untouched */
  json_decref(obj);
  json_decref(errors);
}

static void each_bad_field_named_with_its_code(void **state)
{
  static const struct {
    const char *member;
    const char *value; /* NULL: delete the member */
    const char *code;
  } bad[] = {
    {"name", NULL, "required"},
    {"name", "null", "required"},
    {"name", "123", "type"},
    {"name", "[\"ab\"]", "type"},
    {"name", "\"a\"", "length"},
    {"name", "\"\"", "length"},
    {"name", "\"" ZH15 "一\"", "length"}, /* 16 characters */
    {"name", "\"abcdefghijklmnop\"", "length"},
    {"name", "\"a\\u0000b\"", "invalid"},
    {"id", NULL, "required"},
    {"id", "\"not-a-uuid\"", "invalid"},
    {"id", "\"123e4567e89b42d3a456426614174000\"", "invalid"},
    {"id", "5", "type"},
    {"national_id", "\"A123456788\"", "invalid"},
    {"national_id", "\"a123456789\"", "invalid"},
    {"national_id", "\"AE01234567\"", "invalid"},
    {"national_id", "1234567890", "type"},
    {"kind", "\"gamma\"", "enum"},
    {"kind", "\"Alpha\"", "enum"},
    {"kind", "\"\"", "enum"},
    {"kind", "true", "type"},
    {"active", "\"true\"", "type"},
    {"active", "1", "type"},
    {"count", "0", "range"},
    {"count", "101", "range"},
    {"count", "-5", "range"},
    {"count", "1.5", "type"},
    {"count", "\"5\"", "type"},
    {"count", "true", "type"},
    {"birth_date", "\"2025-02-29\"", "invalid"},
    {"birth_date", "\"1900-02-29\"", "invalid"},
    {"birth_date", "\"2024-02-30\"", "invalid"},
    {"birth_date", "\"2024-04-31\"", "invalid"},
    {"birth_date", "\"2024-13-01\"", "invalid"},
    {"birth_date", "\"2024-00-10\"", "invalid"},
    {"birth_date", "\"2024-01-00\"", "invalid"},
    {"birth_date", "\"2024-2-29\"", "invalid"},
    {"birth_date", "\"2024/02/29\"", "invalid"},
    {"birth_date", "\"2024-02-29T00:00:00Z\"", "invalid"},
    {"birth_date", "\"1899-12-31\"", "invalid"},
    {"birth_date", "20240229", "type"},
    {"items", "[]", "length"},
    {"items", "[\"x1\",\"x2\",\"x3\",\"x4\"]", "length"},
    {"items", "[\"x9\"]", "enum"},
    {"items", "[\"x1\",\"X2\"]", "enum"},
    {"items", "[\"x1\",\"x2\",\"x1\"]", "duplicate"},
    {"items", "\"x1\"", "type"},
    {"items", "{}", "type"},
    {"tags", "[1]", "type"},
    {"tags", "[\"a\",null]", "type"},
    {"tags", "[\"a\",\"a\"]", "duplicate"},
    {"tags", "[\"a\",\"b\",\"c\",\"d\",\"e\"]", "length"},
    {"list", "[1,2,3]", "length"},
    {"list", "{}", "type"},
    {"meta", "[]", "type"},
    {"meta", "\"x\"", "type"},
    {"zzz", "1", "unknown"},
    {"Name", "\"ab\"", "unknown"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *obj = load(good_text), *errors = json_array();
    if (bad[i].value)
      json_object_set_new(obj, bad[i].member, load(bad[i].value));
    else
      json_object_del(obj, bad[i].member);
    struct body b;
    prefill(&b);
    bool ok = bg_json_parse_into(obj, spec, &b, errors, NULL);
    char *s = json_dumps(errors, JSON_COMPACT);
    if (ok || json_array_size(errors) != 1 || count_err(errors, bad[i].member, bad[i].code) != 1)
      fail_msg("%s = %s: expected one \"%s\" error, got %s", bad[i].member, bad[i].value ? bad[i].value : "(absent)",
               bad[i].code, s);
    free(s);
    json_decref(obj);
    json_decref(errors);
  }
}

static void all_errors_reported(void **state)
{
  json_t *obj = load("{\"name\":\"a\",\"national_id\":\"A123456788\",\"kind\":\"gamma\",\"count\":0,"
                     "\"birth_date\":\"2025-02-29\",\"items\":[\"x1\",\"x1\"],\"zzz\":1,\"yyy\":2}");
  json_t *errors = json_array();
  struct body b;
  prefill(&b);
  assert_false(bg_json_parse_into(obj, spec, &b, errors, NULL));
  assert_int_equal(count_err(errors, "name", "length"), 1);
  assert_int_equal(count_err(errors, "id", "required"), 1);
  assert_int_equal(count_err(errors, "national_id", "invalid"), 1);
  assert_int_equal(count_err(errors, "kind", "enum"), 1);
  assert_int_equal(count_err(errors, "count", "range"), 1);
  assert_int_equal(count_err(errors, "birth_date", "invalid"), 1);
  assert_int_equal(count_err(errors, "items", "duplicate"), 1);
  assert_int_equal(count_err(errors, "zzz", "unknown"), 1);
  assert_int_equal(count_err(errors, "yyy", "unknown"), 1);
  assert_int_equal(json_array_size(errors), 9);
  json_decref(obj);
  json_decref(errors);
}

static void prefix_and_existing_errors(void **state)
{
  json_t *errors = json_array();
  bg_field_err(errors, "earlier", "invalid", "from an earlier check");
  assert_int_equal(json_array_size(errors), 1);

  /* a good object adds nothing and succeeds, whatever was already collected */
  json_t *obj = load(good_text);
  struct body b;
  prefill(&b);
  assert_true(bg_json_parse_into(obj, spec, &b, errors, "subjects[1]."));
  assert_int_equal(json_array_size(errors), 1);
  json_decref(obj);

  obj = load(good_text);
  json_object_set_new(obj, "national_id", json_string("A123456788"));
  json_object_set_new(obj, "extra", json_true());
  json_object_del(obj, "kind");
  prefill(&b);
  assert_false(bg_json_parse_into(obj, spec, &b, errors, "subjects[2]."));
  assert_int_equal(count_err(errors, "subjects[2].national_id", "invalid"), 1);
  assert_int_equal(count_err(errors, "subjects[2].extra", "unknown"), 1);
  assert_int_equal(count_err(errors, "subjects[2].kind", "required"), 1);
  assert_int_equal(count_err(errors, "national_id", "invalid"), 0);
  assert_int_equal(count_err(errors, "earlier", "invalid"), 1);
  assert_int_equal(json_array_size(errors), 4);
  json_decref(obj);
  json_decref(errors);
}

static void missing_or_non_object_body(void **state)
{
  json_t *errors = json_array();
  struct body b;
  prefill(&b);
  /* no body at all: each required field is reported */
  assert_false(bg_json_parse_into(NULL, spec, &b, errors, NULL));
  assert_int_equal(count_err(errors, "name", "required"), 1);
  assert_int_equal(count_err(errors, "id", "required"), 1);
  assert_int_equal(count_err(errors, "national_id", "required"), 1);
  assert_int_equal(count_err(errors, "kind", "required"), 1);
  assert_int_equal(json_array_size(errors), 4);
  json_array_clear(errors);

  /* an array where an object belongs */
  json_t *arr = load("[1]");
  assert_false(bg_json_parse_into(arr, spec, &b, errors, NULL));
  assert_int_equal(json_array_size(errors), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "code")), "type");
  json_array_clear(errors);
  assert_false(bg_json_parse_into(arr, spec, &b, errors, "subjects[0]."));
  assert_int_equal(json_array_size(errors), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "code")), "type");
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 0), "field")), "subjects[0]"));
  json_decref(arr);

  /* a spec with no required fields accepts an absent body */
  static const struct bg_field none[] = {BG_FIELD_END};
  json_array_clear(errors);
  assert_true(bg_json_parse_into(NULL, none, &b, errors, NULL));
  json_t *empty = json_object();
  assert_true(bg_json_parse_into(empty, none, &b, errors, NULL));
  json_object_set_new(empty, "x", json_null());
  assert_false(bg_json_parse_into(empty, none, &b, errors, NULL));
  assert_int_equal(count_err(errors, "x", "unknown"), 1);
  json_decref(empty);
  json_decref(errors);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(utf8_len),
    cmocka_unit_test(good_input_fills_the_struct),
    cmocka_unit_test(boundaries_accepted),
    cmocka_unit_test(absent_optionals),
    cmocka_unit_test(each_bad_field_named_with_its_code),
    cmocka_unit_test(all_errors_reported),
    cmocka_unit_test(prefix_and_existing_errors),
    cmocka_unit_test(missing_or_non_object_body),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
