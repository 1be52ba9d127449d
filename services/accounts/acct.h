/* The accounts service: units, staff accounts, citizen certificates, certificate login,
 * sessions and tokens (DESIGN.md §2). Shared declarations of its files. */
#ifndef ACCT_H
#define ACCT_H
#include "bligate/db.h"
#include "bligate/http.h"
#include "bligate/jwt.h"
#include "pki.h"
#include <jansson.h>
#include <openssl/evp.h>

struct acct_ctx {
  struct bg_db *db;
  struct acct_pki *pki;
  EVP_PKEY *jwt_key;
  char kid[48];
  struct bg_keyset *keys;
  const char *issuer, *audience;
  long access_ttl, idle_ttl, max_ttl, challenge_ttl;
  long session_retention_days; /* sessions are deleted this long after their absolute expiry */
  long fails_per_cert, fails_per_addr, fail_window;
};

extern struct acct_ctx acct;

/* routes.c */
extern const struct bg_route acct_routes[];
extern const size_t acct_nroutes;

/* db_accounts.c: statements and row helpers */
extern const struct bg_db_stmt acct_stmts[];
extern const size_t acct_nstmts;
/* Row of a statement selecting the account columns from column c0 → Account JSON.
 * full_id: include the unmasked national ID (only for the holder and the administrator). */
json_t *acct_account_json(PGresult *res, int row, int c0, bool full_id);
json_t *acct_unit_json(PGresult *res, int row, int c0);
/* A unit as Unit JSON (new reference), read once per process: units never change. NULL when
 * it cannot be read. */
json_t *acct_unit_cached(struct bg_dbc *c, const char *unit_id);
json_t *acct_cert_json(PGresult *res, int row);

/* Columns of the session_check statement (SESS_*; session_item shares the first six). */
enum {
  SESS_ACCOUNT_ID, SESS_END_REASON, SESS_ENDED_AT, SESS_CREATED_AT, SESS_LAST_SEEN_AT, SESS_EXPIRES_AT,
  SESS_NAME, SESS_NATIONAL_ID, SESS_UNIT_ID, SESS_TITLE, SESS_ROLES, SESS_PHONE, SESS_EMAIL, SESS_EGOV,
  SESS_STATUS, SESS_A_CREATED_AT, SESS_A_UPDATED_AT,
};
/* A session row read at `now`: reason is NULL when it is live, else "ended",
 * "account-inactive", "expired" or "idle" (checked in that order). */
struct acct_session {
  const char *account_id, *end_reason, *reason;
  time_t created, last_seen, expires;
};
/* Reads the first six SESS_ columns and the account status in column status_col. */
void acct_session_read(PGresult *res, int status_col, time_t now, struct acct_session *s);
/* The session is being used: moves last_seen to now when it is live and more than 5 s old
 * (so a busy client does not write on every call). */
void acct_session_touch(struct bg_dbc *c, const char *sid, struct acct_session *s, time_t now, const char *now_s);
/* A PostgreSQL text[] of plain words (role names) as a JSON array of strings. */
json_t *acct_text_array_json(const char *s);
/* Whether a JSON array of roles (an account's `roles` as the statements give it) holds role. */
bool acct_roles_has(const char *roles_json, const char *role);

/* h_auth.c */
/* Issues a user access token for a live session. */
char *acct_user_token(const char *account_id, const char *unit_id, json_t *roles, const char *session_id,
                      time_t session_expires, long *expires_in);
/* The router's auth hook: the session behind the token is live; touches last_seen. */
bool acct_session_hook(struct bg_request *r);

/* handlers */
void acct_h_challenges_post(struct bg_request *r);
void acct_h_sessions_post(struct bg_request *r);
void acct_h_sessions_refresh(struct bg_request *r);
void acct_h_sessions_delete(struct bg_request *r);
void acct_h_me(struct bg_request *r);
void acct_h_tokens(struct bg_request *r);
void acct_h_jwks(struct bg_request *r);
void acct_h_units_list(struct bg_request *r);
void acct_h_units_post(struct bg_request *r);
void acct_h_units_get(struct bg_request *r);
void acct_h_accounts_list(struct bg_request *r);
void acct_h_accounts_post(struct bg_request *r);
void acct_h_accounts_get(struct bg_request *r);
void acct_h_accounts_patch(struct bg_request *r);
void acct_h_accounts_deactivate(struct bg_request *r);
void acct_h_certs_list(struct bg_request *r);
void acct_h_certs_post(struct bg_request *r);
void acct_h_certs_delete(struct bg_request *r);
void acct_h_internal_session(struct bg_request *r);
void acct_h_internal_authz(struct bg_request *r);
/* h_internal_accounts.c: account and unit facts for other services (scope accounts:read) */
void acct_h_internal_account(struct bg_request *r);
void acct_h_internal_unit(struct bg_request *r);

/* permission applications and grants (issue 3) */
void acct_h_apps_post(struct bg_request *r);
void acct_h_apps_list(struct bg_request *r);
void acct_h_apps_get(struct bg_request *r);
void acct_h_apps_decide(struct bg_request *r);
void acct_h_apps_resubmit(struct bg_request *r);
void acct_h_apps_withdraw(struct bg_request *r);
void acct_h_grants_list(struct bg_request *r);
void acct_h_internal_grants(struct bg_request *r);
void acct_h_internal_grants_suspend(struct bg_request *r);
void acct_h_accounts_suspend(struct bg_request *r);
void acct_h_admin_handover(struct bg_request *r);

/* The hourly deletion of sessions past their retention (sessions_purge.c). */
struct bg_job;
struct bg_job *acct_sessions_purge_start(void);
void acct_sessions_purge_metrics(void *ctx, char **buf, size_t *len, size_t *cap);
json_t *acct_application_json(PGresult *res, int row, bool show_id);
/* The account moves to unit_id (PATCH, same transaction): a change of duties for that unit
 * approved in advance and not used yet takes effect now, as its approval would have had the
 * account been there — the grants become its items from its effective date, the others
 * revoked, with the grants.changed event — and is used up. *duties is the account.updated
 * event's change_of_duties ({grants: carried_over, application_id}), or NULL when there was no
 * such application. False on a database failure. */
bool acct_cod_carry_over(struct bg_request *r, struct bg_dbc *c, const char *account_id, const char *unit_id,
                         const char *now_s, json_t **duties);
/* Suspends every current grant (same transaction); the suspended items, or NULL on failure. */
json_t *acct_suspend_grants(struct bg_dbc *c, const char *account_id, const char *reason, const char *now_s);

/* Certificate problems shared by login and registration. */
enum bg_problem acct_cert_problem(enum acct_cert_err e);

/* clients.c: client secrets */
char *acct_secret_hash(const char *secret);
bool acct_secret_check(const char *secret, const char *stored);
/* A stored secret of no client, to check an unknown client's secret against at the same cost. */
const char *acct_secret_decoy(void);

/* Role names and unit kinds accepted by the API. */
extern const char *const acct_role_names[];
extern const char *const acct_unit_kinds[];

#endif
