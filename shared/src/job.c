/* Periodic background jobs (job.h). */
#include "bligate/job.h"
#include "bligate/log.h"
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct bg_job {
  const char *name;
  long interval_ms;
  void (*fn)(void *arg);
  void *arg;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool running, kicked;
};

static void *loop(void *p)
{
  struct bg_job *j = p;
  pthread_mutex_lock(&j->mu);
  while (j->running) {
    j->kicked = false;
    pthread_mutex_unlock(&j->mu);
    j->fn(j->arg);
    pthread_mutex_lock(&j->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(j->interval_ms % 1000) * 1000000LL;
    until.tv_sec += (time_t)(j->interval_ms / 1000 + ns / 1000000000LL);
    until.tv_nsec = (long)(ns % 1000000000LL);
    while (j->running && !j->kicked)
      if (pthread_cond_timedwait(&j->cv, &j->mu, &until) != 0)
        break;
  }
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

struct bg_job *bg_job_start(const char *name, long interval_ms, void (*fn)(void *arg), void *arg)
{
  struct bg_job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  *j = (struct bg_job){.name = name, .interval_ms = interval_ms, .fn = fn, .arg = arg, .running = true};
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  if (pthread_create(&j->thread, NULL, loop, j) != 0) {
    bg_error("cannot start the %s job", name);
    free(j);
    return NULL;
  }
  return j;
}

void bg_job_kick(struct bg_job *j)
{
  if (!j)
    return;
  pthread_mutex_lock(&j->mu);
  j->kicked = true;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

void bg_job_stop(struct bg_job *j)
{
  if (!j)
    return;
  pthread_mutex_lock(&j->mu);
  j->running = false;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  pthread_join(j->thread, NULL);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}
