/* Declarative JSON body parsing (json.h). */
#include "bligate/json.h"
#include "bligate/http.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

void bg_field_err(json_t *errors, const char *field, const char *code, const char *detail)
{
  json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "field", field, "code", code, "detail", detail));
}

size_t bg_utf8_len(const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80)
      n++;
  return n;
}

char *bg_json_dump(const json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS); }

const char *bg_json_uuid_lower(json_t *v)
{
  const char *s = json_string_value(v);
  if (!s || !bg_uuid_valid(s) || strspn(s, "0123456789abcdef-") == strlen(s))
    return s;
  char low[BG_UUID_LEN];
  for (size_t i = 0; i < BG_UUID_LEN; i++)
    low[i] = (char)tolower((unsigned char)s[i]);
  json_string_set(v, low);
  return json_string_value(v);
}

static bool in_enum(const char *s, const char *const *enumv)
{
  for (; enumv && *enumv; enumv++)
    if (strcmp(s, *enumv) == 0)
      return true;
  return false;
}

static bool valid_date(const char *s)
{
  int y, m, d;
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
      return false;
  y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  m = (s[5] - '0') * 10 + (s[6] - '0');
  d = (s[8] - '0') * 10 + (s[9] - '0');
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
    return false;
  if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return false;
  return true;
}

bool bg_json_parse_into(const json_t *obj, const struct bg_field *spec, void *out, json_t *errors,
                        const char *prefix)
{
  size_t before = json_array_size(errors);
  char fname[160], detail[200];
  const char *key;
  json_t *val;
  if (!prefix)
    prefix = "";
  if (obj && !json_is_object(obj)) {
    bg_field_err(errors, *prefix ? prefix : "(body)", "type", "must be a JSON object");
    return false;
  }
  json_object_foreach((json_t *)obj, key, val)
  {
    const struct bg_field *f = spec;
    while (f->name && strcmp(f->name, key) != 0)
      f++;
    if (!f->name) {
      snprintf(fname, sizeof fname, "%s%s", prefix, key);
      bg_field_err(errors, fname, "unknown", "this field is not accepted here");
    }
  }
  for (const struct bg_field *f = spec; f->name; f++) {
    char *slot = (char *)out + f->off;
    val = obj ? json_object_get(obj, f->name) : NULL;
    snprintf(fname, sizeof fname, "%s%s", prefix, f->name);
    if (f->type == BG_F_BOOL)
      *(int *)slot = -1;
    else if (f->type != BG_F_INT) /* strings and JSON values: NULL when absent, as json.h says */
      *(void **)slot = NULL;
    if (!val || json_is_null(val)) {
      if (f->required)
        bg_field_err(errors, fname, "required", "this field is required");
      continue;
    }
    switch (f->type) {
    case BG_F_STRING:
    case BG_F_UUID:
    case BG_F_NATIONAL_ID:
    case BG_F_ENUM:
    case BG_F_DATE: {
      if (!json_is_string(val)) {
        bg_field_err(errors, fname, "type", "must be a string");
        break;
      }
      const char *s = json_string_value(val);
      size_t n = bg_utf8_len(s);
      if (strlen(s) != json_string_length(val)) {
        bg_field_err(errors, fname, "invalid", "must not contain NUL characters");
      } else if (f->type == BG_F_UUID && !bg_uuid_valid(s)) {
        bg_field_err(errors, fname, "invalid", "must be a UUID");
      } else if (f->type == BG_F_NATIONAL_ID && !bg_twid_valid(s)) {
        bg_field_err(errors, fname, "invalid",
                     "must be a valid Taiwan national ID or resident certificate number (upper case)");
      } else if (f->type == BG_F_ENUM && !in_enum(s, f->enumv)) {
        bg_field_err(errors, fname, "enum", "is not one of the allowed values");
      } else if (f->type == BG_F_DATE && !valid_date(s)) {
        bg_field_err(errors, fname, "invalid", "must be a date YYYY-MM-DD");
      } else if ((f->min && n < f->min) || (f->max && n > f->max)) {
        snprintf(detail, sizeof detail, "must be %zu to %zu characters", f->min, f->max ? f->max : (size_t)-1);
        bg_field_err(errors, fname, "length", detail);
      } else {
        if (f->type == BG_F_UUID)
          s = bg_json_uuid_lower(val);
        *(const char **)slot = s;
      }
      break;
    }
    case BG_F_BOOL:
      if (!json_is_boolean(val))
        bg_field_err(errors, fname, "type", "must be a boolean");
      else
        *(int *)slot = json_is_true(val);
      break;
    case BG_F_INT:
      if (!json_is_integer(val)) {
        bg_field_err(errors, fname, "type", "must be an integer");
      } else if (json_integer_value(val) < f->imin || json_integer_value(val) > f->imax) {
        snprintf(detail, sizeof detail, "must be from %ld to %ld", f->imin, f->imax);
        bg_field_err(errors, fname, "range", detail);
      } else {
        *(long *)slot = (long)json_integer_value(val);
      }
      break;
    case BG_F_STR_ARRAY:
    case BG_F_ARRAY: {
      if (!json_is_array(val)) {
        bg_field_err(errors, fname, "type", "must be an array");
        break;
      }
      size_t n = json_array_size(val);
      if ((f->min && n < f->min) || (f->max && n > f->max)) {
        snprintf(detail, sizeof detail, "must have %zu to %zu entries", f->min, f->max);
        bg_field_err(errors, fname, "length", detail);
        break;
      }
      bool ok = true;
      if (f->type == BG_F_STR_ARRAY) {
        size_t i;
        json_t *e;
        json_array_foreach(val, i, e)
        {
          if (!json_is_string(e) || (f->enumv && !in_enum(json_string_value(e), f->enumv))) {
            snprintf(detail, sizeof detail, "entry %zu is not %s", i,
                     f->enumv ? "one of the allowed values" : "a string");
            bg_field_err(errors, fname, f->enumv ? "enum" : "type", detail);
            ok = false;
            break;
          }
          for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(val, k)), json_string_value(e)) == 0) {
              bg_field_err(errors, fname, "duplicate", "entries must not repeat");
              ok = false;
              break;
            }
          if (!ok)
            break;
        }
      }
      if (ok)
        *(json_t **)slot = val;
      break;
    }
    case BG_F_OBJECT:
      if (!json_is_object(val))
        bg_field_err(errors, fname, "type", "must be an object");
      else
        *(json_t **)slot = val;
      break;
    }
  }
  return json_array_size(errors) == before;
}

bool bg_json_parse(struct bg_request *r, const json_t *obj, const struct bg_field *spec, void *out)
{
  json_t *errors = json_array();
  if (bg_json_parse_into(obj, spec, out, errors, NULL)) {
    json_decref(errors);
    return true;
  }
  /* Unknown fields get their own code: a client sending them has the wrong contract. */
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e)
  {
    if (strcmp(json_string_value(json_object_get(e, "code")), "unknown") == 0) {
      char detail[200];
      snprintf(detail, sizeof detail, "unknown field '%s'", json_string_value(json_object_get(e, "field")));
      bg_reply_problem_errors(r, BG_P_UNKNOWN_FIELD, errors, detail);
      return false;
    }
  }
  const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
  char detail[200];
  snprintf(detail, sizeof detail, "invalid field '%s'%s", first ? first : "?",
           json_array_size(errors) > 1 ? " and others" : "");
  bg_reply_problem_errors(r, BG_P_VALIDATION, errors, detail);
  return false;
}

bool bg_json_array_has(const json_t *array, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach(array, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
  return false;
}

bool bg_json_find_twid(const json_t *j, const char *path, char *field, size_t len)
{
  const char *k;
  json_t *v;
  size_t i;
  char sub[160];
  switch (json_typeof(j)) {
  case JSON_STRING:
    if (!bg_twid_in_text(json_string_value(j)))
      return false;
    snprintf(field, len, "%s", *path ? path : "(body)");
    return true;
  case JSON_OBJECT:
    json_object_foreach((json_t *)j, k, v)
    {
      /* the one place a number belongs */
      if (!strcmp(k, "national_id"))
        continue;
      snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
      if (bg_json_find_twid(v, sub, field, len))
        return true;
    }
    return false;
  case JSON_ARRAY:
    json_array_foreach(j, i, v)
    {
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
      if (bg_json_find_twid(v, sub, field, len))
        return true;
    }
    return false;
  default:
    return false;
  }
}

bool bg_req_no_twid(struct bg_request *r)
{
  char field[160];
  if (!r->json || !bg_json_find_twid(r->json, "", field, sizeof field))
    return true;
  bg_reply_field_error(r, BG_P_VALIDATION, field, "national-id",
                       "must not contain a national ID number: it would reach the logs and the audit log, and only a"
                       " national_id field holds one");
  return false;
}
