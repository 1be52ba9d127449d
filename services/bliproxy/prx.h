/* The BLI proxy: the only road to the BLI data (DESIGN.md §4). A query runs only for a live
 * session of an active account holding an effective grant for the item, under an approved
 * registration that names the subject and item, and only once its audit event is on the log;
 * results are kept encrypted until their retention ends. Shared declarations of its files. */
#ifndef PRX_H
#define PRX_H
#include "bligate/aead.h"
#include "bligate/db.h"
#include "bligate/http.h"
#include <jansson.h>
#include <stdbool.h>

struct bg_svc;
struct bg_shipper;

struct prx_ctx {
  struct bg_db *db;
  struct bg_svc *svc;
  const char *accounts_url, *workflow_url, *audit_url;
  struct bg_keyring keys;  /* result encryption (BLIGATE_RESULT_KEY_FILE) */
  long retention_days;     /* BLIGATE_RETENTION_DAYS, default 5 years */
};

extern struct prx_ctx prx;

/* routes.c */
extern const struct bg_route prx_routes[];
extern const size_t prx_nroutes;

/* db_bliproxy.c */
extern const struct bg_db_stmt prx_stmts[];
extern const size_t prx_nstmts;
/* Columns of the statements that select a query record (QCOLS), in this order. */
enum { Q_ID, Q_REQUEST, Q_REG_NO, Q_CONSUMPTION, Q_QUERIER, Q_QUERIER_NAME, Q_UNIT, Q_REQUESTER, Q_EXTERNAL,
       Q_APPLICANT, Q_SUBJECT, Q_MASKED, Q_ITEM, Q_STATE, Q_FOUND, Q_ERROR, Q_CREATED, Q_RETRIEVED, Q_RETENTION,
       Q_DESTROYED, Q_KID, Q_SEALED };

/* access.c: what the other services say, over their internal APIs with the proxy's token.
 * Each refuses by replying and returning false. */
/* Session live, account active, grant for item effective (accounts, every time). */
bool prx_check_access(struct bg_request *r, const char *item);
/* Session live and account active (for reading results again); the holder's name goes into
 * name (name_len 0: not wanted), for the watermark on what they are shown. */
bool prx_check_session(struct bg_request *r, char *name, size_t name_len);
/* Takes one use of (request, subject, item) for the caller (workflow); *use is its reply. */
bool prx_consume(struct bg_request *r, const char *request_id, const char *subject_id, const char *national_id,
                 const char *item, json_t **use);
/* Gives the use back; false when workflow could not be told: the use is then owed
 * (releases_owed), and the retention job's sweep gives it back later. */
bool prx_release(struct bg_request *r, const char *request_id, const char *consumption_id, const char *reason);
/* Only asks workflow, and says what it answered (0: no answer): the sweep's own call. */
long prx_release_status(struct bg_request *r, const char *request_id, const char *consumption_id, const char *reason);
/* Appends events to the audit log now and waits for its acknowledgement (no audit, no data). */
bool prx_audit_append(struct bg_request *r, json_t *events);
/* The same for one event already serialised (the text stored with the query record): no
 * second serialisation on the query path. */
bool prx_audit_append_event(struct bg_request *r, const char *event_text);

/* upstream.c: the BLI client (mutual TLS, timeouts, retries, circuit breaker, concurrency cap). */
void prx_upstream_init(void);
enum prx_up_result { PRX_UP_OK, PRX_UP_NO_RECORD, PRX_UP_FAILED, PRX_UP_TIMEOUT, PRX_UP_BAD, PRX_UP_OPEN,
                     PRX_UP_BUSY };
/* Asks BLI for (national_id, item); on PRX_UP_OK *record is the upstream record (owned). */
enum prx_up_result prx_upstream_query(const char *request_id, const char *national_id, const char *item,
                                      json_t **record);
void prx_upstream_metrics(void *ctx, char **buf, size_t *len, size_t *cap);

/* results.c: sealing and opening stored results */
/* The sealed form of a result document; *kid names the key. NULL on failure. */
unsigned char *prx_seal(const char *query_id, const char *item, const json_t *doc, size_t *len, const char **kid);
json_t *prx_open(const char *query_id, const char *item, const char *kid, const unsigned char *sealed, size_t len);
/* A query record (QCOLS row) with its data as the API shows it; data_doc NULL for metadata. */
json_t *prx_query_json(PGresult *res, int row, const json_t *data_doc);
/* The watermark for a reader at a time. */
json_t *prx_watermark(const char *account_id, const char *name, const char *unit_id, const char *at);
/* A stored result for a reader already checked (role: querier, requester or applicant), with
 * its data when it has any; the reading's event is added to `events`, which the caller appends
 * to the log before replying. NULL when the sealed result does not open. */
json_t *prx_read_result(struct bg_request *r, PGresult *res, int row, const char *role, const char *ext_app_id,
                        json_t *events);
/* The caller's relation to a record (querier, requester, applicant), or NULL. */
const char *prx_reader_role(const struct bg_request *r, PGresult *res, int row);
/* The result was destroyed, or its retention has ended and the purge has yet to run. */
bool prx_result_gone(PGresult *res, int row);
/* After the readings' events (bli_query.viewed) are on the log: are the records they name still
 * held, not destroyed and within retention? A purge may have destroyed one while its reading was
 * being appended, and no data leaves after the destruction's event. 1 yes, 0 no, -1 after
 * replying (the database). */
int prx_reads_still_held(struct bg_request *r, const json_t *events);
/* ids (a JSON array of UUID strings) as a PostgreSQL uuid[] literal; NULL if one is not a UUID */
char *prx_uuid_array(const json_t *ids);

/* h_*.c */
void prx_h_items(struct bg_request *r);
void prx_h_query_post(struct bg_request *r);
void prx_h_query_list(struct bg_request *r);
void prx_h_query_get(struct bg_request *r);
void prx_h_app_results(struct bg_request *r);
void prx_h_purge(struct bg_request *r);

/* purge.c */
/* Destroys results whose retention ended; returns how many (-1 on failure). */
long prx_purge_run(const char *request_id, json_t **record_ids);
void prx_purge_start(int interval_s);
void prx_purge_stop(void);

/* How long a query may stay pending before the sweep counts it as interrupted: longer than
 * every query can take (prx_upstream_init refuses settings that would let one take longer). */
#define PRX_STALE_S 300

#endif
