/* The oversight handlers' SQL (prepared once per connection, with the log's statements): reads
 * of the log for reports and samples, and the working tables of reviews, inspections,
 * corrective actions and subject-access reports (sql/0003_oversight.sql). Times come in as
 * parameters from the service clock. */
#include "bligate/idempotency.h"
#include "ov.h"
#include <stdlib.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* quarterly_reviews q: see OV_QR_* in ov.h for the column order */
#define QRCOLS                                                                                                    \
  "q.id, q.year, q.quarter, q.state, q.version, " TS("q.period_start") ", " TS("q.period_end") ", " TS(         \
    "q.due_at") ", q.tree_size, q.root_hash, q.report_sha256, q.summary::text, q.generated_by, " TS(            \
    "q.generated_at") ", q.signed_by, q.signed_by_name, " TS("q.signed_at") ", q.submitted_by, " TS(            \
    "q.submitted_at") ", q.reference_no, " TS("q.created_at")

/* inspections i: OV_IN_* */
#define INCOLS                                                                                                   \
  "i.id, i.inspection_no, i.state, i.querier_id, i.querier::text, i.querier_unit_id, i.querier_unit::text,"      \
  " i.period_from::text, i.period_to::text, i.audit_date::text, i.auditing_unit_id, i.auditing_unit::text,"      \
  " i.auditing_unit_phone, i.auditors::text, " TS("i.documents_due_at") ", i.sample_size, i.seed, i.tree_size,"  \
  " i.root_hash, i.population, i.opinion, i.opinion_by, " TS("i.opinion_at") ", i.director_review::text,"        \
  " i.created_by, " TS("i.created_at") ", " TS("i.updated_at")

/* inspection_cases: OV_CASE_* */
#define CASECOLS                                                                                                 \
  "c.case_no, c.event_index, c.event_id, c.query_id, " TS("c.queried_at") ", c.item, c.request_id,"             \
  " c.registration_no, c.subject_masked, c.purpose::text, c.case_reference, c.explanation, " TS(            \
    "c.responded_at") ", c.response_late, c.finding, c.finding_note, c.found_by, " TS("c.found_at")

/* corrective_actions a: OV_CA_* */
#define CACOLS                                                                                                   \
  "a.id, a.inspection_id, a.case_no, a.account_id, a.unit_id, a.finding_note, a.state, a.opened_by, " TS(       \
    "a.opened_at") ", " TS("a.due_at") ", a.suspension_state, " TS("a.suspended_at") ", a.suspended_items::text," \
  " a.report, a.reported_by, " TS("a.reported_at") ", a.close_note, a.closed_by, " TS("a.closed_at")            \
  ", i.inspection_no, array_to_json(i.auditor_ids)::text"

/* subject_access_reports s: OV_SAR_* */
#define SARCOLS                                                                                                  \
  "s.id, s.id_masked, s.reference, s.received_on::text, s.due_on::text, s.tree_size, s.access_count,"           \
  " s.requested_by, " TS("s.created_at") ", s.extended_by, " TS("s.extended_at") ", s.extension_reason"

/* "after the cursor" for lists ordered by (created_at, id) */
#define AFTER(ts, id, n1, n2) "($" #n1 "::timestamptz IS NULL OR (" ts ", " id ") > ($" #n1 "::timestamptz, $" #n2 "::uuid))"

const struct bg_db_stmt aud_ov_stmts[] = {
  BG_IDEM_STMTS,
  /* ---- the log ---- */
  {"ov_ev_types", "SELECT idx, canonical FROM events WHERE type = ANY($1::text[]) AND time >= $2 AND time < $3"
                  " AND idx < $4 ORDER BY idx"},
  /* the last query of a querier for an item before a time (the actor index) */
  {"ov_last_use", "SELECT " TS("max(time)") " FROM events WHERE actor_id = $1 AND type = 'bli_query.executed'"
                  " AND source = 'bliproxy' AND time < $2 AND idx < $3"
                  " AND canonical::jsonb -> 'details' ->> 'item' = $4"},
  {"ov_first_event", "SELECT " TS("received_at") " FROM events WHERE idx = 0"},
  /* an inspection's population: the querier's queries in the period */
  {"ov_population", "SELECT idx, event_id::text, canonical FROM events WHERE actor_id = $1"
                    " AND type = 'bli_query.executed' AND source = 'bliproxy' AND time >= $2 AND time < $3"
                    " AND idx < $4 ORDER BY idx LIMIT 100001"},
  /* one person's data accesses (the partial subject index's condition, so it is used) */
  {"ov_subject", "SELECT idx, encode(leaf_hash, 'hex'), canonical FROM events WHERE subject_hmacs @> ARRAY[$1::text]"
                 " AND subject_hmacs <> '{}' AND idx < $2 AND type = ANY($3::text[]) AND source = 'bliproxy'"
                 " ORDER BY idx LIMIT $4"},

  /* ---- quarterly reviews ---- */
  {"ov_qr_get", "SELECT " QRCOLS ", q.report FROM quarterly_reviews q WHERE q.id = $1"},
  {"ov_qr_lock", "SELECT " QRCOLS " FROM quarterly_reviews q WHERE q.id = $1 FOR UPDATE"},
  {"ov_qr_lock_quarter", "SELECT " QRCOLS " FROM quarterly_reviews q WHERE q.year = $1 AND q.quarter = $2 FOR UPDATE"},
  {"ov_qr_insert",
   "INSERT INTO quarterly_reviews (id, year, quarter, state, version, period_start, period_end, due_at, tree_size,"
   " root_hash, report, report_sha256, summary, generated_by, generated_at, created_at)"
   " VALUES ($1, $2, $3, 'draft', 1, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $13)"},
  {"ov_qr_regenerate",
   "UPDATE quarterly_reviews SET version = version + 1, tree_size = $2, root_hash = $3, report = $4,"
   " report_sha256 = $5, summary = $6::jsonb, generated_by = $7, generated_at = $8 WHERE id = $1 AND state = 'draft'"},
  {"ov_qr_sign", "UPDATE quarterly_reviews SET state = 'signed', signed_by = $2, signed_by_name = $3, signed_at = $4"
                 " WHERE id = $1 AND state = 'draft'"},
  {"ov_qr_submit", "UPDATE quarterly_reviews SET state = 'submitted', submitted_by = $2, submitted_at = $3,"
                   " reference_no = $4 WHERE id = $1 AND state = 'signed'"},
  {"ov_qr_list", "SELECT " QRCOLS " FROM quarterly_reviews q WHERE ($1::text IS NULL OR q.state = $1)"
                 " AND " AFTER("q.created_at", "q.id", 2, 3) " ORDER BY q.created_at, q.id LIMIT $4"},
  {"ov_qr_all", "SELECT q.year, q.quarter, q.id, q.state, " TS("q.submitted_at") " FROM quarterly_reviews q"},

  /* ---- inspections (Form 4) ---- */
  {"ov_in_no", "SELECT nextval('inspection_no')"},
  {"ov_in_insert",
   "INSERT INTO inspections (id, inspection_no, state, querier_id, querier, querier_unit_id, querier_unit,"
   " period_from, period_to, audit_date, auditing_unit_id, auditing_unit, auditing_unit_phone, auditor_ids, auditors,"
   " documents_due_at, sample_size, seed, tree_size, root_hash, population, created_by, created_at, updated_at)"
   " VALUES ($1, $2, 'open', $3, $4::jsonb, $5, $6::jsonb, $7, $8, $9, $10, $11::jsonb, $12, $13::uuid[],"
   " $14::jsonb, $15, $16, $17, $18, $19, $20, $21, $22, $22)"},
  {"ov_in_get", "SELECT " INCOLS " FROM inspections i WHERE i.id = $1"},
  {"ov_in_lock", "SELECT " INCOLS " FROM inspections i WHERE i.id = $1 FOR UPDATE"},
  /* visible: everything to overseers ($1), else as the querier, an auditor, the supervisor of
   * the querier's or the auditing unit (or the auditing unit's parent) ($3), or the head of the
   * Secretariat for the IT team's inspections ($9) */
  {"ov_in_list",
   "SELECT " INCOLS " FROM inspections i WHERE ($1::bool OR i.querier_id = $2 OR $2 = ANY(i.auditor_ids)"
   " OR ($3::uuid IS NOT NULL AND (i.querier_unit_id = $3 OR i.auditing_unit_id = $3"
   " OR i.auditing_unit ->> 'parent_id' = $3::text)) OR ($9::bool AND i.auditing_unit ->> 'kind' = 'it_team'))"
   " AND ($4::text IS NULL OR i.state = $4) AND ($5::uuid IS NULL OR i.querier_id = $5)"
   " AND " AFTER("i.created_at", "i.id", 6, 7) " ORDER BY i.created_at, i.id LIMIT $8"},
  {"ov_in_state", "UPDATE inspections SET state = $2, updated_at = $3 WHERE id = $1"},
  {"ov_in_opinion", "UPDATE inspections SET opinion = $2, opinion_by = $3, opinion_at = $4, updated_at = $4"
                    " WHERE id = $1"},
  {"ov_in_director", "UPDATE inspections SET director_review = $2::jsonb, state = 'closed', updated_at = $3"
                     " WHERE id = $1 AND state = 'signed'"},
  {"ov_case_insert",
   "INSERT INTO inspection_cases (inspection_id, case_no, event_index, event_id, query_id, queried_at, item,"
   " request_id, registration_no, subject_masked, purpose)"
   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)"},
  {"ov_cases", "SELECT " CASECOLS " FROM inspection_cases c WHERE c.inspection_id = $1 ORDER BY c.case_no"},
  {"ov_case_respond", "UPDATE inspection_cases SET case_reference = $3, explanation = $4, responded_at = $5,"
                      " response_late = $6 WHERE inspection_id = $1 AND case_no = $2 AND responded_at IS NULL"},
  {"ov_case_find", "UPDATE inspection_cases SET finding = $3, finding_note = $4, found_by = $5, found_at = $6"
                   " WHERE inspection_id = $1 AND case_no = $2 AND found_at IS NULL"},
  {"ov_signoff_insert", "INSERT INTO inspection_signoffs (inspection_id, capacity, account_id, name, title, unit_id,"
                        " signed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"},
  {"ov_signoffs", "SELECT capacity, account_id, name, title, unit_id, " TS("signed_at")
                  " FROM inspection_signoffs WHERE inspection_id = $1 ORDER BY signed_at, capacity"},

  /* ---- corrective actions ---- */
  {"ov_ca_insert",
   "INSERT INTO corrective_actions (id, inspection_id, case_no, account_id, unit_id, finding_note, state, opened_by,"
   " opened_at, due_at, suspension_state) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10)"},
  {"ov_ca_get", "SELECT " CACOLS " FROM corrective_actions a JOIN inspections i ON i.id = a.inspection_id"
                " WHERE a.id = $1"},
  {"ov_ca_lock", "SELECT " CACOLS " FROM corrective_actions a JOIN inspections i ON i.id = a.inspection_id"
                 " WHERE a.id = $1 FOR UPDATE OF a"},
  {"ov_ca_by_inspection", "SELECT " CACOLS " FROM corrective_actions a JOIN inspections i ON i.id = a.inspection_id"
                          " WHERE a.inspection_id = $1 ORDER BY a.case_no"},
  /* visible: everything to overseers ($1), else the querier's own ($2), their unit's to its
   * supervisor ($3), and those of inspections the caller audits */
  {"ov_ca_list",
   "SELECT " CACOLS " FROM corrective_actions a JOIN inspections i ON i.id = a.inspection_id"
   " WHERE ($1::bool OR a.account_id = $2 OR $2 = ANY(i.auditor_ids) OR ($3::uuid IS NOT NULL AND a.unit_id = $3))"
   " AND ($4::text IS NULL OR a.state = $4) AND (NOT $5::bool OR (a.state = 'open' AND a.due_at < $6))"
   " AND " AFTER("a.opened_at", "a.id", 7, 8) " ORDER BY a.opened_at, a.id LIMIT $9"},
  {"ov_ca_report", "UPDATE corrective_actions SET state = 'reported', report = $2, reported_by = $3, reported_at = $4"
                   " WHERE id = $1 AND state = 'open'"},
  {"ov_ca_close", "UPDATE corrective_actions SET state = 'closed', close_note = $2, closed_by = $3, closed_at = $4"
                  " WHERE id = $1 AND state = 'reported'"},
  {"ov_ca_suspension", "UPDATE corrective_actions SET suspension_state = $2, suspended_at = $3,"
                       " suspended_items = $4::jsonb WHERE id = $1"},
  {"ov_ca_overdue", "SELECT count(*) FROM corrective_actions WHERE state = 'open' AND due_at < $1"},

  /* ---- subject-access reports ---- */
  {"ov_sar_insert", "INSERT INTO subject_access_reports (id, id_hmac, id_masked, reference, received_on, due_on,"
                    " tree_size, access_count, report, requested_by, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
  {"ov_sar_get", "SELECT " SARCOLS ", s.report FROM subject_access_reports s WHERE s.id = $1"},
  {"ov_sar_lock", "SELECT " SARCOLS ", s.id_hmac FROM subject_access_reports s WHERE s.id = $1 FOR UPDATE"},
  {"ov_sar_extend", "UPDATE subject_access_reports SET due_on = due_on + 15, extended_by = $2, extended_at = $3,"
                    " extension_reason = $4 WHERE id = $1 AND extended_at IS NULL"},
  {"ov_sar_list", "SELECT " SARCOLS " FROM subject_access_reports s WHERE " AFTER("s.created_at", "s.id", 1, 2)
                  " ORDER BY s.created_at, s.id LIMIT $3"},
};
const size_t aud_ov_nstmts = sizeof aud_ov_stmts / sizeof aud_ov_stmts[0];

json_t *aud_ov_col(PGresult *res, int row, int col)
{
  return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

json_t *aud_ov_col_json(PGresult *res, int row, int col)
{
  if (PQgetisnull(res, row, col))
    return json_null();
  json_t *j = json_loads(PQgetvalue(res, row, col), JSON_REJECT_DUPLICATES, NULL);
  return j ? j : json_null();
}

json_int_t aud_ov_col_int(PGresult *res, int row, int col)
{
  return PQgetisnull(res, row, col) ? 0 : (json_int_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}
