-- bliproxy: one record per BLI query (who, under which registration, which subject and item,
-- when, what happened) with the result sealed (AES-256-GCM, key id for rotation, the record id
-- and item as associated data) until its retention ends; the outbox of audit events.
-- Run as bligate_bliproxy_owner.
--
-- The subject is kept as workflow's subject id, the keyed HMAC of the national ID (to join the
-- audit log) and its mask; the number itself is never stored here.

CREATE TABLE queries (
  id                      uuid PRIMARY KEY,
  request_id              uuid NOT NULL,
  registration_no         text NOT NULL,
  consumption_id          uuid NOT NULL CONSTRAINT queries_consumption_key UNIQUE,
  querier_id              uuid NOT NULL,
  querier_name            text NOT NULL,
  unit_id                 uuid NOT NULL,
  requester_id            uuid NOT NULL,
  external_application_id uuid,
  applicant_id            uuid,
  subject_id              uuid NOT NULL,
  subject_hmac            text NOT NULL CHECK (subject_hmac ~ '^[0-9a-f]{64}$'),
  subject_masked          text NOT NULL,
  item                    text NOT NULL CHECK (item ~ '^[A-Z][0-9]{4}$'),
  -- pending: the event is being appended or BLI is being asked; succeeded: the result is
  -- sealed here; failed: no data (error_code says why, released whether the use was given
  -- back); destroyed: the result was purged when retention ended
  state                   text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'destroyed')),
  found                   boolean,
  error_code              text,
  released                boolean,
  created_at              timestamptz NOT NULL,
  retrieved_at            timestamptz,
  retention_until         date NOT NULL,
  destroyed_at            timestamptz,
  key_id                  text,
  sealed                  bytea,
  CHECK ((state = 'succeeded') = (sealed IS NOT NULL)),
  CHECK ((state = 'destroyed') = (destroyed_at IS NOT NULL))
);
CREATE INDEX queries_request ON queries (request_id, created_at, id);
CREATE INDEX queries_querier ON queries (querier_id, created_at, id);
CREATE INDEX queries_requester ON queries (requester_id, created_at, id);
CREATE INDEX queries_external ON queries (external_application_id) WHERE external_application_id IS NOT NULL;
CREATE INDEX queries_retention ON queries (retention_until) WHERE state = 'succeeded';
CREATE INDEX queries_pending ON queries (created_at) WHERE state = 'pending';

-- Events recorded in the same transaction as the change; shipped to the audit service. A
-- query's own event is appended synchronously before BLI is asked and marked shipped with the
-- query's outcome, so this outbox has no NOTIFY trigger: the shipper polls it and finds only
-- what the synchronous path could not deliver (and the events that need no wait).
CREATE TABLE outbox (
  seq         bigserial PRIMARY KEY,
  event_id    uuid NOT NULL UNIQUE,
  event       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  shipped_at  timestamptz
);
CREATE INDEX outbox_unshipped ON outbox (seq) WHERE shipped_at IS NULL;
-- The runtime role never deletes a record: destroying a result clears its ciphertext and
-- keeps the record (who queried what, when) for the audit.
GRANT SELECT, INSERT, UPDATE ON queries, outbox TO bligate_bliproxy;
GRANT USAGE ON SEQUENCE outbox_seq_seq TO bligate_bliproxy;
