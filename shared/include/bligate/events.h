/* Audit events, written to the service's outbox table in the same transaction as the change
 * they record; the audit service's shipper delivers them (DESIGN.md §5). */
#ifndef BLIGATE_EVENTS_H
#define BLIGATE_EVENTS_H
#include <jansson.h>
#include <stdbool.h>

struct bg_request;
struct bg_dbc;

/* A new event {id, type, time, actor, object, outcome, client_addr, request_id, details}.
 * actor comes from the request's token (NULL r: the service itself). */
json_t *bg_event_new(const struct bg_request *r, const char *type, const char *object_kind,
                     const char *object_id, const char *outcome);
/* An event type as the audit log takes it: 1 to 100 of a-z 0-9 . _ - ("bli_query.executed"). */
bool bg_event_type_valid(const char *type);
/* Sets event.actor when there is no token yet (e.g. a login). */
void bg_event_set_actor(json_t *ev, const char *account_id, const char *name, const char *unit_id,
                        const char *session_id);
/* Appends the event to <schema>.outbox on c (inside the caller's transaction). Steals ev. */
bool bg_outbox_add(struct bg_dbc *c, json_t *ev);

/* The statement bg_outbox_add uses; include it in every service's statement list. */
#define BG_OUTBOX_STMT \
  { "bg_outbox_add", "INSERT INTO outbox (event_id, event) VALUES ($1::uuid, $2::jsonb)" }

#endif
