-- The shipper is woken in-process after a commit that wrote outbox rows (shared/src/db.c's
-- outbox hook: bg_outbox_add marks its transaction, a statement that inserts into the outbox
-- itself is followed by bg_dbc_outbox_written), and polls for rows written elsewhere. The
-- NOTIFY of 0001 serialised every committing transaction that wrote an event on the notify
-- queue's lock; the proxy's consume before every BLI query is the busiest writer of this
-- outbox, so the trigger goes (as accounts' did in its 0005).
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
