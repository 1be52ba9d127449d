/* Oversight (issue 7, rules 7-9): the handlers of quarterly reviews, inspections (Form 4),
 * corrective actions and subject-access reports, and what they share (ov_common.c,
 * db_oversight.c). The pure arithmetic is in oversight.h. */
#ifndef AUD_OV_H
#define AUD_OV_H
#include "aud.h"
#include "oversight.h"

struct aud_ov_cfg {
  struct aud_office_hours office;
  int review_from_year, review_from_quarter; /* 0: the quarter of the log's first event */
  long sample_size;                          /* default sample of an inspection */
};
extern struct aud_ov_cfg aud_ov;
/* Reads BLIGATE_AUDIT_OFFICE_DAYS, BLIGATE_AUDIT_OFFICE_HOURS, BLIGATE_AUDIT_REVIEWS_FROM and
 * BLIGATE_AUDIT_SAMPLE_SIZE; exits 2 naming a bad one. */
void aud_ov_config(void);

extern const struct bg_db_stmt aud_ov_stmts[];
extern const size_t aud_ov_nstmts;

/* Column order of the statements' rows (db_oversight.c). */
enum {
  OV_QR_ID, OV_QR_YEAR, OV_QR_QUARTER, OV_QR_STATE, OV_QR_VERSION, OV_QR_START, OV_QR_END, OV_QR_DUE, OV_QR_SIZE,
  OV_QR_ROOT, OV_QR_SHA, OV_QR_SUMMARY, OV_QR_GEN_BY, OV_QR_GEN_AT, OV_QR_SIGNED_BY, OV_QR_SIGNED_NAME,
  OV_QR_SIGNED_AT, OV_QR_SUB_BY, OV_QR_SUB_AT, OV_QR_REF, OV_QR_CREATED, OV_QR_REPORT
};
enum {
  OV_IN_ID, OV_IN_NO, OV_IN_STATE, OV_IN_QUERIER_ID, OV_IN_QUERIER, OV_IN_QUNIT_ID, OV_IN_QUNIT, OV_IN_FROM, OV_IN_TO,
  OV_IN_DATE, OV_IN_AUNIT_ID, OV_IN_AUNIT, OV_IN_APHONE, OV_IN_AUDITORS, OV_IN_DUE, OV_IN_SAMPLE, OV_IN_SEED,
  OV_IN_SIZE, OV_IN_ROOT, OV_IN_POPULATION, OV_IN_OPINION, OV_IN_OPINION_BY, OV_IN_OPINION_AT, OV_IN_DIRECTOR,
  OV_IN_CREATED_BY, OV_IN_CREATED, OV_IN_UPDATED
};
enum {
  OV_CASE_NO, OV_CASE_INDEX, OV_CASE_EVENT, OV_CASE_QUERY, OV_CASE_AT, OV_CASE_ITEM, OV_CASE_REQUEST, OV_CASE_REG,
  OV_CASE_SUBJECT, OV_CASE_PURPOSE, OV_CASE_REF, OV_CASE_EXPLANATION, OV_CASE_RESPONDED, OV_CASE_LATE, OV_CASE_FINDING,
  OV_CASE_NOTE, OV_CASE_FOUND_BY, OV_CASE_FOUND_AT
};
enum {
  OV_CA_ID, OV_CA_INSPECTION, OV_CA_CASE, OV_CA_ACCOUNT, OV_CA_UNIT, OV_CA_NOTE, OV_CA_STATE, OV_CA_OPENED_BY,
  OV_CA_OPENED, OV_CA_DUE, OV_CA_SUSPENSION, OV_CA_SUSPENDED_AT, OV_CA_SUSPENDED_ITEMS, OV_CA_REPORT,
  OV_CA_REPORTED_BY, OV_CA_REPORTED_AT, OV_CA_CLOSE_NOTE, OV_CA_CLOSED_BY, OV_CA_CLOSED_AT, OV_CA_INSPECTION_NO,
  OV_CA_AUDITORS
};
enum {
  OV_SAR_ID, OV_SAR_MASKED, OV_SAR_REF, OV_SAR_RECEIVED, OV_SAR_DUE, OV_SAR_SIZE, OV_SAR_COUNT, OV_SAR_BY,
  OV_SAR_CREATED, OV_SAR_EXT_BY, OV_SAR_EXT_AT, OV_SAR_EXT_REASON, OV_SAR_REPORT,
  OV_SAR_HMAC = OV_SAR_REPORT /* ov_sar_lock has the subject's HMAC where ov_sar_get has the report */
};
/* A column as a JSON string or null; parsed JSON text (or null); an integer (0 for NULL). */
json_t *aud_ov_col(PGresult *res, int row, int col);
json_t *aud_ov_col_json(PGresult *res, int row, int col);
json_int_t aud_ov_col_int(PGresult *res, int row, int col);

/* Appends one event the audit service records itself, inside the caller's transaction on c
 * (under the log's writer lock): the state change and its event commit together or not at
 * all. Steals ev. */
bool aud_append_own_tx(struct bg_dbc *c, json_t *ev, const char *request_id);
/* The latest signed tree head, after signing the current state if no head covers it yet, so
 * that what the caller reads next is anchored. NULL on a database failure. */
json_t *aud_anchor(struct bg_dbc *c);

/* Facts about an account or unit from accounts (GET /internal/accounts/{id}, /internal/units/{id},
 * scope accounts:read): the JSON, or NULL with *status the HTTP status (404: none; 0 or 5xx:
 * accounts unreachable). */
json_t *aud_account_get(struct bg_request *r, const char *id, long *status);
json_t *aud_unit_get(struct bg_request *r, const char *id, long *status);

/* The record named by path parameter 0 (statement get, or lock inside a new transaction on c
 * when lock) if can_see lets the caller see it; NULL after replying: 404 "no such <what>" for
 * one that is missing or hidden alike, so that its existence is not told. */
PGresult *aud_ov_fetch(struct bg_request *r, struct bg_dbc *c, const char *get, const char *lock_stmt, bool lock,
                       bool (*can_see)(const struct bg_request *, PGresult *), const char *what);

bool aud_has_any_role(const struct bg_request *r, const char *const *roles);
/* Oversight readers: the permission administrator, IT staff, the Ethics Office, the Director. */
bool aud_is_overseer(const struct bg_request *r);

void aud_h_reviews_post(struct bg_request *r);
void aud_h_reviews_list(struct bg_request *r);
void aud_h_reviews_get(struct bg_request *r);
void aud_h_reviews_sign(struct bg_request *r);
void aud_h_reviews_submit(struct bg_request *r);
void aud_h_reviews_export(struct bg_request *r);
void aud_h_quarters(struct bg_request *r);
void aud_reviews_metrics(void *ctx, char **buf, size_t *len, size_t *cap);

void aud_h_inspections_post(struct bg_request *r);
void aud_h_inspections_list(struct bg_request *r);
void aud_h_inspections_get(struct bg_request *r);
void aud_h_inspections_responses(struct bg_request *r);
void aud_h_inspections_findings(struct bg_request *r);
void aud_h_inspections_signoffs(struct bg_request *r);
void aud_h_inspections_director(struct bg_request *r);

void aud_h_corrective_list(struct bg_request *r);
void aud_h_corrective_get(struct bg_request *r);
void aud_h_corrective_report(struct bg_request *r);
void aud_h_corrective_close(struct bg_request *r);
void aud_h_corrective_suspend(struct bg_request *r);
void aud_corrective_metrics(void *ctx, char **buf, size_t *len, size_t *cap);
/* After a breach finding committed: asks accounts to suspend the querier's grants for the
 * corrective action and records the outcome (event included). Returns the action's suspension
 * state ("done" or "failed"). */
const char *aud_corrective_apply_suspension(struct bg_request *r, struct bg_dbc *c, const char *ca_id);
/* A corrective action row (ov_ca_*) as JSON. */
json_t *aud_ca_json(PGresult *res, int row);

void aud_h_sar_post(struct bg_request *r);
void aud_h_sar_list(struct bg_request *r);
void aud_h_sar_get(struct bg_request *r);
void aud_h_sar_extend(struct bg_request *r);

#endif
