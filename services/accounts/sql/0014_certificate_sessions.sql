-- A certificate disabled by its holder or the permission administrator (a lost card, a key
-- that may be known to someone else) ends the sessions it opened, in the same transaction;
-- one found revoked (a CRL published since the login) ends its session at the next refresh.
-- Refusing only the next login left a live session able to refresh and query for hours.
ALTER TABLE sessions DROP CONSTRAINT sessions_end_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_end_reason_check
  CHECK (end_reason IN ('logout', 'superseded', 'idle', 'expired', 'deactivated', 'certificate_disabled',
                         'certificate_revoked'));
