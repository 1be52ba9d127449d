/* Group commit for the intake. Every append holds the log's single-writer row lock through its
 * commit (an fsync), so appends one by one cap the log at the disk's flush rate — and the
 * proxy waits for its event before each BLI query. Instead, callers that arrive while an
 * append is under way queue up; when it finishes, one of them (the leader) appends everything
 * queued in one transaction and hands each caller its own results. One lock, one flush, many
 * events; the order within each caller's batch is kept. A batch that meets a conflicting event
 * (an id re-sent with other content) is appended caller by caller instead, so one caller's
 * conflict refuses only that caller. Replicas still serialise on the database lock. */
#include "aud.h"
#include "bligate/log.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct waiter {
  struct aud_entry *e;
  size_t n;
  bool done, ok, conflict;
  struct waiter *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct waiter *head, **tail = &head;
static bool busy;

static bool append_one(struct bg_dbc *c, struct waiter *w)
{
  w->ok = c && aud_append(c, w->e, w->n, &w->conflict);
  return w->ok;
}

static void run(struct waiter *batch)
{
  struct bg_dbc *c = bg_db_acquire(aud.db, 5000);
  size_t total = 0, callers = 0;
  for (struct waiter *w = batch; w; w = w->next) {
    total += w->n;
    callers++;
  }
  struct aud_entry *all = callers > 1 ? calloc(total, sizeof *all) : NULL;
  bool together = false, conflict = false;
  if (c && all) {
    size_t k = 0;
    for (struct waiter *w = batch; w; w = w->next)
      for (size_t i = 0; i < w->n; i++)
        all[k++] = w->e[i]; /* shallow: the strings stay the caller's */
    together = aud_append(c, all, total, &conflict);
    if (together) {
      k = 0;
      for (struct waiter *w = batch; w; w = w->next) {
        for (size_t i = 0; i < w->n; i++, k++) {
          w->e[i].status = all[k].status;
          w->e[i].index = all[k].index;
          w->e[i].dup_of = -1;
        }
        w->ok = true;
      }
    }
  }
  free(all);
  if (!together) {
    if (conflict)
      bg_warn("a batch of %zu callers met a conflicting event; appending caller by caller", callers);
    for (struct waiter *w = batch; w; w = w->next)
      append_one(c, w);
  }
  bg_db_release(c);
}

bool aud_group_append(struct aud_entry *e, size_t n, bool *conflict)
{
  struct waiter me = {.e = e, .n = n};
  pthread_mutex_lock(&mu);
  *tail = &me;
  tail = &me.next;
  while (!me.done) {
    if (!busy) {
      /* lead: take everything queued so far (me among them) */
      busy = true;
      struct waiter *batch = head;
      head = NULL;
      tail = &head;
      pthread_mutex_unlock(&mu);
      run(batch);
      pthread_mutex_lock(&mu);
      for (struct waiter *w = batch; w; w = w->next)
        w->done = true;
      busy = false;
      pthread_cond_broadcast(&cv);
    } else {
      pthread_cond_wait(&cv, &mu);
    }
  }
  pthread_mutex_unlock(&mu);
  *conflict = me.conflict;
  return me.ok;
}
