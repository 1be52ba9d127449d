/* The workflow service: the legal-basis catalogue, query registrations (Form 2) approved
 * before any query, and external applications (Form 3) reviewed by the business unit
 * (rules 4 and 5; DESIGN.md §3). Shared declarations of its files. */
#ifndef WF_H
#define WF_H
#include "bligate/db.h"
#include "bligate/http.h"
#include <jansson.h>
#include <stdbool.h>

struct bg_svc;

struct wf_ctx {
  struct bg_db *db;
  struct bg_svc *svc;
  const char *accounts_url;
  long window_days; /* default usable window of an approved request (BLIGATE_REQUEST_WINDOW_DAYS) */
};

extern struct wf_ctx wf;

/* routes.c */
extern const struct bg_route wf_routes[];
extern const size_t wf_nroutes;

/* db_workflow.c */
extern const struct bg_db_stmt wf_stmts[];
extern const size_t wf_nstmts;

/* Column positions of the statements that select a query request (QRCOLS). */
enum { QR_ID, QR_NO, QR_STATE, QR_UNIT, QR_QUERIER, QR_QUERIER_NAME, QR_REQUESTER, QR_REQUESTER_NAME,
       QR_REQUESTER_UNIT, QR_SUBMITTED_BY, QR_LB_ID, QR_LB_CODE, QR_LB_NAME, QR_ARTICLE, QR_RELEVANCE, QR_CASE,
       QR_MAX_USES, QR_DECIDER_ROLE, QR_DECISION, QR_DECIDED_BY, QR_DECIDER_NAME, QR_DECIDED_AT, QR_REASON,
       QR_VALID_FROM, QR_VALID_UNTIL, QR_CANCELLED_BY, QR_CANCELLED_AT, QR_CANCEL_REASON, QR_EXTERNAL,
       QR_SUBJECTS, QR_USED, QR_TOTAL, QR_CREATED, QR_UPDATED };
/* Column positions of the statements that select an external application (EACOLS). */
enum { EA_ID, EA_NO, EA_STATE, EA_CLOSE_REASON, EA_APPLICANT, EA_APPLICANT_NAME, EA_APPLICANT_UNIT,
       EA_APPLICANT_TITLE, EA_PHONE, EA_FAX, EA_TARGET, EA_LB_ID, EA_LB_CODE, EA_LB_NAME, EA_ARTICLE, EA_RELEVANCE,
       EA_CASE, EA_SUBJECTS, EA_ENDORSEMENT, EA_ENDORSED_BY, EA_ENDORSER_NAME, EA_ENDORSED_AT, EA_ENDORSE_COMMENT,
       EA_REVIEW, EA_REVIEWED_BY, EA_REVIEWER_NAME, EA_REVIEWED_AT, EA_REVIEW_REASON, EA_REVIEW_OPINION,
       EA_QUERIER, EA_QUERIER_NAME, EA_QR_ID, EA_QR_NO, EA_QR_STATE, EA_QR_VALID_UNTIL, EA_CREATED, EA_UPDATED,
       EA_CLOSED };

json_t *wf_col(PGresult *res, int row, int col); /* string or null */
json_t *wf_legal_basis_json(PGresult *res, int row);
json_t *wf_request_json(PGresult *res, int row);
json_t *wf_application_json(PGresult *res, int row);

/* accounts.c: what the accounts service knows, over its internal API (workflow's client
 * token). Each returns the HTTP status it got (0 = unreachable) and the JSON body. */
long wf_account_get(struct bg_request *r, const char *id, json_t **out);
long wf_unit_get(struct bg_request *r, const char *id, json_t **out);
long wf_grants_get(struct bg_request *r, const char *id, json_t **out);
bool wf_has_role(const json_t *account, const char *role);
/* Refuses (422 requester-invalid, its detail naming `who`; 503 when accounts cannot say) when the person a
 * request is for — Form 2's requester, Form 3's applicant — is no longer an active account: one
 * who has left gets no data, whichever step comes after their leaving. Returns false after replying. */
bool wf_check_requester_active(struct bg_request *r, const char *id, const char *who);
/* Refuses (422 querier-invalid; 503 when accounts cannot say) when the querier named on a
 * request is no longer an active querier of its unit (left, lost the role, moved): an approval
 * would give a registration nobody may use. Returns false after replying. */
bool wf_check_querier_of_unit(struct bg_request *r, const char *id, const char *unit_id);
bool wf_is_active(const json_t *account);
const char *wf_str(const json_t *obj, const char *key);

/* subjects.c: the subjects of a form (pure: JSON in, JSON out, no database or HTTP). */
enum wf_subjects_result { WF_SUBJECTS_OK, WF_SUBJECTS_UNKNOWN_FIELD, WF_SUBJECTS_INVALID, WF_SUBJECTS_ITEM_UNKNOWN };
/* Checks each {name, national_id, items} (errors named subjects[i].field) and that no ID
 * repeats; on success *items is the union of every subject's items, in catalogue order. */
enum wf_subjects_result wf_subjects_check(const json_t *subjects, json_t *errors, json_t **items);
/* The characters of s (valid UTF-8) that show: letters, digits, punctuation and symbols, not
 * white space, format characters, variation selectors, blank fillers or lone combining marks.
 * Wherever a field must say something (rule 5), a value with none of these is blank. */
size_t wf_visible_chars(const char *s);
/* Items of `wanted` (array of codes) absent from `have` (array of codes), in wanted's order. */
json_t *wf_items_missing(const json_t *wanted, const json_t *have);
/* The items whose grant is active in an internal grants reply. */
json_t *wf_active_items(const json_t *grants);

/* crypt.c: national IDs at rest (AES-256-GCM bound to the ID's HMAC). */
void wf_crypt_init(void);
char *wf_seal(const char *national_id, const char *id_hmac);
char *wf_open(const char *sealed, const char *id_hmac);

/* forms.c: what both forms' handlers share */
/* Replies 422 legal-basis-required (errors[] naming each field) when the legal basis, the
 * article or the relevance is missing, or the relevance is under 15 characters; returns false. */
bool wf_check_legal_statement(struct bg_request *r, const char *legal_basis_id, const char *article,
                              const char *relevance);
/* Replies 400 validation-failed (case_reference: required) and returns false when a case
 * reference is given but blank (nothing in it shows); NULL passes (Form 3's is optional). */
bool wf_check_case_reference(struct bg_request *r, const char *case_reference);
/* Checks the subjects array; replies (unknown-field / validation-failed / item-unknown) and
 * returns NULL when it is refused, else the union of the items wanted. */
json_t *wf_parse_subjects(struct bg_request *r, const json_t *subjects);
/* Reads the legal basis and refuses items it does not cover (422 legal-basis-unknown,
 * item-not-covered-by-legal-basis). Returns false after replying. Uses its own connection. */
bool wf_check_coverage(struct bg_request *r, const char *legal_basis_id, const json_t *items);
/* Refuses (422 items-not-granted, 503 when accounts cannot say) when the querier lacks an
 * active grant for an item today. */
bool wf_check_grants(struct bg_request *r, const char *querier_id, const json_t *items);
/* [{name, id_hmac, id_masked, id_enc, items}] for storing; NULL when sealing failed. */
json_t *wf_seal_subjects(const json_t *subjects);
/* [{id_hmac, id_masked}] for an event's "subjects". */
json_t *wf_event_subjects(const json_t *sealed);
/* Subject rows (qs_list / eas_list columns: id, seq, name, id_masked, id_enc, id_hmac, items
 * [, uses]) → JSON; full: open and include the national ID. NULL if an ID does not open. */
json_t *wf_subjects_json(PGresult *res, bool full, bool with_uses);
/* Whether someone read full national IDs: an audit event in its own transaction. */
bool wf_record_disclosure(struct bg_request *r, struct bg_dbc *c, const char *kind, const char *id,
                          PGresult *subjects);

struct wf_new_request {
  const char *id, *unit_id, *querier_id, *querier_name, *requester_id, *requester_name, *requester_unit_id,
    *submitted_by, *legal_basis_id, *article, *relevance, *case_reference, *decider_role,
    *external_application_id, *now;
  int max_uses, subject_count;
};
/* Inserts the request row (subjects and uses are added by the caller's statements). */
bool wf_insert_request_row(struct bg_dbc *c, const struct wf_new_request *q);
/* Who decides a request: the Director when the querier, or a requester of the querier's own
 * unit, is a supervisor (nobody approves their own), else the unit's supervisor. */
const char *wf_decider_role(const json_t *querier, const json_t *requester);
/* The caller's current account facts (an active account), or reply and NULL. */
json_t *wf_caller(struct bg_request *r);
/* The account id (active), or NULL after replying (account-inactive, or 503). */
json_t *wf_account_active(struct bg_request *r, const char *id);
/* The dependency-unavailable reply for a failed internal call. */
void wf_reply_accounts_down(struct bg_request *r, long status);
/* The Director, the ethics officer and the permission administrator oversee every form. */
bool wf_is_overseer(struct bg_request *r);
/* Parses the from/to date filters (YYYY-MM-DD, the bureau's days); replies and returns false
 * when malformed. */
bool wf_date_filters(struct bg_request *r, const char **from, const char **to);
/* Parses a UUID query parameter (NULL when absent); replies and returns false when malformed. */
bool wf_uuid_query(struct bg_request *r, const char *name, const char **out);

/* handlers */
void wf_h_legal_bases_list(struct bg_request *r);
void wf_h_legal_bases_post(struct bg_request *r);
void wf_h_legal_bases_get(struct bg_request *r);
void wf_h_requests_post(struct bg_request *r);
void wf_h_requests_list(struct bg_request *r);
void wf_h_requests_get(struct bg_request *r);
void wf_h_requests_decide(struct bg_request *r);
void wf_h_requests_cancel(struct bg_request *r);
void wf_h_consume(struct bg_request *r);
void wf_h_release(struct bg_request *r);
void wf_h_apps_post(struct bg_request *r);
void wf_h_apps_list(struct bg_request *r);
void wf_h_apps_get(struct bg_request *r);
void wf_h_apps_endorse(struct bg_request *r);
void wf_h_apps_review(struct bg_request *r);
void wf_h_apps_results(struct bg_request *r);

#endif
