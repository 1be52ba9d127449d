/* The workflow service's SQL: every statement it runs, prepared once per connection, and the
 * row → JSON helpers. Times go in as parameters from the service clock (bg_now); "expired"
 * is computed against that clock, so it needs no job and follows the test clock. */
#include "wf.h"
#include "bligate/bli_items.h"
#include "bligate/events.h"
#include "bligate/idempotency.h"
#include "bligate/util.h"
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define LBCOLS                                                                                             \
  "l.id, l.code, l.law_name, l.law_name_en, array_to_json(l.items), l.description, l.created_by, "         \
  TS("l.created_at")
/* A query request as the API shows it, in the order of the QR_* enum; `now` is the parameter
 * holding the service's time. */
#define QRCOLS_WITH(now, used, total)                                                                        \
  "q.id, q.registration_no, CASE WHEN q.state = 'approved' AND q.valid_until <= " now "::timestamptz"       \
  " THEN 'expired' ELSE q.state END, q.unit_id, q.querier_id, q.querier_name, q.requester_id,"              \
  " q.requester_name, q.requester_unit_id, q.submitted_by, l.id, l.code, l.law_name, q.article, q.relevance," \
  " q.case_reference, q.max_uses, q.decider_role, q.decision, q.decided_by, q.decider_name, "              \
  TS("q.decided_at") ", q.decision_reason, " TS("q.valid_from") ", " TS("q.valid_until") ", q.cancelled_by, " \
  TS("q.cancelled_at") ", q.cancel_reason, q.external_application_id, q.subject_count, " used ", " total ", " \
  TS("q.created_at") ", " TS("q.updated_at")
#define QRCOLS(now)                                                                                         \
  QRCOLS_WITH(now, "(SELECT COALESCE(sum(u.used), 0) FROM query_request_uses u WHERE u.request_id = q.id)",  \
              "(SELECT COALESCE(sum(u.max_uses), 0) FROM query_request_uses u WHERE u.request_id = q.id)")
/* The same columns without the usage totals (a sum over every (subject, item) of the request):
 * the proxy's per-query consume and release need none, and a large request made them the cost
 * of every query. */
#define QRCOLS_NOUSAGE(now) QRCOLS_WITH(now, "NULL::bigint", "NULL::bigint")
#define QRFROM " FROM query_requests q JOIN legal_bases l ON l.id = q.legal_basis_id"
#define QREXPIRED(now) "(q.state = 'approved' AND q.valid_until <= " now "::timestamptz)"
/* An external application, in the order of the EA_* enum. An approved application whose
 * linked request has expired reads as closed (request_expired). */
#define EAEXPIRED(now) "(a.state = 'approved' AND q.valid_until <= " now "::timestamptz)"
#define EACOLS(now)                                                                                         \
  "a.id, a.application_no, CASE WHEN " EAEXPIRED(now) " THEN 'closed' ELSE a.state END,"                    \
  " CASE WHEN " EAEXPIRED(now) " THEN 'request_expired' ELSE a.close_reason END,"                           \
  " a.applicant_id, a.applicant_name, a.applicant_unit_id, a.applicant_title, a.phone, a.fax,"              \
  " a.target_unit_id, l.id, l.code, l.law_name, a.article, a.relevance, a.case_reference, a.subject_count,"  \
  " a.endorsement, a.endorsed_by, a.endorser_name, " TS("a.endorsed_at") ", a.endorsement_comment,"          \
  " a.review, a.reviewed_by, a.reviewer_name, " TS("a.reviewed_at") ", a.review_reason, a.review_opinion,"   \
  " a.querier_id, a.querier_name, q.id, q.registration_no,"                                                 \
  " CASE WHEN " QREXPIRED(now) " THEN 'expired' ELSE q.state END, " TS("q.valid_until") ", "               \
  TS("a.created_at") ", " TS("a.updated_at") ", " TS("a.closed_at")
#define EAFROM                                                                                              \
  " FROM external_applications a JOIN legal_bases l ON l.id = a.legal_basis_id"                             \
  " LEFT JOIN query_requests q ON q.id = a.query_request_id"
#define DATE_FILTERS(col, from, to)                                                                         \
  " AND (" from "::date IS NULL OR " col " >= (" from "::date)::timestamp AT TIME ZONE 'Asia/Taipei')"     \
  " AND (" to "::date IS NULL OR " col " < (" to "::date + 1)::timestamp AT TIME ZONE 'Asia/Taipei')"

/* Round trip 1 of a consume (see qc_check_* below); match picks the subject by id or HMAC. */
#define QC_CHECK(match)                                                                                     \
  "SELECT " QRCOLS_NOUSAGE("$2") ", s.id, s.name, s.id_masked, s.id_enc, s.id_hmac, $4::text = ANY (s.items),"  \
  " u.used < u.max_uses" QRFROM                                                                             \
  " LEFT JOIN query_request_subjects s ON s.request_id = q.id AND " match                                  \
  " LEFT JOIN query_request_uses u ON u.subject_id = s.id AND u.item = $4::text WHERE q.id = $1"

/* The next number of a form in the year (Asia/Taipei) of the timestamp `at`, as "YYYY-NNNNNN"
 * (more digits past 999999, never cut): the (form, year) counter row is taken and kept locked
 * until the insert's transaction ends, so numbers follow one another with no gap or repeat. */
#define FORM_NO(form, at)                                                                                              \
  "INSERT INTO form_numbers AS f (form, year, last) VALUES (" form ","                                                 \
  " extract(year FROM " at "::timestamptz AT TIME ZONE 'Asia/Taipei')::int, 1)"                                        \
  " ON CONFLICT (form, year) DO UPDATE SET last = f.last + 1"                                                          \
  " RETURNING f.year || '-' || lpad(f.last::text, greatest(6, length(f.last::text)), '0') AS no"

const struct bg_db_stmt wf_stmts[] = {
  BG_OUTBOX_STMT,
  BG_IDEM_STMTS,
  /* legal bases */
  {"lb_list", "SELECT " LBCOLS " FROM legal_bases l WHERE ($1::timestamptz IS NULL OR (l.created_at, l.id) > ($1, $2::uuid))"
              " ORDER BY l.created_at, l.id LIMIT $3"},
  {"lb_get", "SELECT " LBCOLS " FROM legal_bases l WHERE l.id = $1"},
  {"lb_insert", "INSERT INTO legal_bases AS l (id, code, law_name, law_name_en, items, description, created_by, created_at)"
                " SELECT $1, $2, $3, $4, ARRAY(SELECT json_array_elements_text($5::json)), $6, $7, $8 RETURNING " LBCOLS},
  /* query requests (Form 2). The registration number counts per bureau year (Asia/Taipei). */
  {"qr_insert",
   "WITH n AS (" FORM_NO("'F2'", "$17") ")"
   " INSERT INTO query_requests (id, registration_no, unit_id, querier_id, querier_name, requester_id, requester_name,"
   " requester_unit_id, submitted_by, legal_basis_id, article, relevance, case_reference, max_uses, subject_count,"
   " decider_role, state, external_application_id, created_at, updated_at)"
   " SELECT $1, 'F2-' || n.no, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending', $16, $17, $17"
   " FROM n"},
  {"qs_insert", "INSERT INTO query_request_subjects (id, request_id, seq, name, id_hmac, id_masked, id_enc, items)"
                " SELECT $1, $2, $3, $4, $5, $6, $7, ARRAY(SELECT json_array_elements_text($8::json))"},
  /* a linked request (Form 3 accepted) takes the application's subjects as they are */
  {"qs_copy", "INSERT INTO query_request_subjects (id, request_id, seq, name, id_hmac, id_masked, id_enc, items)"
              " SELECT gen_random_uuid(), $1, s.seq, s.name, s.id_hmac, s.id_masked, s.id_enc, s.items"
              " FROM external_application_subjects s WHERE s.application_id = $2"},
  {"qu_insert", "INSERT INTO query_request_uses (subject_id, item, request_id, max_uses)"
                " SELECT s.id, i.item, s.request_id, $2 FROM query_request_subjects s, unnest(s.items) AS i (item)"
                " WHERE s.request_id = $1"},
  {"qr_get", "SELECT " QRCOLS("$2") QRFROM " WHERE q.id = $1"},
  {"qr_lock", "SELECT " QRCOLS("$2") QRFROM " WHERE q.id = $1 FOR UPDATE OF q"},
  /* consumes share the row with each other and exclude a cancel or a decision */
  {"qr_share", "SELECT " QRCOLS_NOUSAGE("$2") QRFROM " WHERE q.id = $1 FOR SHARE OF q"},
  /* $1 sees everything; otherwise the caller's own (querier, requester, submitter: $2) and,
   * for a unit's supervisor or reviewer, the unit's ($3) */
  {"qr_list", "SELECT " QRCOLS("$13") QRFROM
              " WHERE ($1::boolean OR q.querier_id = $2::uuid OR q.requester_id = $2::uuid OR q.submitted_by = $2::uuid"
              "  OR q.unit_id = $3::uuid)"
              " AND ($4::text IS NULL OR CASE WHEN " QREXPIRED("$13") " THEN 'expired' ELSE q.state END = $4)"
              " AND ($5::uuid IS NULL OR q.unit_id = $5) AND ($6::uuid IS NULL OR q.querier_id = $6)"
              " AND ($7::uuid IS NULL OR q.requester_id = $7)" DATE_FILTERS("q.created_at", "$8", "$9")
              " AND ($10::timestamptz IS NULL OR (q.created_at, q.id) > ($10, $11::uuid))"
              " ORDER BY q.created_at, q.id LIMIT $12"},
  {"qs_list", "SELECT s.id, s.seq, s.name, s.id_masked, s.id_enc, s.id_hmac, array_to_json(s.items),"
              " (SELECT json_object_agg(u.item, json_build_array(u.used, u.max_uses)) FROM query_request_uses u"
              "  WHERE u.subject_id = s.id)"
              " FROM query_request_subjects s WHERE s.request_id = $1 ORDER BY s.seq"},
  {"qr_decide", "UPDATE query_requests SET state = $2, decision = $3, decided_by = $4, decider_name = $5, decided_at = $6,"
                " decision_reason = $7, valid_from = CASE WHEN $2 = 'approved' THEN $6::timestamptz END,"
                " valid_until = $8, updated_at = $6 WHERE id = $1 AND state = 'pending' RETURNING id"},
  {"qr_cancel", "UPDATE query_requests SET state = 'cancelled', cancelled_by = $2, cancelled_at = $3, cancel_reason = $4,"
                " updated_at = $3 WHERE id = $1 AND state IN ('pending', 'approved') RETURNING id"},
  {"qr_used", "SELECT COALESCE(sum(used), 0) FROM query_request_uses WHERE request_id = $1"},
  /* consumption (h_consume.c): two round trips for the proxy's per-query consume.
   * Round trip 1 (qc_check_*, autocommit, no lock) reads everything a refusal or the reply
   * needs in one go: the request, the subject named by id or by HMAC (NULLs when it is not on
   * the request), whether the item is on the subject, and whether a use of it is left. It is
   * only advice: round trip 2 decides. $1 request, $2 now, $3 subject id or HMAC, $4 item. */
  {"qc_check_by_id", QC_CHECK("s.id = $3::uuid")},
  {"qc_check_by_hmac", QC_CHECK("s.id_hmac = $3::text")},
  /* Round trip 2, one statement and so atomic by itself (in autocommit, or inside the linked
   * request's transaction): take the use, record the consumption and its event, or do none
   * of them. The request is re-checked here under FOR SHARE, because round trip 1 held no
   * lock: a cancel or a decision that committed since then is seen (the lock waits for the
   * writer and re-reads the row under read committed), and one that comes later waits until
   * this statement's transaction ends -- the same exclusion the whole-transaction FOR SHARE
   * gave before. Racing takers of the last use queue on the uses row, and the second re-reads
   * used < max_uses after the first commits: exactly one gets the row. used and max_uses are
   * known only after the UPDATE, so they go into the event ($9, with its id $8) here.
   * $1 request, $2 subject, $3 item, $4 querier, $5 now, $6 consumption id, $7 client. */
  {"qc_take",
   "WITH q AS (SELECT q.id FROM query_requests q WHERE q.id = $1::uuid AND q.state = 'approved'"
   "  AND q.valid_until > $5::timestamptz AND q.querier_id = $4::uuid FOR SHARE),"
   " u AS (UPDATE query_request_uses u SET used = u.used + 1 FROM q"
   "  WHERE u.subject_id = $2::uuid AND u.item = $3::text AND u.request_id = q.id AND u.used < u.max_uses"
   "  RETURNING u.used, u.max_uses),"
   " c AS (INSERT INTO query_request_consumptions (id, request_id, subject_id, item, querier_id, client_id,"
   "  consumed_at) SELECT $6::uuid, $1::uuid, $2::uuid, $3::text, $4::uuid, $7::text, $5::timestamptz FROM u),"
   " e AS (INSERT INTO outbox (event_id, event) SELECT $8::uuid, jsonb_set(jsonb_set($9::jsonb,"
   "  '{details,used}', to_jsonb(u.used)), '{details,max_uses}', to_jsonb(u.max_uses)) FROM u)"
   " SELECT used, max_uses FROM u"},
  {"qu_give_back", "UPDATE query_request_uses SET used = used - 1 WHERE subject_id = $1 AND item = $2 AND used > 0"
                   " RETURNING used, max_uses"},
  {"qc_lock", "SELECT c.id, c.subject_id, c.item, c.querier_id, " TS("c.released_at") ", s.id_hmac, s.id_masked"
              " FROM query_request_consumptions c JOIN query_request_subjects s ON s.id = c.subject_id"
              " WHERE c.id = $1 AND c.request_id = $2 FOR UPDATE OF c"},
  {"qc_release", "UPDATE query_request_consumptions SET released_at = $2, release_reason = $3 WHERE id = $1"},
  {"qr_all_done", "SELECT COALESCE(bool_and(used >= 1), false) FROM query_request_uses WHERE request_id = $1"},
  /* external applications (Form 3) */
  {"ea_insert",
   "WITH n AS (" FORM_NO("'F3'", "$14") ")"
   " INSERT INTO external_applications (id, application_no, applicant_id, applicant_name, applicant_unit_id,"
   " applicant_title, phone, fax, target_unit_id, legal_basis_id, article, relevance, case_reference, subject_count,"
   " state, created_at, updated_at)"
   " SELECT $1, 'F3-' || n.no, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'submitted', $14, $14 FROM n"},
  {"eas_insert", "INSERT INTO external_application_subjects (id, application_id, seq, name, id_hmac, id_masked, id_enc,"
                 " items) SELECT $1, $2, $3, $4, $5, $6, $7, ARRAY(SELECT json_array_elements_text($8::json))"},
  {"ea_get", "SELECT " EACOLS("$2") EAFROM " WHERE a.id = $1"},
  {"ea_lock", "SELECT " EACOLS("$2") EAFROM " WHERE a.id = $1 FOR UPDATE OF a"},
  {"ea_applicant", "SELECT a.applicant_id FROM external_applications a WHERE a.id = $1"},
  {"ea_by_request", "SELECT a.id, a.state, a.close_reason FROM external_applications a WHERE a.query_request_id = $1"
                    " FOR UPDATE"},
  /* $1 sees everything; otherwise the applicant's unit ($2), the target unit's reviewers and
   * supervisor ($3 = the caller is one), and the assigned querier ($4) */
  {"ea_list", "SELECT " EACOLS("$12") EAFROM
              " WHERE ($1::boolean OR a.applicant_unit_id = $2::uuid OR ($3::boolean AND a.target_unit_id = $2::uuid)"
              "  OR a.querier_id = $4::uuid)"
              " AND ($5::text IS NULL OR CASE WHEN " EAEXPIRED("$12") " THEN 'closed' ELSE a.state END = $5)"
              " AND ($6::uuid IS NULL OR a.target_unit_id = $6) AND ($7::uuid IS NULL OR a.applicant_unit_id = $7)"
              DATE_FILTERS("a.created_at", "$8", "$9")
              " AND ($10::timestamptz IS NULL OR (a.created_at, a.id) > ($10, $11::uuid))"
              " ORDER BY a.created_at, a.id LIMIT $13"},
  {"eas_list", "SELECT s.id, s.seq, s.name, s.id_masked, s.id_enc, s.id_hmac, array_to_json(s.items)"
               " FROM external_application_subjects s WHERE s.application_id = $1 ORDER BY s.seq"},
  {"ea_endorse", "UPDATE external_applications SET state = $2, endorsement = $3, endorsed_by = $4, endorser_name = $5,"
                 " endorsed_at = $6, endorsement_comment = $7, updated_at = $6,"
                 " closed_at = CASE WHEN $2 = 'not_endorsed' THEN $6::timestamptz END"
                 " WHERE id = $1 AND state = 'submitted' RETURNING id"},
  {"ea_review", "UPDATE external_applications SET state = $2, review = $3, reviewed_by = $4, reviewer_name = $5,"
                " reviewed_at = $6, review_reason = $7, review_opinion = $8, querier_id = $9, querier_name = $10,"
                " query_request_id = $11, updated_at = $6, closed_at = CASE WHEN $2 = 'rejected' THEN $6::timestamptz END"
                " WHERE id = $1 AND state = 'endorsed' RETURNING id"},
  {"ea_set_state", "UPDATE external_applications SET state = $2, close_reason = $3, updated_at = $4,"
                   " closed_at = CASE WHEN $2 = 'closed' THEN $4::timestamptz END WHERE id = $1"},
  /* what has been queried for each subject of an application: the linked request's uses,
   * matched by position, and when each (subject, item) was first queried */
  {"ea_results",
   "SELECT es.seq, es.name, es.id_masked, array_to_json(es.items),"
   " (SELECT json_object_agg(u.item, json_build_array(u.used, (SELECT " TS("min(c.consumed_at)")
   "    FROM query_request_consumptions c WHERE c.request_id = $2 AND c.subject_id = u.subject_id AND c.item = u.item"
   "    AND c.released_at IS NULL)))"
   "  FROM query_request_subjects qs JOIN query_request_uses u ON u.subject_id = qs.id"
   "  WHERE qs.request_id = $2 AND qs.seq = es.seq)"
   " FROM external_application_subjects es WHERE es.application_id = $1 ORDER BY es.seq"},
};
const size_t wf_nstmts = sizeof wf_stmts / sizeof wf_stmts[0];

json_t *wf_col(PGresult *res, int row, int col)
{
  return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *json_col(PGresult *res, int row, int col)
{
  json_t *j = PQgetisnull(res, row, col) ? NULL : json_loads(PQgetvalue(res, row, col), 0, NULL);
  return j ? j : json_null();
}

static json_t *int_col(PGresult *res, int row, int col)
{
  long v = 0;
  return bg_parse_long(PQgetvalue(res, row, col), 0, 1L << 40, &v) ? json_integer(v) : json_null();
}

json_t *wf_legal_basis_json(PGresult *res, int row)
{
  json_t *items = json_col(res, row, 4);
  json_t *names = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(items, i, v)
  {
    const struct bg_bli_item *it = bg_bli_item(json_string_value(v));
    json_array_append_new(names, json_pack("{s:O, s:s?, s:s?}", "code", v, "name_zh", it ? it->name_zh : NULL,
                                           "name_en", it ? it->name_en : NULL));
  }
  return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s}", "id", PQgetvalue(res, row, 0), "code",
                   PQgetvalue(res, row, 1), "law_name", PQgetvalue(res, row, 2), "law_name_en", wf_col(res, row, 3),
                   "items", items, "item_names", names, "description", wf_col(res, row, 5), "created_by",
                   wf_col(res, row, 6), "created_at", PQgetvalue(res, row, 7));
}

json_t *wf_request_json(PGresult *res, int row)
{
  json_t *decision = json_null();
  if (!PQgetisnull(res, row, QR_DECISION))
    decision = json_pack("{s:s, s:o, s:o, s:o, s:o}", "decision", PQgetvalue(res, row, QR_DECISION), "decided_by",
                         wf_col(res, row, QR_DECIDED_BY), "decider_name", wf_col(res, row, QR_DECIDER_NAME),
                         "decided_at", wf_col(res, row, QR_DECIDED_AT), "reason", wf_col(res, row, QR_REASON));
  json_t *cancel = json_null();
  if (!PQgetisnull(res, row, QR_CANCELLED_AT))
    cancel = json_pack("{s:o, s:o, s:o}", "cancelled_by", wf_col(res, row, QR_CANCELLED_BY), "cancelled_at",
                       wf_col(res, row, QR_CANCELLED_AT), "reason", wf_col(res, row, QR_CANCEL_REASON));
  json_t *used = int_col(res, row, QR_USED), *total = int_col(res, row, QR_TOTAL);
  json_t *usage = json_pack("{s:O, s:O, s:I}", "used", used, "total", total, "remaining",
                            json_integer_value(total) - json_integer_value(used));
  json_decref(used);
  json_decref(total);
  return json_pack(
    "{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:o, s:o, s:s,"
    " s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s}",
    "id", PQgetvalue(res, row, QR_ID), "registration_no", PQgetvalue(res, row, QR_NO), "state",
    PQgetvalue(res, row, QR_STATE), "unit_id", PQgetvalue(res, row, QR_UNIT), "querier", "id",
    PQgetvalue(res, row, QR_QUERIER), "name", PQgetvalue(res, row, QR_QUERIER_NAME), "requester", "id",
    PQgetvalue(res, row, QR_REQUESTER), "name", PQgetvalue(res, row, QR_REQUESTER_NAME), "unit_id",
    PQgetvalue(res, row, QR_REQUESTER_UNIT), "submitted_by", PQgetvalue(res, row, QR_SUBMITTED_BY), "legal_basis",
    "id", PQgetvalue(res, row, QR_LB_ID), "code", PQgetvalue(res, row, QR_LB_CODE), "law_name",
    PQgetvalue(res, row, QR_LB_NAME), "article", PQgetvalue(res, row, QR_ARTICLE), "relevance",
    PQgetvalue(res, row, QR_RELEVANCE), "case_reference", PQgetvalue(res, row, QR_CASE), "max_uses",
    int_col(res, row, QR_MAX_USES), "subject_count", int_col(res, row, QR_SUBJECTS), "decider_role",
    PQgetvalue(res, row, QR_DECIDER_ROLE), "decision", decision, "valid_from", wf_col(res, row, QR_VALID_FROM),
    "valid_until", wf_col(res, row, QR_VALID_UNTIL), "cancellation", cancel, "external_application_id",
    wf_col(res, row, QR_EXTERNAL), "usage", usage, "created_at",
    PQgetvalue(res, row, QR_CREATED), "updated_at", PQgetvalue(res, row, QR_UPDATED));
}

json_t *wf_application_json(PGresult *res, int row)
{
  json_t *endorsement = json_null(), *review = json_null(), *qr = json_null();
  if (!PQgetisnull(res, row, EA_ENDORSEMENT))
    endorsement = json_pack("{s:s, s:o, s:o, s:o, s:o}", "decision", PQgetvalue(res, row, EA_ENDORSEMENT),
                            "endorsed_by", wf_col(res, row, EA_ENDORSED_BY), "endorser_name",
                            wf_col(res, row, EA_ENDORSER_NAME), "endorsed_at", wf_col(res, row, EA_ENDORSED_AT),
                            "comment", wf_col(res, row, EA_ENDORSE_COMMENT));
  if (!PQgetisnull(res, row, EA_REVIEW))
    review = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "decision", PQgetvalue(res, row, EA_REVIEW),
                       "reviewed_by", wf_col(res, row, EA_REVIEWED_BY), "reviewer_name",
                       wf_col(res, row, EA_REVIEWER_NAME), "reviewed_at", wf_col(res, row, EA_REVIEWED_AT), "reason",
                       wf_col(res, row, EA_REVIEW_REASON), "opinion", wf_col(res, row, EA_REVIEW_OPINION),
                       "querier_id", wf_col(res, row, EA_QUERIER), "querier_name", wf_col(res, row, EA_QUERIER_NAME));
  if (!PQgetisnull(res, row, EA_QR_ID))
    qr = json_pack("{s:s, s:s, s:s, s:o}", "id", PQgetvalue(res, row, EA_QR_ID), "registration_no",
                   PQgetvalue(res, row, EA_QR_NO), "state", PQgetvalue(res, row, EA_QR_STATE), "valid_until",
                   wf_col(res, row, EA_QR_VALID_UNTIL));
  return json_pack(
    "{s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:o}, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:o, s:o, s:o, s:o,"
    " s:o, s:s, s:s, s:o}",
    "id", PQgetvalue(res, row, EA_ID), "application_no", PQgetvalue(res, row, EA_NO), "state",
    PQgetvalue(res, row, EA_STATE), "close_reason", wf_col(res, row, EA_CLOSE_REASON), "applicant", "id",
    PQgetvalue(res, row, EA_APPLICANT), "name", PQgetvalue(res, row, EA_APPLICANT_NAME), "unit_id",
    PQgetvalue(res, row, EA_APPLICANT_UNIT), "title", PQgetvalue(res, row, EA_APPLICANT_TITLE), "phone",
    PQgetvalue(res, row, EA_PHONE), "fax", wf_col(res, row, EA_FAX), "target_unit_id", PQgetvalue(res, row, EA_TARGET),
    "legal_basis", "id", PQgetvalue(res, row, EA_LB_ID), "code", PQgetvalue(res, row, EA_LB_CODE), "law_name",
    PQgetvalue(res, row, EA_LB_NAME), "article", PQgetvalue(res, row, EA_ARTICLE), "relevance",
    PQgetvalue(res, row, EA_RELEVANCE), "case_reference", wf_col(res, row, EA_CASE), "subject_count",
    int_col(res, row, EA_SUBJECTS), "endorsement", endorsement, "review", review, "query_request", qr, "created_at",
    PQgetvalue(res, row, EA_CREATED), "updated_at", PQgetvalue(res, row, EA_UPDATED), "closed_at",
    wf_col(res, row, EA_CLOSED));
}
