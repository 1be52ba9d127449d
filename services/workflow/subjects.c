/* The subjects of a form (Form 2: 1-50, Form 3: 1-100): each with a name, a valid national ID
 * and the BLI items wanted. Pure: JSON in, JSON out, no database and no HTTP. */
#include "wf.h"
#include "bligate/bli_items.h"
#include "bligate/json.h"
#include "bligate/twid.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Code points that show nothing however many are written: white space and controls, format
 * characters (zero-width spaces and joiners, direction marks, word joiners and invisible
 * operators, interlinear annotation, tags), variation selectors, fillers that render blank
 * (Hangul fillers, the Braille blank), combining marks with nothing to combine with counted as
 * nothing, private use and non-characters. Sorted, first and last included. */
static const struct {
  uint32_t lo, hi;
} wf_invisible[] = {
  {0x0000, 0x0020},   {0x007f, 0x00a0},   {0x00ad, 0x00ad},   {0x0300, 0x036f},   {0x061c, 0x061c},
  {0x115f, 0x1160},   {0x1680, 0x1680},   {0x17b4, 0x17b5},   {0x180b, 0x180f},   {0x1ab0, 0x1aff},
  {0x1dc0, 0x1dff},   {0x2000, 0x200f},   {0x2028, 0x202f},   {0x205f, 0x206f},   {0x20d0, 0x20ff},
  {0x2800, 0x2800},   {0x3000, 0x3000},   {0x3164, 0x3164},   {0xd800, 0xf8ff},   {0xfdd0, 0xfdef},
  {0xfe00, 0xfe0f},   {0xfe20, 0xfe2f},   {0xfeff, 0xfeff},   {0xffa0, 0xffa0},   {0xfff0, 0xfffb},
  {0xfffe, 0xffff},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
  {0x1d173, 0x1d17a}, {0xe0000, 0xe0fff}, {0xf0000, 0x10ffff},
};

static bool wf_invisible_cp(uint32_t cp)
{
  size_t lo = 0, hi = sizeof wf_invisible / sizeof wf_invisible[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < wf_invisible[mid].lo)
      hi = mid;
    else if (cp > wf_invisible[mid].hi)
      lo = mid + 1;
    else
      return true;
  }
  /* the non-characters at the end of every plane */
  return (cp & 0xfffe) == 0xfffe;
}

size_t wf_visible_chars(const char *s)
{
  size_t chars = 0;
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    uint32_t cp = *p;
    int extra = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
    if (extra)
      cp &= 0x3f >> extra;
    p++;
    for (int i = 0; i < extra && (*p & 0xc0) == 0x80; i++, p++)
      cp = (cp << 6) | (*p & 0x3f);
    if (!wf_invisible_cp(cp))
      chars++;
  }
  return chars;
}

struct subject_body {
  const char *name, *national_id;
  json_t *items;
};

enum wf_subjects_result wf_subjects_check(const json_t *subjects, json_t *errors, json_t **items)
{
  static const struct bg_field spec[] = {
    BG_FIELD("name", BG_F_STRING, true, struct subject_body, name, .min = 1, .max = 50),
    BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct subject_body, national_id),
    BG_FIELD("items", BG_F_STR_ARRAY, true, struct subject_body, items, .min = 1, .max = 9),
    BG_FIELD_END};
  bool seen[16] = {false};
  size_t i;
  json_t *s;
  *items = NULL;
  json_array_foreach(subjects, i, s)
  {
    char prefix[32], field[48], detail[96];
    snprintf(prefix, sizeof prefix, "subjects[%zu].", i);
    struct subject_body b = {0};
    if (!bg_json_parse_into(s, spec, &b, errors, prefix))
      continue;
    if (wf_visible_chars(b.name) == 0) {
      snprintf(field, sizeof field, "%sname", prefix);
      bg_field_err(errors, field, "required", "a name made only of spaces or invisible characters names no one");
    }
    size_t k;
    json_t *it;
    json_array_foreach(b.items, k, it)
    {
      const char *code = json_string_value(it);
      size_t pos = 0;
      while (pos < bg_bli_nitems && strcmp(bg_bli_items[pos].code, code) != 0)
        pos++;
      if (pos == bg_bli_nitems) {
        snprintf(field, sizeof field, "%sitems", prefix);
        snprintf(detail, sizeof detail, "'%.20s' is not a BLI item code", code);
        bg_field_err(errors, field, "item-unknown", detail);
      } else if (pos < sizeof seen / sizeof seen[0]) {
        seen[pos] = true;
      }
    }
    /* one row per person: a repeated ID would split its uses over two rows */
    for (size_t j = 0; j < i; j++) {
      const char *other = json_string_value(json_object_get(json_array_get(subjects, j), "national_id"));
      if (other && !strcmp(other, b.national_id)) {
        snprintf(field, sizeof field, "%snational_id", prefix);
        snprintf(detail, sizeof detail, "the same person as subjects[%zu]", j);
        bg_field_err(errors, field, "duplicate", detail);
        break;
      }
    }
  }
  if (json_array_size(errors) > 0) {
    size_t k;
    json_t *e;
    bool only_items = true;
    json_array_foreach(errors, k, e)
    {
      const char *code = json_string_value(json_object_get(e, "code"));
      if (!strcmp(code, "unknown"))
        return WF_SUBJECTS_UNKNOWN_FIELD;
      only_items &= !strcmp(code, "item-unknown");
    }
    return only_items ? WF_SUBJECTS_ITEM_UNKNOWN : WF_SUBJECTS_INVALID;
  }
  *items = json_array();
  for (size_t pos = 0; pos < bg_bli_nitems && pos < sizeof seen / sizeof seen[0]; pos++)
    if (seen[pos])
      json_array_append_new(*items, json_string(bg_bli_items[pos].code));
  return WF_SUBJECTS_OK;
}

static bool contains(const json_t *arr, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
  return false;
}

json_t *wf_items_missing(const json_t *wanted, const json_t *have)
{
  json_t *out = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(wanted, i, v) if (!contains(have, json_string_value(v))) json_array_append(out, v);
  return out;
}

json_t *wf_active_items(const json_t *grants)
{
  json_t *out = json_array();
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(grants, "items"), i, g)
  {
    const char *st = json_string_value(json_object_get(g, "status"));
    json_t *item = json_object_get(g, "item");
    if (st && !strcmp(st, "active") && json_is_string(item))
      json_array_append(out, item);
  }
  return out;
}

