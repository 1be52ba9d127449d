-- A session's certificate found no longer valid at a refresh for another reason than a
-- revocation (expired, no longer trusted): ended as certificate_invalid, so the log does not
-- say "revoked" where nothing was revoked.
ALTER TABLE sessions DROP CONSTRAINT sessions_end_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_end_reason_check
  CHECK (end_reason IN ('logout', 'superseded', 'idle', 'expired', 'deactivated', 'certificate_disabled',
                        'certificate_revoked', 'certificate_invalid'));
