/* The accounts service's SQL: every statement it runs, prepared once per connection, and the
 * row → JSON helpers. Times go in as parameters from the service clock (bg_now). */
#include "acct.h"
#include "bligate/events.h"
#include "bligate/idempotency.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* Account columns, in the order acct_account_json reads them. */
#define ACOLS                                                                                            \
  "a.id, a.name, a.national_id, a.unit_id, a.title, array_to_json(a.roles), a.phone, a.email, "          \
  "a.egov_account, a.status, " TS("a.created_at") ", " TS("a.updated_at")
#define UCOLS "u.id, u.code, u.name, u.kind, u.parent_id, " TS("u.created_at")
/* Permission application columns, in the order acct_application_json reads them. */
#define PACOLS                                                                                            \
  "p.id, p.form_no, p.applicant_id, p.type, array_to_json(p.items), p.other_text, p.reason, p.pdpa_read, "  \
  "p.environment_ready, p.target_unit_id, p.unit_id, p.unit_name, p.title, p.name, p.national_id, p.phone, " \
  "p.email, p.egov_account, p.state, p.round, p.effective_date::text, " TS("p.created_at") ", "            \
  TS("p.updated_at") ", " TS("p.closed_at")
/* Grant columns; status is computed against the bureau's date $today, so a grant becomes active
 * on its effective date without anyone acting. */
#define GCOLS                                                                                             \
  "g.id, g.item, CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked' WHEN g.suspended_at IS NOT NULL"        \
  " THEN 'suspended' WHEN g.effective_date > $2::date THEN 'pending' ELSE 'active' END, g.application_id, " \
  "g.effective_date::text, " TS("g.granted_at") ", " TS("g.suspended_at") ", g.suspension_reason, "        \
  TS("g.revoked_at") ", g.revocation_reason"
#define CCOLS                                                                                            \
  "c.id, c.account_id, c.subject_cn, c.serial, c.issuer, c.fingerprint_sha256, " TS("c.not_before") ", " \
  TS("c.not_after") ", c.status, " TS("c.created_at")

const struct bg_db_stmt acct_stmts[] = {
  BG_OUTBOX_STMT,
  BG_IDEM_STMTS,
  /* units */
  {"unit_insert", "INSERT INTO units AS u (id, code, name, kind, parent_id, created_at)"
                  " VALUES ($1, $2, $3, $4, $5, $6) RETURNING " UCOLS},
  {"unit_get", "SELECT " UCOLS " FROM units u WHERE u.id = $1"},
  {"unit_by_code", "SELECT " UCOLS " FROM units u WHERE u.code = $1"},
  {"unit_list", "SELECT " UCOLS " FROM units u WHERE ($1::timestamptz IS NULL OR (u.created_at, u.id) > ($1, $2::uuid))"
                " ORDER BY u.created_at, u.id LIMIT $3"},
  /* accounts */
  {"account_insert", "INSERT INTO accounts AS a (id, name, national_id, unit_id, title, roles, phone, email, egov_account,"
                     " created_at, updated_at) SELECT $1, $2, $3, $4, $5,"
                     " ARRAY(SELECT json_array_elements_text($6::json)), $7, $8, $9, $10, $10 RETURNING " ACOLS},
  {"account_get", "SELECT " ACOLS " FROM accounts a WHERE a.id = $1"},
  /* the account row locked: a decision on its application, a change of the account and a
   * suspension of its grants happen one after another, each seeing the other's result */
  {"account_get_lock", "SELECT " ACOLS " FROM accounts a WHERE a.id = $1 FOR UPDATE"},
  {"account_list", "SELECT " ACOLS " FROM accounts a"
                   " WHERE ($1::uuid IS NULL OR a.unit_id = $1) AND ($2::text IS NULL OR a.status = $2)"
                   " AND ($3::text IS NULL OR $3 = ANY (a.roles))"
                   " AND ($4::timestamptz IS NULL OR (a.created_at, a.id) > ($4, $5::uuid))"
                   " ORDER BY a.created_at, a.id LIMIT $6"},
  {"account_update", "UPDATE accounts a SET name = COALESCE($2, a.name), unit_id = COALESCE($3::uuid, a.unit_id),"
                     " title = COALESCE($4, a.title),"
                     /* not COALESCE(ARRAY(...)): the ARRAY of no roles sent is {}, not NULL, and a
                      * change of phone number took every role away */
                     " roles = CASE WHEN $5::json IS NULL THEN a.roles ELSE ARRAY(SELECT json_array_elements_text($5::json)) END,"
                     " phone = COALESCE($6, a.phone), email = COALESCE($7, a.email),"
                     " egov_account = COALESCE($8, a.egov_account), updated_at = $9"
                     " WHERE a.id = $1 RETURNING " ACOLS},
  {"account_deactivate", "UPDATE accounts a SET status = 'inactive', deactivated_at = $3, deactivation_reason = $2,"
                         " updated_at = $3 WHERE a.id = $1 AND a.status = 'active' RETURNING " ACOLS},
  /* serialises logins of one account, so superseding the older session cannot race */
  {"account_lock", "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE"},
  {"admin_current", "SELECT id FROM accounts WHERE status = 'active' AND 'permission_admin' = ANY (roles) FOR UPDATE"},
  {"admin_exists", "SELECT 1 FROM accounts WHERE status = 'active' AND 'permission_admin' = ANY (roles)"},
  /* certificates */
  {"cert_insert", "INSERT INTO certificates AS c (id, account_id, fingerprint_sha256, serial, issuer, subject_cn,"
                  " not_before, not_after, pem, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                  " RETURNING " CCOLS},
  {"cert_list", "SELECT " CCOLS " FROM certificates c WHERE c.account_id = $1 ORDER BY c.created_at, c.id"},
  {"cert_disable", "UPDATE certificates c SET status = 'disabled', disabled_at = COALESCE(c.disabled_at, $3)"
                   " WHERE c.id = $1 AND c.account_id = $2 RETURNING c.status"},
  {"certs_disable_account", "UPDATE certificates SET status = 'disabled', disabled_at = $2"
                            " WHERE account_id = $1 AND status = 'active'"},
  /* challenges: issued here, consumed atomically by login_begin */
  {"challenge_insert", "INSERT INTO challenges (id, nonce, created_at, expires_at) VALUES ($1, $2, $3, $4)"},
  {"challenge_purge", "DELETE FROM challenges WHERE expires_at < $1::timestamptz - interval '1 hour'"},
  /* A login's first round trip ($1 challenge, $2 now, $3 certificate fingerprint or NULL, $4
   * client address, $5 start of the throttling window): the challenge consumed (one nonce,
   * one try, committed whatever follows), its earlier state when it was not, the failures of
   * the certificate and the address in the window, and the certificate with its account.
   * Columns: LB_* in h_auth.c. The LEFT JOIN reads the challenge as it was before this
   * statement's UPDATE (one snapshot). */
  {"login_begin",
   "WITH c AS (UPDATE challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2"
   " RETURNING nonce)"
   " SELECT (SELECT nonce FROM c), ch.id IS NOT NULL, ch.used_at IS NOT NULL, ch.expires_at <= $2,"
   " fc.n, " TS("fc.oldest") ", fa.n, " TS("fa.oldest") ", k.id, k.status, " ACOLS
   " FROM (SELECT 1) one LEFT JOIN challenges ch ON ch.id = $1"
   " CROSS JOIN LATERAL (SELECT count(*) AS n, min(at) AS oldest FROM login_failures"
   "  WHERE fingerprint = $3 AND at > $5) fc"
   " CROSS JOIN LATERAL (SELECT count(*) AS n, min(at) AS oldest FROM login_failures"
   "  WHERE client_addr = $4 AND at > $5) fa"
   " LEFT JOIN certificates k ON k.fingerprint_sha256 = $3 LEFT JOIN accounts a ON a.id = k.account_id"},
  /* the same for the certificate alone, once a CMS signature has named it */
  {"login_cert",
   "SELECT NULL, true, false, false, fc.n, " TS("fc.oldest") ", 0, NULL, k.id, k.status, " ACOLS
   " FROM (SELECT count(*) AS n, min(at) AS oldest FROM login_failures WHERE fingerprint = $1 AND at > $2) fc"
   " LEFT JOIN certificates k ON k.fingerprint_sha256 = $1 LEFT JOIN accounts a ON a.id = k.account_id"},
  /* A successful login in one statement ($1 session, $2 account, $3 certificate, $4 now, $5
   * expiry, $6 address, $7/$8 the auth.login event): the account's live session ends
   * (superseded; rule 3), the new one starts, and the login event, naming the session it
   * ended in details.superseded_session_id, goes to the outbox. The INSERT reads from `old`,
   * so the older session has ended before the new one is inserted; two concurrent logins of
   * one account collide on sessions_one_live, and the loser is run again (h_auth.c) and
   * supersedes the winner. */
  {"login_finish",
   "WITH old AS (UPDATE sessions SET ended_at = $4, end_reason = 'superseded'"
   "  WHERE account_id = $2 AND ended_at IS NULL RETURNING id),"
   " ins AS (INSERT INTO sessions (id, account_id, certificate_id, created_at, last_seen_at, expires_at, client_addr)"
   "  SELECT $1::uuid, $2, $3::uuid, $4, $4, $5::timestamptz, $6 FROM (SELECT count(*) FROM old) o RETURNING id),"
   " ev AS (INSERT INTO outbox (event_id, event)"
   "  SELECT $7::uuid, CASE WHEN o.id IS NULL THEN $8::jsonb"
   "   ELSE jsonb_set($8::jsonb, '{details,superseded_session_id}', to_jsonb(o.id::text)) END"
   "  FROM ins LEFT JOIN (SELECT id FROM old LIMIT 1) o ON true RETURNING 1)"
   " SELECT count(*) FROM ev"},
  /* a refused login: recorded for throttling and the audit log in one statement */
  {"login_failed",
   "WITH f AS (INSERT INTO login_failures (fingerprint, client_addr, code, at) VALUES ($1, $2, $3, $4))"
   " INSERT INTO outbox (event_id, event) VALUES ($5::uuid, $6::jsonb)"},
  /* failures older than any throttling window */
  {"failures_purge", "DELETE FROM login_failures WHERE at < $1::timestamptz - interval '1 day'"},
  /* sessions past their absolute expiry by the retention ($1 the cutoff), a batch at a time
   * along their index */
  {"sessions_purge", "DELETE FROM sessions WHERE id IN"
                     " (SELECT id FROM sessions WHERE expires_at < $1::timestamptz ORDER BY expires_at LIMIT 1000)"},
  /* sessions */
  /* One read per authenticated request: the session, its account and unit, as plain columns
   * (SESS_* in acct.h). Read-only and without expressions: PostgreSQL's executor start-up is
   * most of the cost of a small query, and every column expression or data-modifying CTE adds
   * to it. Liveness and times are worked out in C; last_seen is moved by session_touch, at
   * most every 5 s per session. */
  /* The unit of GET /v1/auth/me comes from acct_unit_cached: units never change once created
   * (no endpoint or statement updates them), so the join is not repeated per request. */
  {"session_check",
   "SELECT s.account_id, s.end_reason, s.ended_at, s.created_at, s.last_seen_at, s.expires_at, a.name,"
   " a.national_id, a.unit_id, a.title, a.roles, a.phone, a.email, a.egov_account, a.status, a.created_at,"
   " a.updated_at FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = $1"},
  {"session_end", "UPDATE sessions SET ended_at = $3, end_reason = $2 WHERE id = $1 AND ended_at IS NULL"
                  " RETURNING account_id"},
  {"session_touch", "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL AND last_seen_at < $2"},
  {"sessions_end_account", "UPDATE sessions SET ended_at = $3, end_reason = $2"
                           " WHERE account_id = $1 AND ended_at IS NULL RETURNING id"},
  /* the certificate that opened the session, checked again at each refresh */
  {"session_cert", "SELECT c.pem FROM sessions s JOIN certificates c ON c.id = s.certificate_id WHERE s.id = $1"},
  /* the account's ($3) live session, if that certificate opened it (sessions_one_live) */
  {"sessions_end_certificate", "UPDATE sessions SET ended_at = $2, end_reason = 'certificate_disabled'"
                               " WHERE account_id = $3 AND certificate_id = $1 AND ended_at IS NULL RETURNING id"},
  /* permission applications (Form 1): the applicant's details are copied at submission */
  {"pa_insert",
   "INSERT INTO permission_applications AS p (id, form_no, applicant_id, type, items, other_text, reason, pdpa_read,"
   " environment_ready, target_unit_id, unit_id, unit_name, title, name, national_id, phone, email, egov_account,"
   " state, created_at, updated_at)"
   " SELECT $1, 'F1-' || to_char($10::timestamptz AT TIME ZONE 'Asia/Taipei', 'YYYY') || '-'"
   "  || lpad(nextval('permission_form_no')::text, 6, '0'), a.id, $3, ARRAY(SELECT json_array_elements_text($4::json)),"
   "  $5, $6, $7, $8, $9, a.unit_id, u.name, a.title, a.name, a.national_id, a.phone, a.email, a.egov_account,"
   "  'pending_supervisor', $10, $10"
   " FROM accounts a JOIN units u ON u.id = a.unit_id WHERE a.id = $2 RETURNING " PACOLS},
  {"unit_kind", "SELECT kind FROM units WHERE id = $1"},
  {"pa_get", "SELECT " PACOLS " FROM permission_applications p WHERE p.id = $1"},
  {"pa_lock", "SELECT " PACOLS " FROM permission_applications p WHERE p.id = $1 FOR UPDATE"},
  {"pa_list", "SELECT " PACOLS " FROM permission_applications p"
              " WHERE ($1::text IS NULL OR p.state = $1) AND ($2::uuid IS NULL OR p.unit_id = $2)"
              " AND ($3::uuid IS NULL OR p.applicant_id = $3)"
              " AND ($4::timestamptz IS NULL OR (p.created_at, p.id) > ($4, $5::uuid))"
              " ORDER BY p.created_at, p.id LIMIT $6"},
  {"pa_set_state", "UPDATE permission_applications p SET state = $2, effective_date = COALESCE($3::date, effective_date),"
                   " updated_at = $4, closed_at = CASE WHEN $2 IN ('approved', 'rejected', 'withdrawn') THEN $4::timestamptz"
                   " END WHERE p.id = $1 RETURNING " PACOLS},
  {"pa_resubmit",
   "UPDATE permission_applications p SET items = ARRAY(SELECT json_array_elements_text($2::json)), other_text = $3,"
   " reason = $4, pdpa_read = $5, environment_ready = $6, target_unit_id = $7, unit_id = a.unit_id, unit_name = u.name,"
   " title = a.title, name = a.name, national_id = a.national_id, phone = a.phone, email = a.email,"
   " egov_account = a.egov_account, state = 'pending_supervisor', round = p.round + 1, updated_at = $8"
   " FROM accounts a JOIN units u ON u.id = a.unit_id WHERE p.id = $1 AND a.id = p.applicant_id RETURNING " PACOLS},
  /* whether $3 decided a step of the application's round $2 already */
  {"pa_decided_by", "SELECT 1 FROM permission_decisions WHERE application_id = $1 AND round = $2 AND decider_id = $3"},
  {"pa_decision_insert",
   "INSERT INTO permission_decisions (id, application_id, round, step, decider_id, decider_name, decider_title,"
   " decider_role, decision, comment, effective_date, decided_at)"
   " SELECT $1, $2, $3, $4, a.id, a.name, a.title, $6, $7, $8, $9::date, $10 FROM accounts a WHERE a.id = $5"},
  {"pa_decisions", "SELECT d.round, d.step, d.decider_id, d.decider_name, d.decider_title, d.decider_role, d.decision,"
                   " d.comment, d.effective_date::text, " TS("d.decided_at") " FROM permission_decisions d"
                   " WHERE d.application_id = $1 ORDER BY d.decided_at, d.round, d.step"},
  /* change of duties approved in advance for exactly the unit the account moves to */
  {"cod_advance", "SELECT " PACOLS " FROM permission_applications p WHERE p.applicant_id = $1"
                  " AND p.type = 'change_of_duties' AND p.state = 'approved' AND p.target_unit_id = $2"
                  " AND p.carried_over_at IS NULL ORDER BY p.closed_at DESC LIMIT 1 FOR UPDATE"},
  {"cod_used", "UPDATE permission_applications SET carried_over_at = $2 WHERE id = $1"},
  /* grants */
  /* the proxy's check before a query: the session (SESS_* columns as session_check, up to
   * the account's status), then the account's current grant of one item ($2): SITEM_* */
  {"session_item",
   "SELECT s.account_id, s.end_reason, s.ended_at, s.created_at, s.last_seen_at, s.expires_at, a.name,"
   " a.unit_id, a.roles, a.status, g.id, g.suspended_at, g.effective_date, g.application_id"
   " FROM sessions s JOIN accounts a ON a.id = s.account_id"
   " LEFT JOIN grants g ON g.account_id = s.account_id AND g.item = $2 AND g.revoked_at IS NULL WHERE s.id = $1"},
  {"grant_list", "SELECT " GCOLS " FROM grants g WHERE g.account_id = $1 ORDER BY g.item, g.granted_at"},
  {"grant_list_current", "SELECT " GCOLS " FROM grants g WHERE g.account_id = $1 AND g.revoked_at IS NULL"
                         " ORDER BY g.item"},
  /* Adds an item, or brings a suspended grant of it back under this application — except one
   * suspended by a change of unit or title, which only a change of duties brings back
   * (grant_put). False when the item's grant stays suspended so (the outer SELECT reads the
   * grants as they were before the INSERT). */
  {"grant_add", "WITH g AS (INSERT INTO grants (id, account_id, item, application_id, effective_date, granted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, item) WHERE revoked_at IS NULL"
                " DO UPDATE SET application_id = EXCLUDED.application_id, effective_date = EXCLUDED.effective_date,"
                " granted_at = EXCLUDED.granted_at, suspended_at = NULL, suspension_reason = NULL"
                " WHERE grants.suspended_at IS NOT NULL AND grants.suspension_reason IS DISTINCT FROM 'change-of-duties'"
                " RETURNING 1)"
                " SELECT EXISTS (SELECT 1 FROM g) OR NOT EXISTS (SELECT 1 FROM grants WHERE account_id = $2 AND item = $3"
                " AND revoked_at IS NULL AND suspended_at IS NOT NULL AND suspension_reason = 'change-of-duties')"},
  /* a change of duties: the item's grant rests on this application from its date, whatever
   * was held for the old duties (active, pending or suspended) */
  {"grant_put", "INSERT INTO grants (id, account_id, item, application_id, effective_date, granted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, item) WHERE revoked_at IS NULL"
                " DO UPDATE SET application_id = EXCLUDED.application_id, effective_date = EXCLUDED.effective_date,"
                " granted_at = EXCLUDED.granted_at, suspended_at = NULL, suspension_reason = NULL"},
  {"grants_revoke_except", "UPDATE grants SET revoked_at = $4, revocation_reason = $3 WHERE account_id = $1"
                           " AND revoked_at IS NULL AND NOT (item = ANY (ARRAY(SELECT json_array_elements_text($2::json))))"
                           " RETURNING item"},
  /* A change of unit also takes over a suspension already there (a querier role removed, a
   * corrective action): whatever suspended a grant before the move, only a change of duties for
   * the new unit brings it back (grant_add). */
  {"grants_suspend_all", "UPDATE grants SET suspended_at = coalesce(suspended_at, $3), suspension_reason = $2"
                         " WHERE account_id = $1 AND revoked_at IS NULL"
                         " AND (suspended_at IS NULL OR ($2 = 'change-of-duties' AND suspension_reason <> $2))"
                         " RETURNING item"},
  /* the permission administrator role changes hands in one transaction (rule 7) */
  {"role_remove", "UPDATE accounts SET roles = array_remove(roles, $2), updated_at = $3 WHERE id = $1 AND $2 = ANY (roles)"
                  " RETURNING id"},
  {"role_add", "UPDATE accounts SET roles = array_append(roles, $2), updated_at = $3 WHERE id = $1"
               " AND status = 'active' AND NOT ($2 = ANY (roles)) RETURNING id"},
  /* OAuth2 clients */
  {"client_get", "SELECT secret_hash, array_to_json(scopes), status FROM clients WHERE id = $1"},
  {"client_upsert", "INSERT INTO clients (id, secret_hash, scopes, created_at, updated_at)"
                    " VALUES ($1, $2, string_to_array($3, ' '), $4, $4) ON CONFLICT (id) DO UPDATE"
                    " SET secret_hash = EXCLUDED.secret_hash, scopes = EXCLUDED.scopes, status = 'active',"
                    " updated_at = EXCLUDED.updated_at"},
};
const size_t acct_nstmts = sizeof acct_stmts / sizeof acct_stmts[0];

static json_t *str_or_null(PGresult *res, int row, int col)
{
  return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

json_t *acct_account_json(PGresult *res, int row, int c0, bool full_id)
{
  char masked[11];
  const char *nid = PQgetvalue(res, row, c0 + 2);
  bg_twid_mask(nid, masked);
  json_t *roles = json_loads(PQgetvalue(res, row, c0 + 5), 0, NULL);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:s}", "id", PQgetvalue(res, row, c0 + 0),
                        "name", PQgetvalue(res, row, c0 + 1), "national_id_masked", masked, "unit_id",
                        PQgetvalue(res, row, c0 + 3), "title", PQgetvalue(res, row, c0 + 4), "roles",
                        roles ? roles : json_array(), "phone", str_or_null(res, row, c0 + 6), "email",
                        str_or_null(res, row, c0 + 7), "egov_account", str_or_null(res, row, c0 + 8), "status",
                        PQgetvalue(res, row, c0 + 9), "created_at", PQgetvalue(res, row, c0 + 10), "updated_at",
                        PQgetvalue(res, row, c0 + 11));
  if (full_id)
    json_object_set_new(o, "national_id", json_string(nid));
  return o;
}

/* Units by id, as Unit JSON. A unit row is written once (unit_insert) and never updated, so
 * an entry never goes stale; the table is small (the bureau's units), the cache is bounded. */
#define UNIT_CACHE 512
static struct {
  char id[BG_UUID_LEN];
  json_t *unit;
} unit_cache[UNIT_CACHE];
static int unit_cache_n;
static pthread_mutex_t unit_cache_mu = PTHREAD_MUTEX_INITIALIZER;

json_t *acct_unit_cached(struct bg_dbc *c, const char *unit_id)
{
  json_t *unit = NULL;
  pthread_mutex_lock(&unit_cache_mu);
  for (int i = 0; i < unit_cache_n && !unit; i++)
    if (strcmp(unit_cache[i].id, unit_id) == 0)
      unit = json_incref(unit_cache[i].unit);
  pthread_mutex_unlock(&unit_cache_mu);
  if (unit)
    return unit;
  const char *p[] = {unit_id};
  PGresult *res = bg_dbc_exec(c, "unit_get", 1, p, NULL);
  if (res && PQntuples(res) == 1 && strlen(unit_id) < BG_UUID_LEN) {
    unit = acct_unit_json(res, 0, 0);
    pthread_mutex_lock(&unit_cache_mu);
    if (unit_cache_n < UNIT_CACHE) {
      memcpy(unit_cache[unit_cache_n].id, unit_id, strlen(unit_id) + 1);
      unit_cache[unit_cache_n++].unit = json_incref(unit);
    }
    pthread_mutex_unlock(&unit_cache_mu);
  }
  PQclear(res);
  return unit;
}

json_t *acct_unit_json(PGresult *res, int row, int c0)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", PQgetvalue(res, row, c0), "code",
                   PQgetvalue(res, row, c0 + 1), "name", PQgetvalue(res, row, c0 + 2), "kind",
                   PQgetvalue(res, row, c0 + 3), "parent_id", str_or_null(res, row, c0 + 4), "created_at",
                   PQgetvalue(res, row, c0 + 5));
}

json_t *acct_cert_json(PGresult *res, int row)
{
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", PQgetvalue(res, row, 0), "account_id",
                   PQgetvalue(res, row, 1), "subject_cn", PQgetvalue(res, row, 2), "serial", PQgetvalue(res, row, 3),
                   "issuer", PQgetvalue(res, row, 4), "fingerprint_sha256", PQgetvalue(res, row, 5), "not_before",
                   PQgetvalue(res, row, 6), "not_after", PQgetvalue(res, row, 7), "status", PQgetvalue(res, row, 8),
                   "created_at", PQgetvalue(res, row, 9));
}

