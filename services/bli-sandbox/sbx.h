/* The BLI sandbox: a deterministic stand-in for the Bureau of Labor Insurance's data-query
 * service, for development, front-end teams and tests (issue 6). Shared declarations. */
#ifndef SBX_H
#define SBX_H
#include "bligate/http.h"
#include <jansson.h>
#include <stdbool.h>

/* data.c: what BLI would say about one person and item, the same every time (derived from a
 * keyed hash of the ID and item). NULL when BLI holds no record of the person. */
json_t *sbx_record(const char *national_id, const char *item);
/* The key is SHA-256(seed); the data documented in README.md (which IDs have no record) are
 * those of this default seed. */
#define SBX_DEFAULT_SEED "bligate-bli-sandbox"
void sbx_data_init(const char *seed);

/* faults.c: the fault settings (environment at start, PUT /_sandbox/faults later) and the call
 * counters. */
void sbx_faults_init(void);
/* The sandbox is stopping: calls waiting out a latency or a hold answer at once. */
void sbx_faults_stop(void);
/* What to do with this call: 0 = answer normally; else the HTTP status to fail with. Sleeps
 * for the configured latency (or the timeout's hold) first. */
int sbx_fault_for_call(void);
/* A call on arrival (a caller that gave up still called), and its answer's status. */
void sbx_count_call(const char *item);
void sbx_count_status(int status);
void sbx_h_faults_get(struct bg_request *r);
void sbx_h_faults_put(struct bg_request *r);
void sbx_h_stats(struct bg_request *r);
void sbx_h_reset(struct bg_request *r);

/* h_queries.c */
void sbx_h_query(struct bg_request *r);

#endif
