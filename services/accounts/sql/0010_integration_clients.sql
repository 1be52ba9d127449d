-- Integration clients (issue 8): other city systems registered by the permission administrator,
-- each bound to one unit, with scopes such as approvals:read:<unit> and approvals:decide:<unit>.
-- They live beside the services' own clients (kind 'service', registered by the stack), with
-- the same hashed secrets; the extra columns say who they are.
ALTER TABLE clients
  ADD COLUMN kind        text NOT NULL DEFAULT 'service' CHECK (kind IN ('service', 'integration')),
  ADD COLUMN name        text CHECK (char_length(name) BETWEEN 2 AND 100),
  ADD COLUMN unit_id     uuid REFERENCES units (id),
  ADD COLUMN description text,
  ADD COLUMN created_by  uuid,
  ADD CONSTRAINT clients_integration_fields CHECK (kind = 'service' OR (name IS NOT NULL AND unit_id IS NOT NULL));
CREATE INDEX clients_integration ON clients (created_at, id) WHERE kind = 'integration';
