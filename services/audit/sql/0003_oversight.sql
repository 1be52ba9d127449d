-- Oversight (issue 7, rules 7-9): quarterly usage reviews for the Labor Affairs Bureau,
-- unannounced inspections (Form 4) with their sampled cases and sign-offs, corrective actions,
-- and citizens' subject-access reports. Run as bligate_audit_owner.
-- These rows change state (draft -> signed -> submitted, ...); every change is also an event
-- on the log, appended in the same transaction, so the log is the record and these tables are
-- its working copy.

-- One review per quarter (of the bureau's calendar, Asia/Taipei). A draft may be generated
-- again (version + 1); a signed or submitted one is frozen. report is the canonical JSON text
-- of the generated report and report_sha256 its SHA-256, which the signing event names.
CREATE TABLE quarterly_reviews (
  id             uuid PRIMARY KEY,
  year           integer NOT NULL CHECK (year BETWEEN 2000 AND 2200),
  quarter        integer NOT NULL CHECK (quarter BETWEEN 1 AND 4),
  state          text NOT NULL CHECK (state IN ('draft', 'signed', 'submitted')),
  version        integer NOT NULL CHECK (version >= 1),
  period_start   timestamptz NOT NULL,
  period_end     timestamptz NOT NULL,
  due_at         timestamptz NOT NULL,
  tree_size      bigint NOT NULL CHECK (tree_size >= 0),
  root_hash      text NOT NULL,
  report         text NOT NULL,
  report_sha256  text NOT NULL,
  summary        jsonb NOT NULL,
  generated_by   uuid NOT NULL,
  generated_at   timestamptz NOT NULL,
  signed_by      uuid,
  signed_by_name text,
  signed_at      timestamptz,
  submitted_by   uuid,
  submitted_at   timestamptz,
  reference_no   text,
  created_at     timestamptz NOT NULL,
  UNIQUE (year, quarter),
  CHECK (state = 'draft' OR signed_at IS NOT NULL),
  CHECK (state <> 'submitted' OR (submitted_at IS NOT NULL AND reference_no IS NOT NULL))
);
CREATE INDEX quarterly_reviews_list ON quarterly_reviews (created_at, id);

-- Form 4. The querier's and auditors' names and titles are copied from accounts when the
-- inspection is made (the form records who they were then). The sample is drawn from the
-- querier's bli_query.executed events in the period among the first tree_size events of the
-- log, with seed (see docs/oversight.md for the draw).
CREATE SEQUENCE inspection_no;
CREATE TABLE inspections (
  id                    uuid PRIMARY KEY,
  inspection_no         text NOT NULL UNIQUE,
  state                 text NOT NULL CHECK (state IN ('open', 'findings_recorded', 'signed', 'closed')),
  querier_id            uuid NOT NULL,
  querier               jsonb NOT NULL,
  querier_unit_id       uuid NOT NULL,
  querier_unit          jsonb NOT NULL,
  period_from           date NOT NULL,
  period_to             date NOT NULL CHECK (period_to >= period_from),
  audit_date            date NOT NULL,
  auditing_unit_id      uuid NOT NULL,
  auditing_unit         jsonb NOT NULL,
  auditing_unit_phone   text,
  auditor_ids           uuid[] NOT NULL,
  auditors              jsonb NOT NULL,
  documents_due_at      timestamptz NOT NULL,
  sample_size           integer NOT NULL CHECK (sample_size BETWEEN 1 AND 200),
  seed                  text NOT NULL,
  tree_size             bigint NOT NULL,
  root_hash             text NOT NULL,
  population            integer NOT NULL,
  opinion               text,
  opinion_by            uuid,
  opinion_at            timestamptz,
  director_review       jsonb,
  created_by            uuid NOT NULL,
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL
);
CREATE INDEX inspections_list ON inspections (created_at, id);
CREATE INDEX inspections_querier ON inspections (querier_id);

CREATE TABLE inspection_cases (
  inspection_id     uuid NOT NULL REFERENCES inspections (id),
  case_no           integer NOT NULL CHECK (case_no >= 1),
  event_index       bigint NOT NULL,
  event_id          uuid NOT NULL,
  query_id          text,
  queried_at        timestamptz NOT NULL,
  item              text,
  request_id        text,
  registration_no   text,
  subject_masked    text,
  purpose           jsonb,
  case_reference    text,
  explanation       text,
  responded_at      timestamptz,
  response_late     boolean,
  finding           text CHECK (finding IN ('compliant', 'breach', 'observation')),
  finding_note      text,
  found_by          uuid,
  found_at          timestamptz,
  PRIMARY KEY (inspection_id, case_no),
  CHECK ((responded_at IS NULL) = (explanation IS NULL)),
  CHECK ((found_at IS NULL) = (finding IS NULL))
);

-- The four signatures of Form 4; one person signs in one capacity only.
CREATE TABLE inspection_signoffs (
  inspection_id  uuid NOT NULL REFERENCES inspections (id),
  capacity       text NOT NULL CHECK (capacity IN ('querier', 'auditor', 'using_unit_supervisor',
                                                   'auditing_unit_supervisor')),
  account_id     uuid NOT NULL,
  name           text NOT NULL,
  title          text,
  unit_id        uuid,
  signed_at      timestamptz NOT NULL,
  PRIMARY KEY (inspection_id, capacity),
  UNIQUE (inspection_id, account_id)
);

-- Rule 8: a breach found in a case must be corrected at once and a review report submitted
-- within ten days. suspension_state follows the optional immediate suspension of the
-- querier's grants in accounts (requested -> done, or failed and retried).
CREATE TABLE corrective_actions (
  id                  uuid PRIMARY KEY,
  inspection_id       uuid NOT NULL REFERENCES inspections (id),
  case_no             integer NOT NULL,
  account_id          uuid NOT NULL,
  unit_id             uuid NOT NULL,
  finding_note        text,
  state               text NOT NULL CHECK (state IN ('open', 'reported', 'closed')),
  opened_by           uuid NOT NULL,
  opened_at           timestamptz NOT NULL,
  due_at              timestamptz NOT NULL,
  suspension_state    text NOT NULL CHECK (suspension_state IN ('none', 'requested', 'done', 'failed')),
  suspended_at        timestamptz,
  suspended_items     jsonb,
  report              text,
  reported_by         uuid,
  reported_at         timestamptz,
  close_note          text,
  closed_by           uuid,
  closed_at           timestamptz,
  UNIQUE (inspection_id, case_no),
  FOREIGN KEY (inspection_id, case_no) REFERENCES inspection_cases (inspection_id, case_no)
);
CREATE INDEX corrective_actions_list ON corrective_actions (opened_at, id);
CREATE INDEX corrective_actions_due ON corrective_actions (due_at) WHERE state = 'open';

-- A citizen's request under the Personal Data Protection Act: answered within 15 days of its
-- receipt (extendable once by 15). The report (canonical JSON: the accesses with inclusion
-- proofs) is kept to be read again; it names the subject only by mask and keyed HMAC.
CREATE TABLE subject_access_reports (
  id              uuid PRIMARY KEY,
  id_hmac         text NOT NULL,
  id_masked       text NOT NULL,
  reference       text,
  received_on     date NOT NULL,
  due_on          date NOT NULL,
  tree_size       bigint NOT NULL,
  access_count    integer NOT NULL,
  report          text NOT NULL,
  requested_by    uuid NOT NULL,
  created_at      timestamptz NOT NULL
);
CREATE INDEX subject_access_reports_list ON subject_access_reports (created_at, id);

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

-- The runtime role never deletes a review, an inspection, a finding, a signature, a corrective
-- action or a report.
GRANT SELECT, INSERT, UPDATE ON quarterly_reviews, inspections, inspection_cases, corrective_actions
  TO bligate_audit;
GRANT SELECT, INSERT ON inspection_signoffs, subject_access_reports TO bligate_audit;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO bligate_audit;
GRANT USAGE ON SEQUENCE inspection_no TO bligate_audit;
