/* What the intake accepts as an event (docs/audit-log.md): the shape bg_event_new writes,
 * subjects only as a mask and a keyed HMAC, and never a national ID anywhere. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <stdio.h>
#include <string.h>

static void err(json_t *errors, const char *prefix, const char *field, const char *code, const char *detail)
{
  char name[160];
  snprintf(name, sizeof name, "%s%s", prefix, field);
  bg_field_err(errors, name, code, detail);
}

static bool str_ok(const json_t *v, size_t max)
{
  return json_is_string(v) && json_string_length(v) >= 1 && bg_utf8_len(json_string_value(v)) <= max;
}

static bool lower_hex64(const char *s)
{
  if (!s || strlen(s) != 64)
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return false;
  return true;
}

/* "A12****789": the form bg_twid_mask writes. */
static bool masked_ok(const char *s)
{
  if (!s || strlen(s) != 10 || s[0] < 'A' || s[0] > 'Z' || strncmp(s + 3, "****", 4) != 0)
    return false;
  for (int i = 1; i < 10; i++) {
    if (i >= 3 && i < 7)
      continue;
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (i == 1 && c >= 'A' && c <= 'D')))
      return false;
  }
  return true;
}

static void check_subject(const json_t *s, json_t *errors, const char *prefix, const char *field)
{
  char f[96];
  if (!json_is_object(s)) {
    err(errors, prefix, field, "type", "must be an object {id_hmac, id_masked}");
    return;
  }
  snprintf(f, sizeof f, "%s.id_hmac", field);
  if (!lower_hex64(json_string_value(json_object_get(s, "id_hmac"))))
    err(errors, prefix, f, "format", "the keyed HMAC of the ID number: 64 lower-case hex digits");
  const json_t *m = json_object_get(s, "id_masked");
  snprintf(f, sizeof f, "%s.id_masked", field);
  if (m && !masked_ok(json_string_value(m)))
    err(errors, prefix, f, "format", "a masked ID number such as A12****789");
}

static const char *const top_fields[] = {"id",      "type",        "time",       "actor",   "subject", "subjects",
                                         "object",  "purpose",     "outcome",    "client_addr", "request_id",
                                         "details", NULL};

bool aud_event_check(const json_t *ev, json_t *errors, const char *prefix)
{
  size_t before = json_array_size(errors);
  if (!json_is_object(ev)) {
    err(errors, prefix, "", "type", "an event is a JSON object");
    return false;
  }
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)ev, k, v)
  {
    bool known = false;
    for (int i = 0; top_fields[i] && !known; i++)
      known = strcmp(k, top_fields[i]) == 0;
    if (!known)
      err(errors, prefix, k, "unknown", "not a field of an event");
  }
  const char *id = json_string_value(json_object_get(ev, "id"));
  if (!id || !bg_uuid_valid(id))
    err(errors, prefix, "id", "format", "required: the event's UUID");
  const char *type = json_string_value(json_object_get(ev, "type"));
  if (!bg_event_type_valid(type))
    err(errors, prefix, "type", "format", "required: lower-case letters, digits and . _ - (at most 100)");
  time_t t;
  const char *ts = json_string_value(json_object_get(ev, "time"));
  if (!ts || !bg_time_parse(ts, &t))
    err(errors, prefix, "time", "format", "required: an RFC 3339 time");
  const json_t *actor = json_object_get(ev, "actor");
  if (actor) {
    if (!json_is_object(actor)) {
      err(errors, prefix, "actor", "type", "must be an object");
    } else {
      static const char *const uuids[] = {"account_id", "unit_id", "session_id", NULL};
      for (int i = 0; uuids[i]; i++) {
        const json_t *u = json_object_get(actor, uuids[i]);
        char f[64];
        snprintf(f, sizeof f, "actor.%s", uuids[i]);
        if (u && !json_is_null(u) && !(json_is_string(u) && bg_uuid_valid(json_string_value(u))))
          err(errors, prefix, f, "format", "must be a UUID");
      }
      const json_t *cid = json_object_get(actor, "client_id");
      if (cid && !str_ok(cid, 100))
        err(errors, prefix, "actor.client_id", "format", "must be a string of 1 to 100 characters");
    }
  }
  const json_t *subject = json_object_get(ev, "subject");
  if (subject)
    check_subject(subject, errors, prefix, "subject");
  const json_t *subjects = json_object_get(ev, "subjects");
  if (subjects) {
    if (!json_is_array(subjects) || json_array_size(subjects) > 200) {
      err(errors, prefix, "subjects", "type", "must be an array of at most 200 subjects");
    } else {
      size_t i;
      json_array_foreach(subjects, i, v)
      {
        char f[48];
        snprintf(f, sizeof f, "subjects[%zu]", i);
        check_subject(v, errors, prefix, f);
      }
    }
  }
  const json_t *obj = json_object_get(ev, "object");
  if (obj && (!json_is_object(obj) || !str_ok(json_object_get(obj, "kind"), 64)))
    err(errors, prefix, "object", "format", "must be an object with a kind (and an id)");
  /* searched by (events_object): a btree entry holds at most ~2.7 kB, and a longer id failed the
   * append as the database's error (503), for good, stalling the sender's outbox behind it */
  const json_t *oid = json_is_object(obj) ? json_object_get(obj, "id") : NULL;
  if (oid && !json_is_null(oid) && !str_ok(oid, 200))
    err(errors, prefix, "object.id", "format", "must be a string of 1 to 200 characters");
  const json_t *purpose = json_object_get(ev, "purpose");
  if (purpose && !json_is_object(purpose))
    err(errors, prefix, "purpose", "type", "must be an object");
  const json_t *outcome = json_object_get(ev, "outcome");
  if (outcome && !str_ok(outcome, 32))
    err(errors, prefix, "outcome", "format", "must be a string of 1 to 32 characters");
  const json_t *addr = json_object_get(ev, "client_addr");
  if (addr && !json_is_null(addr) && !str_ok(addr, 64))
    err(errors, prefix, "client_addr", "format", "must be a string of at most 64 characters");
  const json_t *rid = json_object_get(ev, "request_id");
  if (rid && !json_is_null(rid) && !str_ok(rid, 128))
    err(errors, prefix, "request_id", "format", "must be a string of at most 128 characters");
  const json_t *details = json_object_get(ev, "details");
  if (details && !json_is_object(details))
    err(errors, prefix, "details", "type", "must be an object");
  return json_array_size(errors) == before;
}

bool aud_has_national_id(const json_t *j)
{
  const char *k;
  json_t *v;
  size_t i;
  switch (json_typeof(j)) {
  case JSON_STRING:
    return bg_twid_in_text(json_string_value(j));
  case JSON_OBJECT:
    json_object_foreach((json_t *)j, k, v) if (bg_twid_in_text(k) || aud_has_national_id(v)) return true;
    return false;
  case JSON_ARRAY:
    json_array_foreach(j, i, v) if (aud_has_national_id(v)) return true;
    return false;
  default:
    return false;
  }
}
