-- The shipper is woken in-process after a commit that wrote outbox rows (shared/src/db.c's
-- outbox hook), and polls for rows written elsewhere. The NOTIFY of 0004 cost about as much as
-- the outbox insert itself and serialised every committing transaction on the notify queue's
-- lock; logins are the busiest writers of this outbox, so the trigger goes.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
