-- Idempotency-Key records for creating POSTs (shared/include/bligate/idempotency.h).
CREATE TABLE idempotency_keys (
  principal     text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status        integer,
  content_type  text,
  location      text,
  body          text,
  created_at    timestamptz NOT NULL,
  PRIMARY KEY (principal, key)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO bligate_accounts;
