/* The outbox shipper: a background thread per service that delivers the rows of its schema's
 * `outbox` table (events.h) to the audit service's POST /internal/events, in order, at least
 * once (audit de-duplicates by event id), marking them shipped only once audit has
 * acknowledged them. Nothing is lost across restarts of either side: the outbox is the state.
 * While audit is unreachable it backs off (up to max_backoff_ms) and the backlog grows; the
 * backlog is a metric. New rows wake it: a commit in this process that wrote outbox rows
 * (db.h's outbox hook), else the poll (rows of another replica; no outbox has a NOTIFY trigger
 * any more: accounts dropped its own in 0005, workflow in 0002). After a
 * wake-up it gathers for gather_ms (BLIGATE_OUTBOX_GATHER_MS, default 50) so that a busy
 * service sends one batch per interval instead of one per transaction; a flush ships at once.
 * Rows shipped more than retention_days ago are deleted, hourly, through the schema's
 * outbox_purge function. An event audit refuses for good (a 400, 409, 413 or 422: its content,
 * not the moment) is found by sending its batch again one at a time, replaced on the log by an
 * outbox.event_refused event, and its row marked shipped with outbox.refusal and kept
 * (docs/audit-log.md). */
#ifndef BLIGATE_SHIPPER_H
#define BLIGATE_SHIPPER_H
#include <stdbool.h>
#include <stddef.h>

struct bg_svc;

struct bg_shipper_cfg {
  const char *service;   /* metrics label: "accounts" */
  const char *db_url;    /* the service's runtime role (needs SELECT, UPDATE on outbox) */
  const char *schema;    /* whose outbox: "accounts" */
  const char *audit_url; /* base URL of the audit service */
  struct bg_svc *svc;    /* this service's client (scope events:append) */
  int batch;             /* events per POST; default 200 */
  int poll_ms;           /* look for rows at least this often; default 1000 */
  int max_backoff_ms;    /* longest wait between failed deliveries; default 2000 */
  int gather_ms;         /* after new rows wake it, wait this long for more; 0: ship at once */
  int retention_days;    /* shipped rows older than this are deleted (the schema's outbox_purge); 0: kept */
};

/* Starts the thread (one per process). NULL when the database pool cannot be set up. */
struct bg_shipper *bg_shipper_start(const struct bg_shipper_cfg *cfg);
/* The usual configuration from BLIGATE_DB_URL and BLIGATE_AUDIT_URL (exits naming a missing
 * variable), for the given schema. */
struct bg_shipper *bg_shipper_start_env(const char *service, const char *schema, struct bg_svc *svc);
/* Stops the thread after its current delivery; unshipped rows stay for the next start. */
void bg_shipper_stop(struct bg_shipper *s);

/* The synchronous path ("no audit, no data"): waits until the outbox row of event_id has been
 * acknowledged by the audit service (appended to the log), waking the shipper at once. The
 * caller has committed the row. false when timeout_ms passes first or the id is unknown. */
bool bg_shipper_flush_event(struct bg_shipper *s, const char *event_id, int timeout_ms);

/* Rows not yet shipped (as of the shipper's last look), or -1 before its first. */
long long bg_shipper_backlog(struct bg_shipper *s);

/* For bg_server_add_metrics: bligate_outbox_backlog, _shipped_total, _failures_total of the
 * process's shipper. */
void bg_shipper_metrics(void *ctx, char **buf, size_t *len, size_t *cap);

#endif
