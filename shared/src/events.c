/* Audit events into the outbox (events.h). The event shape is the audit service's intake
 * shape; national IDs never enter an event except as a mask and a keyed HMAC. */
#include "bligate/events.h"
#include "bligate/clock.h"
#include "bligate/db.h"
#include "bligate/http.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <stdlib.h>
#include <string.h>

json_t *bg_event_new(const struct bg_request *r, const char *type, const char *object_kind, const char *object_id,
                     const char *outcome)
{
  char id[BG_UUID_LEN], ts[BG_TIME_LEN];
  bg_uuid_v4(id);
  json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "type", type, "time", bg_time_fmt(bg_now(), ts),
                         "outcome", outcome ? outcome : "success");
  if (object_kind)
    json_object_set_new(ev, "object", json_pack("{s:s, s:s?}", "kind", object_kind, "id", object_id));
  if (r) {
    if (r->token.present) {
      json_t *actor = json_object();
      if (r->token.is_client) {
        json_object_set_new(actor, "client_id", json_string(r->token.sub + 7));
      } else {
        json_object_set_new(actor, "account_id", json_string(r->token.sub));
        json_object_set_new(actor, "session_id", json_string(r->token.sid));
        if (r->token.unit[0])
          json_object_set_new(actor, "unit_id", json_string(r->token.unit));
      }
      json_object_set_new(ev, "actor", actor);
    }
    if (r->client_addr)
      json_object_set_new(ev, "client_addr", json_string(r->client_addr));
    json_object_set_new(ev, "request_id", json_string(r->request_id));
  }
  json_object_set_new(ev, "details", json_object());
  return ev;
}

void bg_event_set_actor(json_t *ev, const char *account_id, const char *name, const char *unit_id,
                        const char *session_id)
{
  json_object_set_new(ev, "actor", json_pack("{s:s?, s:s?, s:s?, s:s?}", "account_id", account_id, "name", name,
                                             "unit_id", unit_id, "session_id", session_id));
}

bool bg_outbox_add(struct bg_dbc *c, json_t *ev)
{
  char *text = bg_json_dump(ev);
  const char *params[] = {json_string_value(json_object_get(ev, "id")), text};
  PGresult *res = text ? bg_dbc_exec(c, "bg_outbox_add", 2, params, NULL) : NULL;
  bool ok = res != NULL;
  PQclear(res);
  free(text);
  json_decref(ev);
  return ok;
}

bool bg_event_type_valid(const char *type)
{
  size_t n = type ? strlen(type) : 0;
  return n && n <= 100 && strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}
