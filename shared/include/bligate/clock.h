/* The service clock. Everything time-dependent (tokens, sessions, grants, expiry) reads it,
 * and SQL gets times as parameters from it, so tests can move a service through time
 * (BLIGATE_TEST_CLOCK=1) instead of sleeping. */
#ifndef BLIGATE_CLOCK_H
#define BLIGATE_CLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

time_t bg_now(void);
/* Microseconds since the epoch, for durations and IDs; also shifted by the offset. */
int64_t bg_now_us(void);
int64_t bg_clock_offset(void);
void bg_clock_set_offset(int64_t seconds);

/* RFC 3339 UTC with 'Z'. buf must hold BG_TIME_LEN bytes. */
#define BG_TIME_LEN 32
char *bg_time_fmt(time_t t, char buf[BG_TIME_LEN]);
/* Parses RFC 3339 (Z or ±hh:mm offset; fractional seconds ignored) and PostgreSQL's
 * "YYYY-MM-DD HH:MM:SS[.ffffff]+00" text form. */
bool bg_time_parse(const char *s, time_t *out);
/* The bureau's calendar date (Asia/Taipei, UTC+8, no daylight saving) at time t, as
 * YYYY-MM-DD: effective dates and "today" are the bureau's days, not UTC's. */
#define BG_DATE_LEN 11
char *bg_date_fmt(time_t t, char buf[BG_DATE_LEN]);

/* Monotonic microseconds, for latency. */
int64_t bg_mono_us(void);

#endif
