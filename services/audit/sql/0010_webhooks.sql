-- Approval webhooks (issue 8): subscriptions of other city systems to event types on the log,
-- and every delivery and attempt, kept so operators and the subscriber can see what happened.
-- Run as bligate_audit_owner. Separate from the log: these rows change (a delivery's state),
-- the log never does.

CREATE TABLE webhooks (
  id           uuid PRIMARY KEY,
  url          text NOT NULL CHECK (url ~ '^https?://' AND char_length(url) <= 2000),
  event_types  text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50),
  description  text,
  -- the signing secret ("whsec_" + base64 of 32 random bytes): HMAC needs it in full, so it is
  -- kept (readable by the audit service's roles only) and shown to its creator once
  secret       text NOT NULL,
  status       text NOT NULL CHECK (status IN ('active', 'disabled')),
  created_by   uuid NOT NULL,
  created_at   timestamptz NOT NULL,
  disabled_at  timestamptz,
  -- the log index up to which events have been matched against event_types
  cursor       bigint NOT NULL CHECK (cursor >= -1)
);
CREATE INDEX webhooks_list ON webhooks (created_at, id);

CREATE TABLE webhook_deliveries (
  id               uuid PRIMARY KEY,
  webhook_id       uuid NOT NULL REFERENCES webhooks (id),
  event_index      bigint NOT NULL,
  event_id         uuid NOT NULL,
  event_type       text NOT NULL,
  state            text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL,
  next_attempt_at  timestamptz,
  delivered_at     timestamptz,
  CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, event_index);

CREATE TABLE webhook_attempts (
  delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id),
  n            integer NOT NULL CHECK (n >= 1),
  at           timestamptz NOT NULL,
  status_code  integer,
  error        text,
  duration_ms  integer NOT NULL,
  PRIMARY KEY (delivery_id, n)
);

GRANT SELECT, INSERT, UPDATE ON webhooks, webhook_deliveries TO bligate_audit;
GRANT SELECT, INSERT ON webhook_attempts TO bligate_audit;
