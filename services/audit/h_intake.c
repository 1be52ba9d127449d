/* POST /internal/events: services' shippers deliver their outboxes here. A batch is checked
 * whole, then appended in order in one transaction; ids already on the log are acknowledged,
 * not appended again (the shippers deliver at least once). */
#include "aud.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUD_MAX_BATCH 1000

struct intake_body {
  json_t *events;
};

void aud_h_intake(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("events", BG_F_ARRAY, true, struct intake_body, events, .min = 1, .max = AUD_MAX_BATCH),
    BG_FIELD_END};
  struct intake_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  size_t n = json_array_size(b.events);
  json_t *errors = json_array();
  for (size_t i = 0; i < n; i++) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "events[%zu].", i);
    aud_event_check(json_array_get(b.events, i), errors, prefix);
  }
  if (json_array_size(errors)) {
    bg_reply_problem_errors(r, BG_P_VALIDATION, errors, "some events are malformed; nothing was appended");
    return;
  }
  json_decref(errors);
  for (size_t i = 0; i < n; i++)
    if (aud_has_national_id(json_array_get(b.events, i))) {
      /* The index names the event; the number itself goes nowhere, not even the log. */
      bg_reply_problem(r, BG_P_AUD_NATIONAL_ID, "events[%zu] holds a national ID number; send its mask and keyed "
                                                "HMAC instead. Nothing was appended",
                       i);
      return;
    }
  struct aud_entry *e = calloc(n, sizeof *e);
  if (!e) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  const char *source = r->token.sub + strlen("client:");
  for (size_t i = 0; i < n; i++) {
    const char *why = NULL;
    e[i].ev = json_array_get(b.events, i);
    if (!aud_entry_prepare(&e[i], source, &why)) {
      char field[32];
      snprintf(field, sizeof field, "events[%zu]", i);
      bg_reply_field_error(r, BG_P_VALIDATION, field, "canonical", why ? why : "no canonical form");
      goto out;
    }
  }
  bool conflict = false;
  if (!aud_group_append(e, n, &conflict)) {
    if (conflict) {
      for (size_t i = 0; i < n; i++)
        if (e[i].status == AUD_CONFLICT) {
          bg_log(BG_LOG_ERROR, r->request_id, "event %s re-sent by %s with other content", e[i].event_id, source);
          bg_reply_problem(r, BG_P_AUD_EVENT_CONFLICT,
                           "event %s is on the log already with other content; nothing was appended", e[i].event_id);
          break;
        }
    } else {
      bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the events could not be appended; nothing was appended");
    }
    goto out;
  }
  json_t *results = json_array();
  size_t appended = 0;
  for (size_t i = 0; i < n; i++) {
    appended += e[i].status == AUD_APPENDED;
    json_array_append_new(results, json_pack("{s:s, s:s, s:I}", "id", e[i].event_id, "status",
                                             e[i].status == AUD_APPENDED ? "appended" : "duplicate", "index",
                                             (json_int_t)e[i].index));
  }
  bg_reply_json(r, 200, json_pack("{s:o, s:I, s:I}", "results", results, "appended", (json_int_t)appended,
                                  "duplicates", (json_int_t)(n - appended)));
out:
  for (size_t i = 0; i < n; i++)
    aud_entry_clear(&e[i]);
  free(e);
}
