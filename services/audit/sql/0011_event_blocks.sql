-- The earliest and latest event time in each block of 4,096 consecutive indices, kept by the
-- append in the same transaction as the events. The log's search turns a time window into a
-- range of indices with it: events are stored in index order, and the planner, taking time and
-- index for unrelated, walked the log from its start to reach a recent window (at a million
-- events, 320 ms for "since last week"; 1.4 ms bounded). Exact, not a guess: a block whose
-- latest time is before the window's start holds no event of the window, whatever order the
-- sources' events arrived in.
CREATE TABLE event_blocks (
  block     bigint PRIMARY KEY CHECK (block >= 0),
  min_time  timestamptz NOT NULL,
  max_time  timestamptz NOT NULL CHECK (max_time >= min_time)
);
INSERT INTO event_blocks (block, min_time, max_time)
  SELECT idx / 4096, min(time), max(time) FROM events GROUP BY idx / 4096;
-- Blocks are widened, never narrowed nor removed: a narrowed block would hide its events from
-- the searches (not from proofs, exports or verification, which read by index).
CREATE FUNCTION event_blocks_widen_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.block <> OLD.block OR NEW.min_time > OLD.min_time OR NEW.max_time < OLD.max_time THEN
    RAISE EXCEPTION 'audit.event_blocks is only ever widened: narrowing refused'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER event_blocks_widen_only BEFORE UPDATE ON event_blocks
  FOR EACH ROW EXECUTE FUNCTION event_blocks_widen_only();
CREATE TRIGGER event_blocks_no_delete BEFORE DELETE ON event_blocks
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER event_blocks_no_truncate BEFORE TRUNCATE ON event_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
GRANT SELECT, INSERT, UPDATE ON event_blocks TO bligate_audit;
