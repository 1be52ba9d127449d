-- accounts: units, staff accounts, their citizen certificates, login challenges, sessions,
-- OAuth2 clients and the outbox of audit events. Run as bligate_accounts_owner.

CREATE TABLE units (
  id          uuid PRIMARY KEY,
  code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{0,31}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  kind        text NOT NULL CHECK (kind IN ('section', 'it_team', 'secretariat', 'ethics_office',
                                            'director_office', 'district_office', 'agency')),
  parent_id   uuid REFERENCES units (id),
  created_at  timestamptz NOT NULL
);

CREATE TABLE accounts (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  national_id   text NOT NULL CONSTRAINT accounts_national_id_key UNIQUE,
  unit_id       uuid NOT NULL REFERENCES units (id),
  title         text NOT NULL,
  roles         text[] NOT NULL DEFAULT '{}',
  phone         text,
  email         text,
  egov_account  text,
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  deactivated_at timestamptz,
  deactivation_reason text
);
-- Rule 7: exactly one permission administrator. The database refuses a second active holder,
-- whatever the code above it does.
CREATE UNIQUE INDEX accounts_one_permission_admin ON accounts ((true))
  WHERE status = 'active' AND 'permission_admin' = ANY (roles);
CREATE INDEX accounts_unit ON accounts (unit_id, created_at, id);
CREATE INDEX accounts_created ON accounts (created_at, id);

CREATE TABLE certificates (
  id                 uuid PRIMARY KEY,
  account_id         uuid NOT NULL REFERENCES accounts (id),
  fingerprint_sha256 text NOT NULL CONSTRAINT certificates_fingerprint_key UNIQUE,
  serial             text NOT NULL,
  issuer             text NOT NULL,
  subject_cn         text NOT NULL,
  not_before         timestamptz NOT NULL,
  not_after          timestamptz NOT NULL,
  pem                text NOT NULL,
  status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at         timestamptz NOT NULL,
  disabled_at        timestamptz
);
CREATE INDEX certificates_account ON certificates (account_id);

CREATE TABLE challenges (
  id          uuid PRIMARY KEY,
  nonce       text NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE sessions (
  id             uuid PRIMARY KEY,
  account_id     uuid NOT NULL REFERENCES accounts (id),
  certificate_id uuid NOT NULL REFERENCES certificates (id),
  created_at     timestamptz NOT NULL,
  last_seen_at   timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  ended_at       timestamptz,
  end_reason     text CHECK (end_reason IN ('logout', 'superseded', 'idle', 'expired', 'deactivated')),
  client_addr    text
);
-- Rule 3 (personal login): one live session per account; a new login ends the older one.
CREATE UNIQUE INDEX sessions_one_live ON sessions (account_id) WHERE ended_at IS NULL;

CREATE TABLE login_failures (
  id           bigserial PRIMARY KEY,
  fingerprint  text,
  client_addr  text,
  code         text NOT NULL,
  at           timestamptz NOT NULL
);
CREATE INDEX login_failures_fp ON login_failures (fingerprint, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);

CREATE TABLE clients (
  id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
  secret_hash  text NOT NULL,
  scopes       text[] NOT NULL DEFAULT '{}',
  status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Events recorded in the same transaction as the change; shipped to the audit service.
CREATE TABLE outbox (
  seq         bigserial PRIMARY KEY,
  event_id    uuid NOT NULL UNIQUE,
  event       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  shipped_at  timestamptz
);
CREATE INDEX outbox_unshipped ON outbox (seq) WHERE shipped_at IS NULL;

-- The runtime role reads and writes rows; it cannot change the schema, and it deletes only
-- what is disposable (spent challenges, old login failures).
GRANT SELECT, INSERT, UPDATE ON units, accounts, certificates, challenges, sessions, clients TO bligate_accounts;
GRANT SELECT, INSERT, DELETE ON login_failures TO bligate_accounts;
GRANT DELETE ON challenges TO bligate_accounts;
GRANT SELECT, INSERT, UPDATE ON outbox TO bligate_accounts;
GRANT USAGE ON SEQUENCE login_failures_id_seq, outbox_seq_seq TO bligate_accounts;
