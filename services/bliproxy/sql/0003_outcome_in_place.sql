-- A query's outcome is an update of its record (state, found, retrieved_at, key_id, sealed).
-- PostgreSQL writes such an update in place on the record's page, adding no entry to any of the
-- table's indexes (a heap-only tuple), only when no index names a column the update changes —
-- and the two partial indexes on state did, so every outcome added an entry to each of the
-- eight. Measured on the query path (bench/proxy, on a stack some 30,000 queries old): the
-- outcome's statement took 0.65 ms with them, 0.28 ms without; on a fresh stack, whose indexes
-- are small and cached, the difference is within the benchmark's noise. So:
--  * the retention purge finds the results to destroy through an index whose condition names
--    only columns the outcome leaves alone (a failure sets error_code, a destruction
--    destroyed_at);
--  * the queries still pending are listed in queries_in_flight, a row written with the record
--    and deleted with its outcome, which the sweep for interrupted queries reads (and which
--    holds the query's event until it is on the log: below);
--  * pages are filled to 70 % on insert, leaving room for the record to grow by its sealed
--    result on the same page.
-- Run as bligate_bliproxy_owner.
--
-- Also: a caller's records (q_list) are those where they are the querier, the requester or the
-- applicant; with no index on applicant_id the three-way OR could only be answered by reading
-- the whole table, on every page of every list.
DROP INDEX queries_retention;
CREATE INDEX queries_retention ON queries (retention_until) WHERE error_code IS NULL AND destroyed_at IS NULL;
DROP INDEX queries_pending;
ALTER TABLE queries SET (fillfactor = 70);

-- A query in flight, with its bli_query.executed event: the record's outbox row until the event
-- is on the log. The record and this row are written in one transaction; the event is then
-- appended synchronously and the outcome deletes the row — the event never touches the outbox
-- table, whose row (three index entries, then a non-HOT update marking it shipped) cost more
-- than the record's own. When the append is not known to have succeeded (audit unavailable,
-- or the sweep finishing an interrupted query), the outcome moves the event into the outbox
-- for the shipper (audit de-duplicates by id). event is NULL for records pending before this
-- migration: their event is in the outbox already. text, not jsonb: nothing reads into it.
-- No foreign key: the row is written by the statement that writes the record and deleted by
-- the one that writes its outcome, and a key check would cost a lookup on each. Vacuumed after
-- every thousand deletions (the default waits for a fifth of a table that is nearly always
-- empty).
CREATE TABLE queries_in_flight (
  query_id    uuid PRIMARY KEY,
  created_at  timestamptz NOT NULL,
  event_id    uuid,
  event       text,
  CHECK ((event_id IS NULL) = (event IS NULL))
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
INSERT INTO queries_in_flight (query_id, created_at) SELECT id, created_at FROM queries WHERE state = 'pending';
GRANT SELECT, INSERT, DELETE ON queries_in_flight TO bligate_bliproxy;

CREATE INDEX queries_applicant ON queries (applicant_id, created_at, id) WHERE applicant_id IS NOT NULL;
