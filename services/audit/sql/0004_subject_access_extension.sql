-- A subject-access request may be extended once by 15 days (Personal Data Protection Act,
-- art. 13): the new due date, who extended it, when and why. Run as bligate_audit_owner.
ALTER TABLE subject_access_reports
  ADD COLUMN extended_by      uuid,
  ADD COLUMN extended_at      timestamptz,
  ADD COLUMN extension_reason text,
  ADD CONSTRAINT subject_access_extension CHECK ((extended_at IS NULL) = (extension_reason IS NULL));
-- only the due date and the extension change; the report never does
GRANT UPDATE (due_on, extended_by, extended_at, extension_reason) ON subject_access_reports TO bligate_audit;
