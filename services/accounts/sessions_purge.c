/* Sessions long over are deleted: logins and logouts are on the audit log, and the table would
 * otherwise grow with every login. A background job looks at the service's clock every second
 * (the test clock moves it too) and once an hour deletes the sessions whose absolute expiry —
 * which every session reaches, logged out or not — is BLIGATE_SESSION_RETENTION_DAYS past, a
 * thousand at a time along their index until none is left. Each replica runs its own; the
 * deletes do not conflict. */
#include "acct.h"
#include "bligate/clock.h"
#include "bligate/http.h"
#include "bligate/job.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <stdatomic.h>

#define BATCH 1000 /* as sessions_purge's LIMIT */

static time_t next_run;
static atomic_ullong runs, purged;

static void run(void *arg)
{
  (void)arg;
  time_t now = bg_now();
  if (next_run > now + 3600) /* the clock went back: do not wait for it to catch up */
    next_run = now;
  if (now < next_run)
    return;
  struct bg_dbc *c = bg_db_acquire(acct.db, 1000);
  if (!c)
    return; /* the database is away: the next second tries again */
  next_run = now + 3600;
  char cutoff[BG_TIME_LEN];
  bg_time_fmt(now - (time_t)acct.session_retention_days * 86400, cutoff);
  const char *p[] = {cutoff};
  long n = BATCH, total = 0;
  while (n == BATCH) {
    PGresult *res = bg_dbc_exec(c, "sessions_purge", 1, p, NULL);
    if (!res || !bg_parse_long(PQcmdTuples(res), 0, BATCH, &n))
      n = -1;
    PQclear(res);
    if (n > 0)
      total += n;
  }
  bg_db_release(c);
  atomic_fetch_add(&runs, 1);
  atomic_fetch_add(&purged, (unsigned long long)total);
  if (total)
    bg_info("sessions: %ld past their retention deleted", total);
}

struct bg_job *acct_sessions_purge_start(void) { return bg_job_start("sessions-purge", 1000, run, NULL); }

void acct_sessions_purge_metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  (void)ctx;
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_sessions_purges_total Runs of the purge of sessions past their retention.\n"
                    "# TYPE bligate_sessions_purges_total counter\nbligate_sessions_purges_total %llu\n"
                    "# HELP bligate_sessions_purged_total Sessions deleted after their retention.\n"
                    "# TYPE bligate_sessions_purged_total counter\nbligate_sessions_purged_total %llu\n",
                    atomic_load(&runs), atomic_load(&purged));
}
