-- The purge looked at the max_rows oldest rows only, and deleted those of them shipped before
-- the cutoff: a few rows it may not delete yet at the head (shipped on a clock that was ahead,
-- or, in the tests, on a test clock moved forward) cut each run short, and a run deleting fewer
-- than max_rows waits an hour for the next, with rows past retention behind them. Now it takes
-- the max_rows oldest rows shipped before the cutoff among the 100 * max_rows oldest: still a
-- bounded walk of the primary key, never the whole table. Same body in every service's schema,
-- as the outbox table itself is.
CREATE OR REPLACE FUNCTION outbox_purge(cutoff timestamptz, max_rows int) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = accounts, pg_temp AS $$
  WITH d AS (
    DELETE FROM outbox WHERE seq IN (
      SELECT seq FROM (SELECT seq, shipped_at FROM outbox ORDER BY seq LIMIT 100 * max_rows::bigint) w
      WHERE shipped_at < cutoff ORDER BY seq LIMIT max_rows)
    RETURNING 1)
  SELECT count(*) FROM d
$$;
