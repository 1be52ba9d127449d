-- Shipped outbox rows are kept for a while (BLIGATE_OUTBOX_RETENTION_DAYS) and then deleted:
-- the audit log holds the events, the outbox only delivers them. The runtime role still cannot
-- delete from the outbox itself — an event not yet on the log must not vanish — so the shipper
-- calls this function, which deletes only rows shipped before the cutoff, and only among the
-- max_rows oldest (the primary key's order: no scan of the whole table). Run as the owner.
CREATE FUNCTION outbox_purge(cutoff timestamptz, max_rows int) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = workflow, pg_temp AS $$
  WITH d AS (
    DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT max_rows) AND shipped_at < cutoff
    RETURNING 1)
  SELECT count(*) FROM d
$$;
REVOKE ALL ON FUNCTION outbox_purge(timestamptz, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_purge(timestamptz, int) TO bligate_workflow;
