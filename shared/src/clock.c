/* The service clock with a test-only offset (see clock.h). */
#include "bligate/clock.h"
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static _Atomic int64_t offset_s;

int64_t bg_clock_offset(void) { return atomic_load(&offset_s); }
void bg_clock_set_offset(int64_t seconds) { atomic_store(&offset_s, seconds); }

int64_t bg_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((int64_t)ts.tv_sec + atomic_load(&offset_s)) * 1000000 + ts.tv_nsec / 1000;
}

time_t bg_now(void) { return (time_t)(bg_now_us() / 1000000); }

int64_t bg_mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *bg_time_fmt(time_t t, char buf[BG_TIME_LEN])
{
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, BG_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

char *bg_date_fmt(time_t t, char buf[BG_DATE_LEN])
{
  struct tm tm;
  time_t local = t + 8 * 3600;
  gmtime_r(&local, &tm);
  strftime(buf, BG_DATE_LEN, "%Y-%m-%d", &tm);
  return buf;
}

static bool digits(const char *s, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool bg_time_parse(const char *s, time_t *out)
{
  int Y, M, D, h, m, sec;
  if (!s || strlen(s) < 19)
    return false;
  if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
      !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != ' ' && s[10] != 't') ||
      !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' ||
      !digits(s + 17, 2, &sec))
    return false;
  /* year 0000 does not exist for PostgreSQL, which would answer a 500 for it */
  if (Y < 1 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
    return false;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return false;
    const char *frac = p;
    while (*p >= '0' && *p <= '9')
      p++;
    if (p - frac > 9) /* to the nanosecond; PostgreSQL refuses a long enough string (a 500) */
      return false;
  }
  long off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om = 0;
    int sign = *p == '-' ? -1 : 1;
    p++;
    if (!digits(p, 2, &oh))
      return false;
    p += 2;
    /* +hh, +hhmm or +hh:mm; a colon must be followed by the minutes */
    if (*p == ':' && !p[1])
      return false;
    if (*p == ':')
      p++;
    if (*p && !digits(p, 2, &om))
      return false;
    if (*p)
      p += 2;
    /* RFC 3339 allows hours to 23; PostgreSQL takes offsets to 15:59 only (real zones stay
     * within 14 hours), and a time it refuses would be a 500, not a 400 */
    if (oh > 15 || om > 59)
      return false;
    off = sign * (oh * 3600L + om * 60L);
  } else {
    return false;
  }
  if (*p)
    return false;
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
  time_t t = timegm(&tm);
  struct tm chk;
  gmtime_r(&t, &chk);
  if (chk.tm_mday != D) /* 31 February and friends */
    return false;
  *out = t - off;
  return true;
}
