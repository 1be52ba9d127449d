-- Permission applications (Form 1), their decision trail, and per-item grants (issue 3).

CREATE SEQUENCE permission_form_no;

CREATE TABLE permission_applications (
  id                uuid PRIMARY KEY,
  form_no           text NOT NULL UNIQUE,
  applicant_id      uuid NOT NULL REFERENCES accounts (id),
  type              text NOT NULL CHECK (type IN ('new', 'revoke', 'change_items', 'change_of_duties')),
  items             text[] NOT NULL DEFAULT '{}',
  other_text        text,
  reason            text NOT NULL,
  pdpa_read         boolean NOT NULL,
  environment_ready boolean NOT NULL,
  -- change_of_duties: the unit the duties are for (may be approved before the move)
  target_unit_id    uuid REFERENCES units (id),
  -- the form as it was at submission: copied from the account
  unit_id           uuid NOT NULL REFERENCES units (id),
  unit_name         text NOT NULL,
  title             text NOT NULL,
  name              text NOT NULL,
  national_id       text NOT NULL,
  phone             text,
  email             text,
  egov_account      text,
  state             text NOT NULL CHECK (state IN ('pending_supervisor', 'pending_admin', 'pending_head',
                                                   'returned', 'approved', 'rejected', 'withdrawn')),
  round             integer NOT NULL DEFAULT 1,
  effective_date    date,
  carried_over_at   timestamptz,   -- change_of_duties approved in advance, used when the move happened
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  closed_at         timestamptz
);
-- One open application per applicant.
CREATE UNIQUE INDEX permission_applications_one_open ON permission_applications (applicant_id)
  WHERE state IN ('pending_supervisor', 'pending_admin', 'pending_head', 'returned');
CREATE INDEX permission_applications_list ON permission_applications (created_at, id);
CREATE INDEX permission_applications_unit ON permission_applications (unit_id, created_at, id);

CREATE TABLE permission_decisions (
  id              uuid PRIMARY KEY,
  application_id  uuid NOT NULL REFERENCES permission_applications (id),
  round           integer NOT NULL,
  step            integer NOT NULL CHECK (step BETWEEN 1 AND 3),
  decider_id      uuid NOT NULL REFERENCES accounts (id),
  decider_name    text NOT NULL,
  decider_title   text NOT NULL,
  decider_role    text NOT NULL,
  decision        text NOT NULL CHECK (decision IN ('approve', 'reject', 'return')),
  comment         text,
  effective_date  date,
  decided_at      timestamptz NOT NULL,
  -- one decision per step per round: two racing deciders cannot both win
  UNIQUE (application_id, round, step)
);

CREATE TABLE grants (
  id                 uuid PRIMARY KEY,
  account_id         uuid NOT NULL REFERENCES accounts (id),
  item               text NOT NULL,
  application_id     uuid NOT NULL REFERENCES permission_applications (id),
  effective_date     date NOT NULL,
  granted_at         timestamptz NOT NULL,
  suspended_at       timestamptz,
  suspension_reason  text,
  revoked_at         timestamptz,
  revocation_reason  text
);
-- At most one current (unrevoked) grant per account and item.
CREATE UNIQUE INDEX grants_current ON grants (account_id, item) WHERE revoked_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON permission_applications, permission_decisions, grants TO bligate_accounts;
GRANT USAGE ON SEQUENCE permission_form_no TO bligate_accounts;
