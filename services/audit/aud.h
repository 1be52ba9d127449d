/* The audit service: the append-only event log as a Merkle tree (RFC 9162), signed tree heads,
 * proofs, reading and export (DESIGN.md §5, docs/audit-log.md). Shared declarations. */
#ifndef AUD_H
#define AUD_H
#include "bligate/db.h"
#include "bligate/http.h"
#include "bligate/jwt.h"
#include "merkle.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>

struct bg_svc;

struct aud_ctx {
  struct bg_db *db;
  int db_pool; /* its connections (BLIGATE_DB_POOL) */
  struct bg_svc *svc;
  EVP_PKEY *sign_key; /* signs tree heads */
  char kid[48];
  struct bg_keyset *sign_keys; /* its public half, published at /v1/audit/keys */
  const char *accounts_url;
  long sth_interval_ms;
  long max_batch;
};

extern struct aud_ctx aud;

/* routes.c */
extern const struct bg_route aud_routes[];
extern const size_t aud_nroutes;

/* db_audit.c */
extern const struct bg_db_stmt aud_stmts[];
extern const size_t aud_nstmts;

/* One event on its way into the log. */
struct aud_entry {
  const char *event_id;   /* borrowed from ev */
  json_t *ev;             /* the event as received (borrowed) */
  char *canonical;        /* owned: the exact bytes hashed */
  size_t len;
  unsigned char leaf[AUD_HASH_LEN];
  /* out */
  enum { AUD_APPENDED, AUD_DUPLICATE, AUD_CONFLICT } status;
  int64_t index;
  long dup_of; /* an earlier entry of the same batch with this id, or -1 */
};

/* Canonicalises and hashes e->ev (adding "source"); false with *why on an event without a
 * canonical form. */
bool aud_entry_prepare(struct aud_entry *e, const char *source, const char **why);
void aud_entry_clear(struct aud_entry *e);
/* The log's events in [params[0], params[1]) matching the filters of GET /v1/audit/events
 * (params: from, to, type, actor, object kind, object id, time from, time to, subject HMAC,
 * limit), in index order; planned for each call. */
PGresult *aud_events_select(struct bg_dbc *c, bool by_subject, const char *const params[10]);
/* Appends the entries in order as one transaction under the log's row lock: new ids get the
 * next indices, known ids are reported as duplicates (same bytes) or conflicts (other bytes;
 * then nothing is appended and false is returned with *conflict set). */
bool aud_append(struct bg_dbc *c, struct aud_entry *e, size_t n, bool *conflict);
/* group.c: the same, for the intake, committed together with concurrent callers' batches. */
bool aud_group_append(struct aud_entry *e, size_t n, bool *conflict);
/* The same inside the caller's transaction (which it neither commits nor rolls back). */
bool aud_append_in_tx(struct bg_dbc *c, struct aud_entry *e, size_t n, bool *conflict);
/* Appends one event the audit service itself records (a read of the log): steals ev. */
bool aud_append_own(json_t *ev, const char *request_id);

/* The log's current size and root. */
bool aud_state(struct bg_dbc *c, uint64_t *size, unsigned char root[AUD_HASH_LEN]);
/* Proof helpers: hashes of perfect subtrees fetched in one round trip. */
int aud_db_inclusion(struct bg_dbc *c, uint64_t index, uint64_t size, unsigned char out[][AUD_HASH_LEN],
                     unsigned char leaf[AUD_HASH_LEN], unsigned char root[AUD_HASH_LEN]);
int aud_db_consistency(struct bg_dbc *c, uint64_t first, uint64_t second, unsigned char out[][AUD_HASH_LEN],
                       unsigned char r1[AUD_HASH_LEN], unsigned char r2[AUD_HASH_LEN]);
/* bytea in text form ("\x..") → 32 bytes */
bool aud_bytea32(const char *s, unsigned char out[AUD_HASH_LEN]);

/* event.c: the intake's checks of one event; errors named with prefix ("events[3]."). */
bool aud_event_check(const json_t *ev, json_t *errors, const char *prefix);
/* true when s holds a valid Taiwan ID number anywhere (events must not). */
bool aud_has_national_id(const json_t *j);

/* sth.c: tree heads */
bool aud_sth_start(void);
void aud_sth_stop(void);
/* Signs the current state if no tree head covers it yet. */
bool aud_sth_sign_now(struct bg_dbc *c);
json_t *aud_sth_json(PGresult *res, int row);
/* The signature verifies and signs exactly this size, root, timestamp and key (a row's columns). */
bool aud_sth_verify(const char *jws, uint64_t size, const unsigned char root[AUD_HASH_LEN], const char *timestamp,
                    const char *kid);

/* auth.c */
bool aud_session_hook(struct bg_request *r);
bool aud_is_reader(struct bg_request *r);
/* Records the read (or a refused one) on the log first; replies 503 and returns false when it
 * cannot be recorded (no audit, no read). details is stolen. */
bool aud_record_read(struct bg_request *r, const char *type, const char *outcome, json_t *details, json_t *subject);

/* webhooks.c: subscriptions' deliveries (own pool and thread) */
bool aud_webhooks_start(const char *db_url);
void aud_webhooks_stop(void);
void aud_webhooks_kick(void);
void aud_webhooks_metrics(void *ctx, char **buf, size_t *len, size_t *cap);
struct bg_db *aud_webhooks_db(void);
bool aud_webhooks_allow_http(void);
/* A new signing secret, "whsec_" + base64 of 32 random bytes. */
bool aud_webhook_secret(char out[64]);

/* handlers */
void aud_h_intake(struct bg_request *r);
void aud_h_keys(struct bg_request *r);
void aud_h_sth_latest(struct bg_request *r);
void aud_h_inclusion(struct bg_request *r);
void aud_h_consistency(struct bg_request *r);
void aud_h_events(struct bg_request *r);
void aud_h_search(struct bg_request *r);
void aud_h_verify(struct bg_request *r);
void aud_h_webhooks_post(struct bg_request *r);
void aud_h_webhooks_list(struct bg_request *r);
void aud_h_webhooks_get(struct bg_request *r);
void aud_h_webhooks_delete(struct bg_request *r);
void aud_h_webhook_deliveries(struct bg_request *r);

#endif
