/* A background job: fn(arg) runs on its own thread at once, then every interval_ms, or sooner
 * when kicked; stopping waits for the current run to finish. (The retention purge, webhook
 * deliveries and such: each replica runs its own, and the work they share is claimed in the
 * database, not here.) */
#ifndef BLIGATE_JOB_H
#define BLIGATE_JOB_H
#include <stdbool.h>

struct bg_job;

struct bg_job *bg_job_start(const char *name, long interval_ms, void (*fn)(void *arg), void *arg);
/* Runs it again now (a no-op while a run is under way: that run sees the new work). */
void bg_job_kick(struct bg_job *j);
void bg_job_stop(struct bg_job *j);

#endif
