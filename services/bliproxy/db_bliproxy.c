/* The proxy's SQL: every statement it runs, prepared once per connection. Times go in as
 * parameters from the service clock (bg_now), so retention follows the test clock. */
#include "prx.h"
#include "bligate/events.h"
#include <stddef.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define QCOLS                                                                                              \
  "q.id, q.request_id, q.registration_no, q.consumption_id, q.querier_id, q.querier_name, q.unit_id,"      \
  " q.requester_id, q.external_application_id, q.applicant_id, q.subject_id, q.subject_masked, q.item,"    \
  " q.state, q.found, q.error_code, " TS("q.created_at") ", " TS("q.retrieved_at") ", q.retention_until,"  \
  " " TS("q.destroyed_at") ", q.key_id, q.sealed"

const struct bg_db_stmt prx_stmts[] = {
  BG_OUTBOX_STMT,
  /* the record and its place among the queries in flight, with its event ($17, $18), in one
   * statement: one round trip, one transaction (0003_outcome_in_place.sql) */
  {"q_insert", "WITH f AS (INSERT INTO queries_in_flight (query_id, created_at, event_id, event)"
               " VALUES ($1, $15, $17::uuid, $18::text))"
               " INSERT INTO queries (id, request_id, registration_no, consumption_id, querier_id, querier_name,"
               " unit_id, requester_id, external_application_id, applicant_id, subject_id, subject_hmac,"
               " subject_masked, item, state, created_at, retention_until)"
               " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15, $16)"},
  /* the outcome, after the event was appended: the row in flight goes with its event; the
   * record comes back for the reply, saving a read. The update changes no indexed column, so
   * it is written in place (0003_outcome_in_place.sql); keep it so. */
  {"q_succeeded", "WITH f AS (DELETE FROM queries_in_flight WHERE query_id = $1)"
                  " UPDATE queries q SET state = 'succeeded', found = $2, retrieved_at = $3, key_id = $4, sealed = $5"
                  " WHERE q.id = $1 AND q.state = 'pending' RETURNING " QCOLS},
  /* the failure ($2 code, $3 released) and its event ($4, $5), only while the record is pending
   * (the sweep may have finished it). Unless the query's own event is known to be on the log
   * ($6), it goes to the outbox too, before the failure's. One row when it was written. */
  {"q_failed", "WITH u AS (UPDATE queries SET state = 'failed', error_code = $2, released = $3"
               "  WHERE id = $1 AND state = 'pending' RETURNING id, request_id, consumption_id),"
               " f AS (DELETE FROM queries_in_flight WHERE query_id = $1 RETURNING event_id, event),"
               " e AS (INSERT INTO outbox (event_id, event) SELECT id, ev FROM"
               "  (SELECT f.event_id AS id, f.event::jsonb AS ev, 1 AS n FROM f, u"
               "   WHERE f.event IS NOT NULL AND NOT $6::boolean"
               "   UNION ALL SELECT $4::uuid, $5::jsonb, 2 FROM u) x ORDER BY n)"
               " SELECT id FROM u"},
  {"q_get", "SELECT " QCOLS " FROM queries q WHERE q.id = $1"},
  /* a caller's records: the querier's, the requester's or the applicant's ($1), and for a unit
   * supervisor the unit's ($5, else NULL: rule 4); keyset pagination on (created_at, id) after
   * ($2, $3), $4 rows. Each way of being a reader is its own branch down its own index, stopping
   * after $4 entries past the cursor: an OR of the four would read and sort every record of the
   * caller (a unit's, for its supervisor) for every page. */
#define Q_LIST_BRANCH(col, val)                                                                                      \
  "(SELECT id, created_at FROM queries WHERE " col " = " val                                                         \
  " AND (created_at, id) > (coalesce($2::timestamptz, '-infinity'), coalesce($3::uuid, "                              \
  "'00000000-0000-0000-0000-000000000000')) ORDER BY created_at, id LIMIT $4)"
  {"q_list", "SELECT " QCOLS " FROM queries q WHERE q.id IN (SELECT id FROM ("
             Q_LIST_BRANCH("querier_id", "$1::uuid") " UNION " Q_LIST_BRANCH("requester_id", "$1::uuid")
             " UNION " Q_LIST_BRANCH("applicant_id", "$1::uuid") " UNION " Q_LIST_BRANCH("unit_id", "$5::uuid")
             ") b ORDER BY created_at, id LIMIT $4)"
             " ORDER BY q.created_at, q.id"},
  /* the same, of one request ($6): its few records, down the request's index */
  {"q_list_request", "SELECT " QCOLS " FROM queries q"
                     " WHERE (q.querier_id = $1 OR q.requester_id = $1 OR q.applicant_id = $1 OR q.unit_id = $5::uuid)"
                     " AND q.request_id = $6::uuid"
                     " AND ($2::timestamptz IS NULL OR (q.created_at, q.id) > ($2::timestamptz, $3::uuid))"
                     " ORDER BY q.created_at, q.id LIMIT $4"},
  {"q_by_app", "SELECT " QCOLS " FROM queries q WHERE q.external_application_id = $1 AND q.state <> 'failed'"
               " ORDER BY q.created_at, q.id"},
  /* purge: lock and list the results whose retention ended before today ($1), then destroy
   * them with their event in the same transaction */
  {"q_expired", "SELECT id, retention_until::text FROM queries WHERE state = 'succeeded' AND retention_until < $1::date"
                " AND error_code IS NULL AND destroyed_at IS NULL" /* the index's condition */
                " ORDER BY retention_until, id LIMIT 1000 FOR UPDATE SKIP LOCKED"},
  /* the records read, still held once their reading is on the log ($1 the ids, $2 today) */
  {"q_held", "SELECT count(*) FROM queries WHERE id = ANY($1::uuid[]) AND state = 'succeeded'"
             " AND retention_until >= $2::date"},
  {"q_destroy", "UPDATE queries SET state = 'destroyed', destroyed_at = $2, sealed = NULL, key_id = NULL"
                " WHERE id = ANY($1::uuid[]) AND state = 'succeeded'"},
  /* uses owed back (0006_releases_owed.sql): one owed, those due ($1: whether older than the
   * grace for a consume workflow never saw), one settled (given back: its record says so), and
   * one dropped (workflow never took it) */
  {"ro_insert", "INSERT INTO releases_owed (consumption_id, request_id, reason, created_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (consumption_id) DO NOTHING"},
  {"ro_due", "SELECT o.consumption_id, o.request_id, o.reason, o.created_at < $1::timestamptz FROM releases_owed o"
             /* not while its query is still pending: the failure's record, coming, would say
              * "not released" after the settling had marked nothing */
             " WHERE NOT EXISTS (SELECT 1 FROM queries q WHERE q.consumption_id = o.consumption_id"
             "  AND q.state = 'pending')"
             " ORDER BY o.created_at LIMIT 100 FOR UPDATE OF o SKIP LOCKED"},
  {"ro_settled", "WITH d AS (DELETE FROM releases_owed WHERE consumption_id = $1)"
                 " UPDATE queries SET released = true WHERE consumption_id = $1 AND state = 'failed' AND NOT released"},
  {"ro_drop", "DELETE FROM releases_owed WHERE consumption_id = $1"},
  /* records left pending by a crash between the audit append and the outcome */
  {"q_stale", "SELECT q.id, q.request_id, q.consumption_id, q.querier_id, q.item, q.subject_hmac, q.subject_masked"
              " FROM queries_in_flight f JOIN queries q ON q.id = f.query_id"
              " WHERE f.created_at < $1 AND q.state = 'pending' ORDER BY f.created_at LIMIT 100 FOR UPDATE OF q SKIP LOCKED"},
};
const size_t prx_nstmts = sizeof prx_stmts / sizeof prx_stmts[0];
