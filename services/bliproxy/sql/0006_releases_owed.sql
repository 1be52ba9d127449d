-- Uses the proxy owes workflow back. A failure's release that did not get through (workflow or
-- its database away for a moment) was recorded as "not given back yet" and never retried, and a
-- consume workflow finished after the proxy had stopped waiting for it took a use nobody would
-- give back: either way the request lost a use for good. Both are listed here (the consume's id
-- is the proxy's own, sent with it) and the sweep gives them back until workflow says so.
CREATE TABLE releases_owed (
  consumption_id  uuid PRIMARY KEY,
  request_id      uuid NOT NULL,
  reason          text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 64),
  created_at      timestamptz NOT NULL
);
CREATE INDEX releases_owed_age ON releases_owed (created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON releases_owed TO bligate_bliproxy; -- UPDATE: the sweep locks its rows
