-- workflow: the legal-basis catalogue, query registrations (Form 2) with their subjects and
-- per-(subject, item) uses, external applications (Form 3), the outbox of audit events and
-- Idempotency-Key records. Run as bligate_workflow_owner.
--
-- Subjects' national IDs are stored three ways and never in clear: a keyed HMAC (id_hmac, for
-- matching and for the audit log), the mask (id_masked, A12****789) and AES-256-GCM
-- ciphertext (id_enc) that only the service can open for those entitled to the full number.

CREATE TABLE legal_bases (
  id           uuid PRIMARY KEY,
  code         text NOT NULL CONSTRAINT legal_bases_code_key UNIQUE CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{1,31}$'),
  law_name     text NOT NULL CONSTRAINT legal_bases_law_name_key UNIQUE CHECK (char_length(law_name) BETWEEN 2 AND 100),
  law_name_en  text,
  -- the BLI items (Form 1's catalogue) a request under this law may ask for
  items        text[] NOT NULL CHECK (cardinality(items) BETWEEN 1 AND 9),
  description  text,
  created_by   uuid,            -- NULL: seeded by this migration
  created_at   timestamptz NOT NULL
);
CREATE INDEX legal_bases_list ON legal_bases (created_at, id);

-- The main social-welfare laws the bureau queries under, each with the items it may justify
-- (why each item: services/workflow/README.md). The seed time is the rules' last amendment, a fixed
-- value, not the migration's clock.
INSERT INTO legal_bases (id, code, law_name, law_name_en, items, description, created_at) VALUES
 ('6b1f0c1e-0001-4c6a-9d1e-5a0000000001', 'PUBLIC-ASSISTANCE', '社會救助法', 'Public Assistance Act',
  ARRAY['C0101','B0101','B0201','B0301','P0301','N0101','T0101','B0401','P0401'],
  '低收入戶、中低收入戶資格審核：家庭應計算人口之工作收入、各項給付及年金（第4條、第4條之1、第5條之1、第5條之3）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0002-4c6a-9d1e-5a0000000002', 'DISABILITY-RIGHTS', '身心障礙者權益保障法', 'People with Disabilities Rights Protection Act',
  ARRAY['C0101','B0101','B0201','B0401','P0301','N0101'],
  '身心障礙者生活補助、日間照顧及住宿式照顧補助之家庭收入審核，與就業服務（第33條、第71條）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0003-4c6a-9d1e-5a0000000003', 'SENIOR-WELFARE', '老人福利法', 'Senior Citizens Welfare Act',
  ARRAY['C0101','B0101','B0201','B0401','N0101','T0101','P0401'],
  '中低收入老人生活津貼、特別照顧津貼等之收入與重複領取審核（第12條、第13條）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0004-4c6a-9d1e-5a0000000004', 'SPECIAL-FAMILIES', '特殊境遇家庭扶助條例', 'Act of Assistance for Family in Hardship',
  ARRAY['C0101','B0101','B0201','B0301','P0301','N0101'],
  '特殊境遇家庭身分之家庭收入與就業狀況認定（第4條、第13條）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0005-4c6a-9d1e-5a0000000005', 'CHILD-YOUTH-WELFARE', '兒童及少年福利與權益保障法', 'Protection of Children and Youths Welfare and Rights Act',
  ARRAY['C0101','B0101','B0201','P0301'],
  '弱勢家庭兒童及少年生活扶助、托育及醫療補助之家庭經濟狀況審核，及保護個案之家庭處遇（第22條、第64條）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0006-4c6a-9d1e-5a0000000006', 'NATIONAL-PENSION', '國民年金法', 'National Pension Act',
  ARRAY['C0101','N0101','B0401','T0101'],
  '國民年金加保資格（未參加勞保）及身心障礙、老年基本保證年金之排除條件審核（第7條、第31條、第34條）。', '2017-04-26 00:00:00+08'),
 ('6b1f0c1e-0007-4c6a-9d1e-5a0000000007', 'DOMESTIC-VIOLENCE', '家庭暴力防治法', 'Domestic Violence Prevention Act',
  ARRAY['C0101','P0301'],
  '保護令聲請與執行、被害人扶助：查明相對人之投保單位與就業狀況（第14條、第58條）。', '2017-04-26 00:00:00+08');

CREATE SEQUENCE query_request_no;
CREATE SEQUENCE external_application_no;

-- Form 3: a district office's or agency's application to a business unit of the bureau.
CREATE TABLE external_applications (
  id                   uuid PRIMARY KEY,
  application_no       text NOT NULL UNIQUE,
  applicant_id         uuid NOT NULL,
  applicant_name       text NOT NULL,
  applicant_unit_id    uuid NOT NULL,
  applicant_title      text NOT NULL,
  phone                text NOT NULL,
  fax                  text,
  target_unit_id       uuid NOT NULL,
  legal_basis_id       uuid NOT NULL REFERENCES legal_bases (id),
  article              text NOT NULL,
  relevance            text NOT NULL CHECK (char_length(relevance) >= 15),
  case_reference       text,
  subject_count        integer NOT NULL CHECK (subject_count BETWEEN 1 AND 100),
  state                text NOT NULL CHECK (state IN ('submitted', 'endorsed', 'not_endorsed', 'accepted', 'rejected',
                                                      'approved', 'closed')),
  close_reason         text CHECK (close_reason IN ('completed', 'request_rejected', 'request_cancelled')),
  endorsement          text CHECK (endorsement IN ('endorse', 'refuse')),
  endorsed_by          uuid,
  endorser_name        text,
  endorsed_at          timestamptz,
  endorsement_comment  text,
  review               text CHECK (review IN ('accept', 'reject')),
  reviewed_by          uuid,
  reviewer_name        text,
  reviewed_at          timestamptz,
  review_reason        text,
  review_opinion       text,
  querier_id           uuid,
  querier_name         text,
  query_request_id     uuid UNIQUE,
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  closed_at            timestamptz
);
CREATE INDEX external_applications_list ON external_applications (created_at, id);
CREATE INDEX external_applications_applicant_unit ON external_applications (applicant_unit_id, created_at, id);
CREATE INDEX external_applications_target_unit ON external_applications (target_unit_id, created_at, id);

CREATE TABLE external_application_subjects (
  id              uuid PRIMARY KEY,
  application_id  uuid NOT NULL REFERENCES external_applications (id),
  seq             integer NOT NULL,
  name            text NOT NULL,
  id_hmac         text NOT NULL,
  id_masked       text NOT NULL,
  id_enc          text NOT NULL,
  items           text[] NOT NULL CHECK (cardinality(items) >= 1),
  UNIQUE (application_id, seq),
  UNIQUE (application_id, id_hmac)
);

-- Form 2: one registration, approved by the unit's supervisor (or the Director) before any query.
CREATE TABLE query_requests (
  id                       uuid PRIMARY KEY,
  registration_no          text NOT NULL UNIQUE,
  unit_id                  uuid NOT NULL,           -- the querier's unit at submission
  querier_id               uuid NOT NULL,
  querier_name             text NOT NULL,
  requester_id             uuid NOT NULL,
  requester_name           text NOT NULL,
  requester_unit_id        uuid NOT NULL,
  submitted_by             uuid NOT NULL,
  legal_basis_id           uuid NOT NULL REFERENCES legal_bases (id),
  article                  text NOT NULL,
  relevance                text NOT NULL CHECK (char_length(relevance) >= 15),
  case_reference           text NOT NULL,
  max_uses                 integer NOT NULL CHECK (max_uses BETWEEN 1 AND 3),
  subject_count            integer NOT NULL CHECK (subject_count BETWEEN 1 AND 100),
  decider_role             text NOT NULL CHECK (decider_role IN ('supervisor', 'director')),
  state                    text NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
  decision                 text CHECK (decision IN ('approve', 'reject')),
  decided_by               uuid,
  decider_name             text,
  decided_at               timestamptz,
  decision_reason          text,
  valid_from               timestamptz,
  valid_until              timestamptz,
  cancelled_by             uuid,
  cancelled_at             timestamptz,
  cancel_reason            text,
  external_application_id  uuid UNIQUE REFERENCES external_applications (id),
  created_at               timestamptz NOT NULL,
  updated_at               timestamptz NOT NULL,
  -- nobody decides a request they asked for or will query (rule 5)
  CHECK (decided_by IS NULL OR (decided_by <> querier_id AND decided_by <> requester_id)),
  CHECK (state <> 'approved' OR (valid_from IS NOT NULL AND valid_until > valid_from))
);
CREATE INDEX query_requests_list ON query_requests (created_at, id);
CREATE INDEX query_requests_unit ON query_requests (unit_id, created_at, id);
CREATE INDEX query_requests_querier ON query_requests (querier_id, created_at, id);
CREATE INDEX query_requests_requester ON query_requests (requester_id, created_at, id);
ALTER TABLE external_applications ADD CONSTRAINT external_applications_query_request_fkey
  FOREIGN KEY (query_request_id) REFERENCES query_requests (id);

CREATE TABLE query_request_subjects (
  id          uuid PRIMARY KEY,
  request_id  uuid NOT NULL REFERENCES query_requests (id),
  seq         integer NOT NULL,
  name        text NOT NULL,
  id_hmac     text NOT NULL,
  id_masked   text NOT NULL,
  id_enc      text NOT NULL,
  items       text[] NOT NULL CHECK (cardinality(items) >= 1),
  UNIQUE (request_id, seq),
  UNIQUE (request_id, id_hmac)
);

-- One row per (subject, item): how often it may be queried and how often it has been. The
-- CHECK is the last line of defence: no interleaving of consumes can take more than max_uses.
CREATE TABLE query_request_uses (
  subject_id  uuid NOT NULL REFERENCES query_request_subjects (id),
  item        text NOT NULL,
  request_id  uuid NOT NULL REFERENCES query_requests (id),
  max_uses    integer NOT NULL CHECK (max_uses BETWEEN 1 AND 3),
  used        integer NOT NULL DEFAULT 0,
  PRIMARY KEY (subject_id, item),
  CHECK (used BETWEEN 0 AND max_uses)
);
CREATE INDEX query_request_uses_request ON query_request_uses (request_id);

-- Each use taken by the proxy; a release (upstream failure) gives it back.
CREATE TABLE query_request_consumptions (
  id              uuid PRIMARY KEY,
  request_id      uuid NOT NULL REFERENCES query_requests (id),
  subject_id      uuid NOT NULL REFERENCES query_request_subjects (id),
  item            text NOT NULL,
  querier_id      uuid NOT NULL,
  client_id       text NOT NULL,
  consumed_at     timestamptz NOT NULL,
  released_at     timestamptz,
  release_reason  text
);
CREATE INDEX query_request_consumptions_request ON query_request_consumptions (request_id, subject_id, item);

-- Events recorded in the same transaction as the change; shipped to the audit service.
CREATE TABLE outbox (
  seq         bigserial PRIMARY KEY,
  event_id    uuid NOT NULL UNIQUE,
  event       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  shipped_at  timestamptz
);
CREATE INDEX outbox_unshipped ON outbox (seq) WHERE shipped_at IS NULL;
-- The outbox shipper (shared/src/shipper.c) LISTENs on bligate_outbox_workflow: a new row
-- wakes it when its transaction commits, instead of at its next poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('bligate_outbox_' || TG_TABLE_SCHEMA, '');
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

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

-- The runtime role reads and writes rows and never deletes a registration, a use or an event;
-- it cannot change the schema.
GRANT SELECT, INSERT ON legal_bases TO bligate_workflow;
GRANT SELECT, INSERT, UPDATE ON external_applications, query_requests, query_request_uses,
  query_request_consumptions TO bligate_workflow;
GRANT SELECT, INSERT ON external_application_subjects, query_request_subjects TO bligate_workflow;
GRANT SELECT, INSERT, UPDATE ON outbox TO bligate_workflow;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO bligate_workflow;
GRANT USAGE ON SEQUENCE query_request_no, external_application_no, outbox_seq_seq TO bligate_workflow;
