/* Oversight (issue 7, rules 7-9), the pure part (oversight.c): the bureau's calendar, office
 * hours, a quarterly review's arithmetic over events of the log, and an inspection's
 * reproducible sample draw. No HTTP, no database: unit-tested in tests/unit/test_oversight.c. */
#ifndef AUD_OVERSIGHT_H
#define AUD_OVERSIGHT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- pure: oversight.c ---- */

/* The bureau's calendar is Asia/Taipei: UTC+8 all year (no daylight saving since 1979). */
#define AUD_TZ_OFFSET (8 * 3600)
#define AUD_DAY (86400L)
/* A quarter's review is due 30 days after the quarter ends (rule 7 gives no day; the bureau's
 * practice does). A corrective report is due 10 days after the breach finding (rule 8). A
 * subject-access request is answered within 15 days of its receipt, extendable once by 15
 * (Personal Data Protection Act, art. 13). Grants unused for 90 days are recommended for
 * revocation. */
#define AUD_REVIEW_DUE_DAYS 30
#define AUD_CORRECTIVE_DUE_DAYS 10
#define AUD_SAR_DUE_DAYS 15
#define AUD_UNUSED_DAYS 90

/* [start, end) of quarter 1..4 of year in the bureau's calendar; false when out of range. */
bool aud_quarter_bounds(int year, int quarter, time_t *start, time_t *end);
/* The quarter holding time t (bureau's calendar). */
void aud_quarter_of(time_t t, int *year, int *quarter);
/* "2026-03-31" → that day's start in the bureau's calendar; false when not a real date. */
bool aud_date_start(const char *date, time_t *out);
/* The bureau's wall-clock time at t as "YYYY-MM-DDTHH:MM:SS+08:00". out: 32 bytes. */
void aud_local_fmt(time_t t, char out[32]);

/* Office hours: the weekdays (bit d: 0 Sunday .. 6 Saturday) and [start, end) minutes of the
 * bureau's day during which queries are ordinary. */
struct aud_office_hours {
  unsigned days;
  int start_min, end_min;
};
/* days "1-5" or "1,2,3,4,5" (ISO: 1 Monday .. 7 Sunday); hours "08:00-18:00". */
bool aud_office_hours_parse(const char *days, const char *hours, struct aud_office_hours *out);
bool aud_office_hours_contains(const struct aud_office_hours *oh, time_t t);
json_t *aud_office_hours_json(const struct aud_office_hours *oh);

/* What a quarterly review is generated from: events as {"index": N, "event": {...}} (the
 * canonical events of the log, with their source), each list in index order. */
struct aud_review_in {
  int year, quarter;
  time_t start, end;
  const struct aud_office_hours *office;
  /* bli_query.executed / bli_query.failed / query_request.use_consumed / use_released from a
   * day before min(start, end - 90 days) to a day after end */
  const json_t *usage;
  /* query_request.decided and external_application.accepted in the quarter */
  const json_t *approvals;
  /* query_request.submitted / use_consumed / use_released of the approved requests, any time */
  const json_t *request_events;
  /* accounts' grants.changed, grants.suspended, account.updated, account.deactivated and
   * permission_admin.handover before end */
  const json_t *permissions;
};
/* The review's body (without header fields the caller adds): queries, permission_changes,
 * unused_grants (last_used_at null: the caller looks up uses before the 90 days), anomalies,
 * reconciliation, summary. */
json_t *aud_review_build(const struct aud_review_in *in);

/* The event types a review reads and the one service trusted to emit each. NULL when the type
 * is not one of them. */
const char *aud_review_source_of(const char *type);

/* The reproducible draw of an inspection's sample: the k events whose
 * SHA-256(seed || ":" || event_id) (hex) are smallest; out gets their positions in ids, in
 * ascending order (log order). Returns how many were written (min(n, k)). */
size_t aud_sample_draw(const char *seed, const char *const *ids, size_t n, size_t k, size_t *out);

#endif
