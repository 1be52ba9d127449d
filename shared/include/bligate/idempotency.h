/* Idempotency-Key for creating POSTs: a retried request with the same key gets the first
 * reply again instead of creating a second object; the same key with a different request is
 * refused (422 idempotency-key-reused); a key whose first request is still running gets 409.
 * Keys are per caller and kept 24 hours. Every schema that uses it has the table below and
 * includes BG_IDEM_STMTS in its statement list:
 *
 *   CREATE TABLE idempotency_keys (principal text, key text, request_hash text NOT NULL,
 *     status integer, content_type text, location text, body text,
 *     created_at timestamptz NOT NULL, PRIMARY KEY (principal, key));
 *
 * The key is recorded in its own transaction, after the handler's: a crash between the two
 * leaves a pending key, which is retired after 5 minutes so the client can try again. */
#ifndef BLIGATE_IDEMPOTENCY_H
#define BLIGATE_IDEMPOTENCY_H

struct bg_db;
struct bg_request;

/* Runs r's handler under the request's Idempotency-Key (called by the router). */
void bg_idem_run(struct bg_db *db, struct bg_request *r);

#define BG_IDEM_STMTS                                                                                       \
  {"bg_idem_claim", "INSERT INTO idempotency_keys (principal, key, request_hash, created_at)"                \
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1"},                          \
  {"bg_idem_get", "SELECT request_hash, status, content_type, location, body,"                              \
                  " created_at < $3::timestamptz - interval '5 minutes' FROM idempotency_keys"               \
                  " WHERE principal = $1 AND key = $2"},                                                    \
  {"bg_idem_store", "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, body = $6"  \
                    " WHERE principal = $1 AND key = $2"},                                                  \
  {"bg_idem_forget", "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status IS NULL"},  \
  {"bg_idem_expire", "DELETE FROM idempotency_keys WHERE created_at < $1::timestamptz - interval '24 hours'"}

#endif
