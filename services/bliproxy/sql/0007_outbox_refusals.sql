-- An event the audit service refuses for good (malformed, an ID number in it, its id on the log
-- with other content) no longer holds up every event behind it: the shipper appends an
-- outbox.event_refused event in its place (the row's seq and event id, audit's problem code,
-- the SHA-256 of the refused text), then marks the row shipped with that code in refusal.
-- Refused rows are kept whatever their age: the content audit would not take is the evidence
-- for whoever investigates the refusal. Same in every service's schema, as the outbox is.
ALTER TABLE outbox ADD COLUMN refusal text CHECK (refusal ~ '^[a-z0-9-]{1,64}$');

CREATE OR REPLACE FUNCTION outbox_purge(cutoff timestamptz, max_rows int) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = bliproxy, pg_temp AS $$
  WITH d AS (
    DELETE FROM outbox WHERE seq IN (
      SELECT seq FROM (SELECT seq, shipped_at, refusal FROM outbox ORDER BY seq LIMIT 100 * max_rows::bigint) w
      WHERE shipped_at < cutoff AND refusal IS NULL ORDER BY seq LIMIT max_rows)
    RETURNING 1)
  SELECT count(*) FROM d
$$;
