/* Unannounced inspections (rule 8, Form 4). The IT team with the Ethics Office audits a
 * querier's use for a period: the service draws a reproducible random sample of the querier's
 * queries from the log (seed recorded), the querier answers each sampled case with its case
 * reference and an explanation by the documents deadline, the auditors record a finding per
 * case and their opinion (a breach opens a corrective action), the querier, an auditor and
 * the supervisors of the using and the auditing unit sign, and the Director's review closes
 * the record. Every step is an event on the log, appended in the step's transaction. */
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include "canon.h"
#include "ov.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const it_roles[] = {"it_staff", "permission_admin", NULL};
static const char *const ethics_roles[] = {"ethics_officer", NULL};
static const char *const capacities[] = {"querier", "auditor", "using_unit_supervisor", "auditing_unit_supervisor",
                                         NULL};

static bool roles_have(const json_t *roles, const char *const *want)
{
  size_t i;
  const json_t *v;
  json_array_foreach(roles, i, v) for (int k = 0; want[k]; k++) if (json_is_string(v) &&
                                                                     !strcmp(json_string_value(v), want[k])) return true;
  return false;
}

static bool is_auditor(PGresult *in, const char *who)
{
  json_t *auditors = aud_ov_col_json(in, 0, OV_IN_AUDITORS);
  size_t i;
  json_t *a;
  bool yes = false;
  json_array_foreach(auditors, i, a) yes = yes || !strcmp(json_string_value(json_object_get(a, "account_id")), who);
  json_decref(auditors);
  return yes;
}

static const char *auditing_parent(PGresult *in)
{
  json_t *u = aud_ov_col_json(in, 0, OV_IN_AUNIT);
  static _Thread_local char parent[40];
  const char *p = json_string_value(json_object_get(u, "parent_id"));
  snprintf(parent, sizeof parent, "%s", p ? p : "");
  json_decref(u);
  return parent;
}

/* May sign for the using unit: a supervisor of the querier's unit (at the inspection). */
static bool using_supervisor(const struct bg_request *r, PGresult *in)
{
  return bg_req_has_role(r, "supervisor") && !strcmp(r->token.unit, PQgetvalue(in, 0, OV_IN_QUNIT_ID));
}

/* May sign for the using unit instead: the Director, when the querier is a supervisor — the
 * querier's own unit has no other supervisor to sign, and a supervisor's Form 2 goes to the
 * Director too. The querier's roles are today's, from accounts. */
static bool director_for_supervisor(struct bg_request *r, PGresult *in, bool *unavailable)
{
  if (!bg_req_has_role(r, "director") || !strcmp(r->token.sub, PQgetvalue(in, 0, OV_IN_QUERIER_ID)))
    return false;
  long status = 0;
  json_t *q = aud_account_get(r, PQgetvalue(in, 0, OV_IN_QUERIER_ID), &status);
  *unavailable = !q && status != 404;
  bool sup = bg_json_array_has(json_object_get(q, "roles"), "supervisor");
  json_decref(q);
  return sup;
}

/* May sign for the auditing unit: a supervisor of it or of the unit it belongs to; for the IT
 * team also the head of the Secretariat (permission_unit_head), which the team is part of
 * (rule 2) whether or not the unit records its parent. */
static bool auditing_supervisor(const struct bg_request *r, PGresult *in)
{
  const char *parent = auditing_parent(in);
  json_t *u = aud_ov_col_json(in, 0, OV_IN_AUNIT);
  const char *kind = json_string_value(json_object_get(u, "kind"));
  bool it_team = kind && !strcmp(kind, "it_team");
  json_decref(u);
  if (it_team && bg_req_has_role(r, "permission_unit_head"))
    return true;
  return bg_req_has_role(r, "supervisor") && r->token.unit[0] &&
         (!strcmp(r->token.unit, PQgetvalue(in, 0, OV_IN_AUNIT_ID)) || !strcmp(r->token.unit, parent));
}

/* Who sees an inspection: overseers, the querier, its auditors, and the supervisors who sign it. */
static bool can_see(const struct bg_request *r, PGresult *in)
{
  return aud_is_overseer(r) || !strcmp(r->token.sub, PQgetvalue(in, 0, OV_IN_QUERIER_ID)) ||
         is_auditor(in, r->token.sub) || using_supervisor(r, in) || auditing_supervisor(r, in);
}

/* The record as Form 4 reads, with its cases or (with_cases false: a list's row) without them —
 * the cases name citizens, so they go out only where the read is recorded (the record's GET) or
 * to the one who just took a step, in its reply, after the step's own event. NULL on a database
 * failure. */
static json_t *inspection_json(struct bg_dbc *c, PGresult *in, int row, bool with_cases)
{
  const char *id = PQgetvalue(in, row, OV_IN_ID);
  const char *p[] = {id};
  PGresult *cases = bg_dbc_exec(c, "ov_cases", 1, p, NULL);
  PGresult *signs = cases ? bg_dbc_exec(c, "ov_signoffs", 1, p, NULL) : NULL;
  PGresult *cas = signs && with_cases ? bg_dbc_exec(c, "ov_ca_by_inspection", 1, p, NULL) : NULL;
  json_t *out = NULL;
  if (!signs || (with_cases && !cas))
    goto done;
  time_t now = bg_now(), due = 0;
  bg_time_parse(PQgetvalue(in, row, OV_IN_DUE), &due);
  json_t *case_list = with_cases ? json_array() : NULL;
  bool unanswered = false;
  for (int i = 0; i < PQntuples(cases); i++) {
    unanswered = unanswered || PQgetisnull(cases, i, OV_CASE_RESPONDED);
    if (!with_cases)
      continue;
    json_t *response = json_null(), *finding = json_null(), *ca = json_null();
    if (!PQgetisnull(cases, i, OV_CASE_RESPONDED)) {
      response = json_pack("{s:o, s:s, s:s, s:b}", "case_reference", aud_ov_col(cases, i, OV_CASE_REF), "explanation",
                           PQgetvalue(cases, i, OV_CASE_EXPLANATION), "responded_at",
                           PQgetvalue(cases, i, OV_CASE_RESPONDED), "late",
                           PQgetvalue(cases, i, OV_CASE_LATE)[0] == 't');
    }
    if (!PQgetisnull(cases, i, OV_CASE_FINDING))
      finding = json_pack("{s:s, s:o, s:s, s:s}", "result", PQgetvalue(cases, i, OV_CASE_FINDING), "note",
                          aud_ov_col(cases, i, OV_CASE_NOTE), "found_by", PQgetvalue(cases, i, OV_CASE_FOUND_BY),
                          "found_at", PQgetvalue(cases, i, OV_CASE_FOUND_AT));
    for (int k = 0; k < PQntuples(cas); k++)
      if (!strcmp(PQgetvalue(cas, k, OV_CA_CASE), PQgetvalue(cases, i, OV_CASE_NO))) {
        json_decref(ca);
        ca = aud_ca_json(cas, k);
      }
    json_array_append_new(
      case_list, json_pack("{s:I, s:I, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "case_no",
                           aud_ov_col_int(cases, i, OV_CASE_NO), "event_index", aud_ov_col_int(cases, i, OV_CASE_INDEX),
                           "event_id", PQgetvalue(cases, i, OV_CASE_EVENT), "query_id",
                           aud_ov_col(cases, i, OV_CASE_QUERY), "queried_at", PQgetvalue(cases, i, OV_CASE_AT), "item",
                           aud_ov_col(cases, i, OV_CASE_ITEM), "request_id", aud_ov_col(cases, i, OV_CASE_REQUEST),
                           "registration_no", aud_ov_col(cases, i, OV_CASE_REG), "subject_masked",
                           aud_ov_col(cases, i, OV_CASE_SUBJECT), "purpose", aud_ov_col_json(cases, i, OV_CASE_PURPOSE),
                           "response", response, "finding", finding, "corrective_action", ca));
  }
  json_t *sig = json_array(), *signed_caps = json_object();
  for (int i = 0; i < PQntuples(signs); i++) {
    json_object_set_new(signed_caps, PQgetvalue(signs, i, 0), json_true());
    json_array_append_new(sig, json_pack("{s:s, s:s, s:s, s:o, s:o, s:s}", "capacity", PQgetvalue(signs, i, 0),
                                         "account_id", PQgetvalue(signs, i, 1), "name", PQgetvalue(signs, i, 2),
                                         "title", aud_ov_col(signs, i, 3), "unit_id", aud_ov_col(signs, i, 4),
                                         "signed_at", PQgetvalue(signs, i, 5)));
  }
  json_t *missing = json_array();
  for (int k = 0; capacities[k]; k++)
    if (!json_object_get(signed_caps, capacities[k]))
      json_array_append_new(missing, json_string(capacities[k]));
  json_decref(signed_caps);
  json_t *aunit = aud_ov_col_json(in, row, OV_IN_AUNIT);
  json_object_set_new(aunit, "phone", aud_ov_col(in, row, OV_IN_APHONE));
  json_t *opinion = PQgetisnull(in, row, OV_IN_OPINION)
                      ? json_null()
                      : json_pack("{s:s, s:s, s:s}", "text", PQgetvalue(in, row, OV_IN_OPINION), "by",
                                  PQgetvalue(in, row, OV_IN_OPINION_BY), "at", PQgetvalue(in, row, OV_IN_OPINION_AT));
  out = json_pack(
    "{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:o, s:o, s:o, s:o, s:s, s:b, s:{s:I, s:I, s:I, s:s, s:I, s:s, s:s},"
    " s:I, s:o, s:o, s:o, s:o, s:s, s:s, s:s}",
    "id", id, "inspection_no", PQgetvalue(in, row, OV_IN_NO), "form", "F4", "state", PQgetvalue(in, row, OV_IN_STATE),
    "period", "from", PQgetvalue(in, row, OV_IN_FROM), "to", PQgetvalue(in, row, OV_IN_TO), "audit_date",
    PQgetvalue(in, row, OV_IN_DATE), "querier", aud_ov_col_json(in, row, OV_IN_QUERIER), "using_unit",
    aud_ov_col_json(in, row, OV_IN_QUNIT), "auditing_unit", aunit, "auditors", aud_ov_col_json(in, row, OV_IN_AUDITORS),
    "documents_due_at", PQgetvalue(in, row, OV_IN_DUE), "documents_overdue", unanswered && now > due, "sample",
    "requested", aud_ov_col_int(in, row, OV_IN_SAMPLE), "drawn", (json_int_t)PQntuples(cases), "population",
    aud_ov_col_int(in, row, OV_IN_POPULATION), "seed", PQgetvalue(in, row, OV_IN_SEED), "tree_size",
    aud_ov_col_int(in, row, OV_IN_SIZE), "root_hash", PQgetvalue(in, row, OV_IN_ROOT), "method",
    "sha256(seed \":\" event_id), smallest first", "case_count", (json_int_t)PQntuples(cases),
    "opinion", opinion, "signatures", sig, "signatures_missing", missing, "director_review",
    aud_ov_col_json(in, row, OV_IN_DIRECTOR), "created_by", PQgetvalue(in, row, OV_IN_CREATED_BY), "created_at",
    PQgetvalue(in, row, OV_IN_CREATED), "updated_at", PQgetvalue(in, row, OV_IN_UPDATED));
  if (out && with_cases)
    json_object_set_new(out, "cases", case_list);
  else
    json_decref(case_list);
done:
  PQclear(cases);
  PQclear(signs);
  PQclear(cas);
  return out;
}

/* Replies with the inspection as it is now (after a committed step). */
static void reply_inspection(struct bg_request *r, struct bg_dbc *c, const char *id, unsigned status)
{
  const char *p[] = {id};
  PGresult *in = bg_dbc_exec(c, "ov_in_get", 1, p, NULL);
  json_t *j = in && PQntuples(in) == 1 ? inspection_json(c, in, 0, true) : NULL;
  if (!j) {
    bg_db_failed(r, c);
  } else {
    if (status == 201) {
      char loc[80];
      snprintf(loc, sizeof loc, "/v1/audit/inspections/%s", id);
      bg_reply_header(r, "Location", loc);
    }
    bg_reply_json(r, status, j);
  }
  PQclear(in);
}

/* ---- create ---- */

struct create_body {
  const char *querier_id, *period_from, *period_to, *auditing_unit_id, *auditing_unit_phone, *documents_due_at, *seed;
  json_t *auditor_ids;
  long sample_size;
};

static bool seed_ok(const char *s)
{
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return false;
  return true;
}

/* An auditor as Form 4 names them, or NULL after replying. */
static json_t *auditor_entry(struct bg_request *r, const char *id, bool *it, bool *ethics)
{
  long status;
  json_t *a = aud_account_get(r, id, &status);
  if (!a) {
    if (status == 404)
      bg_reply_problem(r, BG_P_INSPECTION_PARTIES, "auditor %s is not an account", id);
    else
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the auditors");
    return NULL;
  }
  const json_t *roles = json_object_get(a, "roles");
  bool is_it = roles_have(roles, it_roles), is_eth = roles_have(roles, ethics_roles);
  const char *st = json_string_value(json_object_get(a, "status"));
  if ((!is_it && !is_eth) || !st || strcmp(st, "active") != 0) {
    bg_reply_problem(r, BG_P_INSPECTION_PARTIES, "auditor %s is not an active member of the IT team or the Ethics Office",
                     id);
    json_decref(a);
    return NULL;
  }
  *it = *it || is_it;
  *ethics = *ethics || is_eth;
  json_t *e = json_pack("{s:s, s:O, s:O, s:O, s:s}", "account_id", id, "name", json_object_get(a, "name"), "title",
                        json_object_get(a, "title"), "unit_id", json_object_get(a, "unit_id"), "team",
                        is_it ? "it" : "ethics");
  json_decref(a);
  return e;
}

static json_t *unit_entry(struct bg_request *r, const char *id, long *status)
{
  json_t *u = aud_unit_get(r, id, status);
  if (!u)
    return NULL;
  json_t *e = json_pack("{s:s, s:O, s:O, s:O, s:O}", "id", id, "code", json_object_get(u, "code"), "name",
                        json_object_get(u, "name"), "kind", json_object_get(u, "kind"), "parent_id",
                        json_object_get(u, "parent_id") ? json_object_get(u, "parent_id") : json_null());
  json_decref(u);
  return e;
}

void aud_h_inspections_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("querier_id", BG_F_UUID, true, struct create_body, querier_id),
    BG_FIELD("period_from", BG_F_DATE, true, struct create_body, period_from),
    BG_FIELD("period_to", BG_F_DATE, true, struct create_body, period_to),
    BG_FIELD("auditing_unit_id", BG_F_UUID, true, struct create_body, auditing_unit_id),
    BG_FIELD("auditing_unit_phone", BG_F_STRING, true, struct create_body, auditing_unit_phone, .min = 1, .max = 40),
    BG_FIELD("auditor_ids", BG_F_ARRAY, true, struct create_body, auditor_ids, .min = 2, .max = 10),
    BG_FIELD("documents_due_at", BG_F_STRING, true, struct create_body, documents_due_at, .min = 1, .max = 40),
    BG_FIELD("sample_size", BG_F_INT, false, struct create_body, sample_size, .imin = 1, .imax = 200),
    BG_FIELD("seed", BG_F_STRING, false, struct create_body, seed, .min = 16, .max = 128),
    BG_FIELD_END};
  static const char *const makers[] = {"it_staff", "permission_admin", "ethics_officer", NULL};
  struct create_body b = {.sample_size = aud_ov.sample_size};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  json_t *errors = json_array();
  time_t now = bg_now(), from, to, due;
  char today[BG_DATE_LEN];
  bg_date_fmt(now, today);
  if (!aud_date_start(b.period_from, &from))
    bg_field_err(errors, "period_from", "format", "not a date of the calendar");
  if (!aud_date_start(b.period_to, &to))
    bg_field_err(errors, "period_to", "format", "not a date of the calendar");
  else if (strcmp(b.period_to, today) > 0)
    bg_field_err(errors, "period_to", "range", "the period cannot reach past today");
  if (!json_array_size(errors) && to < from)
    bg_field_err(errors, "period_to", "range", "must not be before period_from");
  if (!bg_time_parse(b.documents_due_at, &due))
    bg_field_err(errors, "documents_due_at", "format", "must be an RFC 3339 time");
  else if (due <= now)
    bg_field_err(errors, "documents_due_at", "range", "must be in the future");
  if (b.seed && !seed_ok(b.seed))
    bg_field_err(errors, "seed", "format", "letters, digits, - and _ only");
  else if (b.seed && aud_has_national_id(json_object_get(r->json, "seed")))
    bg_field_err(errors, "seed", "national-id", "must not hold an ID number (it goes on the log)");
  size_t i;
  json_t *v;
  json_array_foreach(b.auditor_ids, i, v)
  {
    char f[48];
    snprintf(f, sizeof f, "auditor_ids[%zu]", i);
    if (!json_is_string(v) || !bg_uuid_valid(bg_json_uuid_lower(v)))
      bg_field_err(errors, f, "format", "must be an account id (UUID)");
    for (size_t k = 0; k < i && json_is_string(v); k++)
      if (json_is_string(json_array_get(b.auditor_ids, k)) &&
          !strcmp(json_string_value(json_array_get(b.auditor_ids, k)), json_string_value(v)))
        bg_field_err(errors, f, "duplicate", "named twice");
  }
  if (json_array_size(errors)) {
    bg_reply_problem_errors(r, BG_P_VALIDATION, errors, NULL);
    return;
  }
  json_decref(errors);
  /* the IT team with the Ethics Office audits; the one who opens the record is one of them */
  bool listed = false;
  json_array_foreach(b.auditor_ids, i, v) listed = listed || !strcmp(json_string_value(v), r->token.sub);
  if (!aud_has_any_role(r, makers) || !listed) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "an inspection is opened by one of its auditors, from the IT team or the "
                                        "Ethics Office");
    return;
  }
  json_array_foreach(b.auditor_ids, i, v) if (!strcmp(json_string_value(v), b.querier_id))
  {
    bg_reply_problem(r, BG_P_INSPECTION_PARTIES, "nobody audits their own queries");
    return;
  }
  long status;
  json_t *querier = NULL, *qunit = NULL, *aunit = NULL, *auditors = json_array(), *sth = NULL, *pop = NULL;
  struct bg_dbc *c = NULL;
  PGresult *res = NULL, *no = NULL;
  char **ids = NULL;
  size_t *picked = NULL;
  json_t *acc = aud_account_get(r, b.querier_id, &status);
  if (!acc) {
    if (status == 404)
      bg_reply_problem(r, BG_P_INSPECTION_PARTIES, "the audited querier is not an account");
    else
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the querier");
    goto done;
  }
  querier = json_pack("{s:s, s:O, s:O, s:O}", "account_id", b.querier_id, "name", json_object_get(acc, "name"),
                      "title", json_object_get(acc, "title"), "unit_id", json_object_get(acc, "unit_id"));
  const char *qunit_id = json_string_value(json_object_get(acc, "unit_id"));
  if (!qunit_id || !(qunit = unit_entry(r, qunit_id, &status))) {
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the querier's unit");
    goto done;
  }
  if (!(aunit = unit_entry(r, b.auditing_unit_id, &status))) {
    if (status == 404)
      bg_reply_problem(r, BG_P_AUDITING_UNIT_INVALID, "no such unit");
    else
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the auditing unit");
    goto done;
  }
  const char *kind = json_string_value(json_object_get(aunit, "kind"));
  if (!kind || (strcmp(kind, "it_team") != 0 && strcmp(kind, "ethics_office") != 0)) {
    bg_reply_problem(r, BG_P_AUDITING_UNIT_INVALID, "the auditing unit is a %s", kind ? kind : "unit of another kind");
    goto done;
  }
  bool it = false, ethics = false;
  json_array_foreach(b.auditor_ids, i, v)
  {
    json_t *e = auditor_entry(r, json_string_value(v), &it, &ethics);
    if (!e)
      goto done;
    json_array_append_new(auditors, e);
  }
  if (!it || !ethics) {
    bg_reply_problem(r, BG_P_INSPECTION_PARTIES, "the auditors must include the IT team and the Ethics Office");
    goto done;
  }
  if (!(c = bg_db_for(r, aud.db)))
    goto done;
  /* the population: the querier's queries in the period among the first tree_size events */
  if (!(sth = aud_anchor(c)))
    goto failed;
  char size_s[24], t0[BG_TIME_LEN], t1[BG_TIME_LEN], now_s[BG_TIME_LEN], due_s[BG_TIME_LEN];
  snprintf(size_s, sizeof size_s, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(sth, "tree_size")));
  bg_time_fmt(from, t0);
  bg_time_fmt(to + AUD_DAY, t1);
  bg_time_fmt(now, now_s);
  bg_time_fmt(due, due_s);
  const char *pp[] = {b.querier_id, t0, t1, size_s};
  if (!(res = bg_dbc_exec(c, "ov_population", 4, pp, NULL)))
    goto failed;
  size_t n = (size_t)PQntuples(res);
  if (n == 0) {
    bg_reply_problem(r, BG_P_INSPECTION_EMPTY, "no query of this querier is on the log for %s to %s", b.period_from,
                     b.period_to);
    goto done;
  }
  /* Rule 8's inspections are unannounced: an opener who chose the seed could try seeds until
   * the draw left out the cases they wanted left out. So the seed always ends in 32 random bytes
   * of the server's, drawn after the population is fixed; a given seed (up to 128 characters,
   * never "." in it) is only put before them. The recorded seed re-draws the sample. */
  char seed[128 + 1 + 64 + 1], rnd[65];
  unsigned char raw[32];
  if (!bg_random(raw, sizeof raw)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    goto done;
  }
  bg_hex(raw, sizeof raw, rnd);
  if (b.seed)
    snprintf(seed, sizeof seed, "%s.%s", b.seed, rnd);
  else
    snprintf(seed, sizeof seed, "%s", rnd);
  ids = calloc(n, sizeof *ids);
  picked = calloc(n, sizeof *picked);
  if (!ids || !picked) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    goto done;
  }
  for (size_t k = 0; k < n; k++)
    ids[k] = PQgetvalue(res, (int)k, 1);
  size_t m = aud_sample_draw(seed, (const char *const *)ids, n, (size_t)b.sample_size, picked);
  char id[BG_UUID_LEN], no_s[40], sample_s[8], pop_s[24];
  bg_uuid_v4(id);
  snprintf(sample_s, sizeof sample_s, "%ld", b.sample_size);
  snprintf(pop_s, sizeof pop_s, "%zu", n);
  char *q_s = bg_json_dump(querier), *qu_s = bg_json_dump(qunit), *au_s = bg_json_dump(aunit),
       *aud_s = bg_json_dump(auditors);
  /* auditor_ids as a PostgreSQL array literal (UUIDs: nothing to quote) */
  char ids_lit[10 * 38 + 3];
  size_t il = 0;
  ids_lit[il++] = '{';
  json_array_foreach(b.auditor_ids, i, v)
  {
    if (i)
      ids_lit[il++] = ',';
    memcpy(ids_lit + il, json_string_value(v), 36);
    il += 36;
  }
  ids_lit[il++] = '}';
  ids_lit[il] = '\0';
  pop = json_array();
  bool ok = q_s && qu_s && au_s && aud_s && bg_dbc_begin(c) && (no = bg_dbc_exec(c, "ov_in_no", 0, NULL, NULL));
  if (ok) {
    snprintf(no_s, sizeof no_s, "F4-%.4s-%04ld", today, strtol(PQgetvalue(no, 0, 0), NULL, 10));
    const char *pi[] = {id,      no_s,      b.querier_id, q_s,       qunit_id,
                        qu_s,    b.period_from, b.period_to, today, b.auditing_unit_id,
                        au_s,    b.auditing_unit_phone, ids_lit, aud_s, due_s,
                        sample_s, seed,     size_s,       json_string_value(json_object_get(sth, "root_hash")), pop_s,
                        r->token.sub, now_s};
    ok = bg_dbc_run(c, "ov_in_insert", 22, pi, NULL);
  }
  for (size_t k = 0; ok && k < m; k++) {
    int row = (int)picked[k];
    json_t *ev = json_loads(PQgetvalue(res, row, 2), JSON_REJECT_DUPLICATES, NULL);
    const json_t *d = json_object_get(ev, "details"), *purpose = json_object_get(ev, "purpose");
    const char *reg = json_string_value(json_object_get(d, "registration_no"));
    if (!reg)
      reg = json_string_value(json_object_get(purpose, "registration_no"));
    char case_s[24];
    snprintf(case_s, sizeof case_s, "%zu", k + 1);
    char *purpose_s = purpose ? bg_json_dump(purpose) : NULL;
    const char *pc[] = {id,
                        case_s,
                        PQgetvalue(res, row, 0),
                        PQgetvalue(res, row, 1),
                        json_string_value(json_object_get(json_object_get(ev, "object"), "id")),
                        json_string_value(json_object_get(ev, "time")),
                        json_string_value(json_object_get(d, "item")),
                        json_string_value(json_object_get(d, "request_id")),
                        reg,
                        json_string_value(json_object_get(json_object_get(ev, "subject"), "id_masked")),
                        purpose_s};
    ok = ev && bg_dbc_run(c, "ov_case_insert", 11, pc, NULL);
    json_array_append_new(pop, json_pack("{s:I, s:I}", "case_no", (json_int_t)(k + 1), "event_index",
                                         (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10)));
    free(purpose_s);
    json_decref(ev);
  }
  if (ok) {
    json_t *ev = bg_event_new(r, "audit.inspection.created", "inspection", id, "success");
    json_t *d = json_object_get(ev, "details");
    json_object_set_new(d, "inspection_no", json_string(no_s));
    json_object_set_new(d, "querier_id", json_string(b.querier_id));
    json_object_set_new(d, "period", json_pack("{s:s, s:s}", "from", b.period_from, "to", b.period_to));
    json_object_set_new(d, "auditing_unit_id", json_string(b.auditing_unit_id));
    json_object_set(d, "auditor_ids", b.auditor_ids);
    json_object_set_new(d, "documents_due_at", json_string(due_s));
    json_object_set_new(d, "sample", json_pack("{s:I, s:I, s:s, s:O, s:O, s:O}", "requested", (json_int_t)b.sample_size,
                                               "population", (json_int_t)n, "seed", seed, "tree_size",
                                               json_object_get(sth, "tree_size"), "root_hash",
                                               json_object_get(sth, "root_hash"), "cases", pop));
    ok = aud_append_own_tx(c, ev, r->request_id) && bg_dbc_commit(c);
  }
  free(q_s);
  free(qu_s);
  free(au_s);
  free(aud_s);
  if (!ok)
    goto failed;
  reply_inspection(r, c, id, 201);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(res);
  PQclear(no);
  free(ids);
  free(picked);
  json_decref(acc);
  json_decref(querier);
  json_decref(qunit);
  json_decref(aunit);
  json_decref(auditors);
  json_decref(sth);
  json_decref(pop);
  bg_db_release(c);
}

/* ---- read ---- */

/* A list's rows carry no cases: a page of records, each naming the citizens of its sample, would
 * hand out many records' cases in one read that no single record's event describes. The record's
 * own GET has them, recorded. */
static json_t *list_row(PGresult *res, int row, void *arg) { return inspection_json(arg, res, row, false); }

void aud_h_inspections_list(struct bg_request *r)
{
  static const char *const states[] = {"open", "findings_recorded", "signed", "closed", NULL};
  struct bg_page_req pg;
  if (!bg_req_page(r, &pg))
    return;
  const char *state = bg_req_query(r, "state"), *querier = bg_req_query(r, "querier_id");
  bool known = !state;
  for (int i = 0; state && states[i]; i++)
    known = known || !strcmp(state, states[i]);
  if (!known) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "state", "enum", "one of open, findings_recorded, signed, closed");
    return;
  }
  if (querier && !bg_uuid_valid(querier)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "querier_id", "format", "must be a UUID");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  const char *unit = bg_req_has_role(r, "supervisor") && r->token.unit[0] ? r->token.unit : NULL;
  const char *p[] = {aud_is_overseer(r) ? "true" : "false", r->token.sub, unit, state, querier, pg.after_ts,
                     pg.after_id, pg.lim, bg_req_has_role(r, "permission_unit_head") ? "true" : "false"};
  PGresult *res = bg_dbc_exec(c, "ov_in_list", 9, p, NULL);
  json_t *page = res ? bg_page(res, pg.limit, OV_IN_CREATED, OV_IN_ID, list_row, c) : NULL;
  /* a row that could not be built (database failure) is null in the page */
  size_t i;
  json_t *it;
  bool broken = !page;
  json_array_foreach(json_object_get(page, "items"), i, it) broken = broken || json_is_null(it);
  if (broken) {
    json_decref(page);
    bg_db_failed(r, c);
  } else {
    bg_reply_json(r, 200, page);
  }
  PQclear(res);
  bg_db_release(c);
}

/* Fetches (and with lock, locks inside a new transaction) the inspection of path parameter 0 if
 * the caller may see it; NULL after replying. */
static PGresult *fetch(struct bg_request *r, struct bg_dbc *c, bool lock)
{
  return aud_ov_fetch(r, c, "ov_in_get", "ov_in_lock", lock, can_see, "inspection");
}

/* Form 4's cases name citizens (each sampled query's subject mask, registration and purpose):
 * every read of the record is on the log before the answer, as the quarterly review's is, naming
 * the SHA-256 of the record's canonical form as handed out; without the event there is no
 * record (503). The read is recorded after the connection is given back, so a reader never
 * holds one connection while the append waits for another. A refused read hands out nothing and
 * is not recorded. */
void aud_h_inspections_get(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  PGresult *in = fetch(r, c, false);
  json_t *j = in ? inspection_json(c, in, 0, true) : NULL;
  if (in && !j)
    bg_db_failed(r, c);
  PQclear(in);
  bg_db_release(c);
  if (!j)
    return;
  size_t clen;
  const char *why = NULL;
  char *canon = aud_canon(j, &clen, &why), sha[65];
  if (!canon) {
    bg_log(BG_LOG_ERROR, r->request_id, "inspection record has no canonical form: %s", why ? why : "?");
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    json_decref(j);
    return;
  }
  bg_sha256_hex(canon, clen, sha);
  free(canon);
  json_t *ev = bg_event_new(r, "audit.inspection.read", "inspection", json_string_value(json_object_get(j, "id")),
                            "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set(d, "inspection_no", json_object_get(j, "inspection_no"));
  json_object_set(d, "state", json_object_get(j, "state"));
  json_object_set(d, "case_count", json_object_get(j, "case_count"));
  json_object_set_new(d, "record_sha256", json_string(sha));
  if (!aud_append_own(ev, r->request_id)) {
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, "the read could not be recorded on the log, so it is refused");
    json_decref(j);
    return;
  }
  bg_reply_json(r, 200, j);
}

/* A refusal inside a step's transaction. */
static void refuse(struct bg_request *r, struct bg_dbc *c, enum bg_problem p, const char *detail)
{
  if (c->in_tx)
    bg_dbc_rollback(c);
  bg_reply_problem(r, p, "%s", detail);
}

static bool state_is(PGresult *in, const char *state) { return !strcmp(PQgetvalue(in, 0, OV_IN_STATE), state); }

static int case_count(PGresult *cases, long case_no)
{
  for (int i = 0; i < PQntuples(cases); i++)
    if (strtol(PQgetvalue(cases, i, OV_CASE_NO), NULL, 10) == case_no)
      return i;
  return -1;
}

/* ---- the querier's documents ---- */

/* Each element of arr parsed with item_spec into items (size bytes each: a struct whose first
 * member is its long case_no), errors named "<name>[i].<field>", a case named twice refused;
 * extra, if given, adds an item's own errors. Replies validation-failed with every error and
 * returns false when there are any; errors is consumed either way. */
static bool parse_cases(struct bg_request *r, const json_t *arr, const char *name, const struct bg_field *item_spec,
                        void *items, size_t size, json_t *errors,
                        void (*extra)(const void *item, const char *prefix, json_t *errors))
{
  for (size_t i = 0; i < json_array_size(arr); i++) {
    char prefix[48], f[64];
    void *item = (char *)items + i * size;
    snprintf(prefix, sizeof prefix, "%s[%zu].", name, i);
    bg_json_parse_into(json_array_get(arr, i), item_spec, item, errors, prefix);
    if (extra)
      extra(item, prefix, errors);
    long no = *(const long *)item; /* the first member */
    for (size_t k = 0; k < i && no; k++)
      if (*(const long *)((char *)items + k * size) == no) {
        snprintf(f, sizeof f, "%scase_no", prefix);
        bg_field_err(errors, f, "duplicate", "the same case twice");
      }
  }
  if (json_array_size(errors)) {
    bg_reply_problem_errors(r, BG_P_VALIDATION, errors, NULL);
    return false;
  }
  json_decref(errors);
  return true;
}

struct response_item {
  long case_no;
  const char *case_reference, *explanation;
};
struct responses_body {
  json_t *responses;
};

void aud_h_inspections_responses(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("responses", BG_F_ARRAY, true, struct responses_body, responses, .min = 1, .max = 200), BG_FIELD_END};
  static const struct bg_field item_spec[] = {
    BG_FIELD("case_no", BG_F_INT, true, struct response_item, case_no, .imin = 1, .imax = 200),
    BG_FIELD("case_reference", BG_F_STRING, true, struct response_item, case_reference, .min = 1, .max = 100),
    BG_FIELD("explanation", BG_F_STRING, true, struct response_item, explanation, .min = 1, .max = 4000),
    BG_FIELD_END};
  struct responses_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  size_t n = json_array_size(b.responses), i;
  struct response_item *items = calloc(n, sizeof *items);
  if (!items) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  if (!parse_cases(r, b.responses, "responses", item_spec, items, sizeof *items, json_array(), NULL)) {
    free(items);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *in = NULL, *cases = NULL;
  if (!c)
    goto done;
  if (!(in = fetch(r, c, true)))
    goto done;
  const char *id = PQgetvalue(in, 0, OV_IN_ID);
  if (strcmp(r->token.sub, PQgetvalue(in, 0, OV_IN_QUERIER_ID)) != 0) {
    refuse(r, c, BG_P_NOT_AUDITED_QUERIER, "the audited querier submits the documents");
    goto done;
  }
  if (!state_is(in, "open")) {
    refuse(r, c, BG_P_INSPECTION_STATE, "the findings are recorded; the documents are closed");
    goto done;
  }
  const char *p[] = {id};
  if (!(cases = bg_dbc_exec(c, "ov_cases", 1, p, NULL)))
    goto failed;
  time_t now = bg_now(), due = 0;
  bg_time_parse(PQgetvalue(in, 0, OV_IN_DUE), &due);
  bool late = now > due;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(now, now_s);
  json_t *nos = json_array();
  for (i = 0; i < n; i++) {
    int row = case_count(cases, items[i].case_no);
    char msg[96];
    if (row < 0) {
      json_decref(nos);
      snprintf(msg, sizeof msg, "case %ld is not in the sample", items[i].case_no);
      refuse(r, c, BG_P_CASE_UNKNOWN, msg);
      goto done;
    }
    if (!PQgetisnull(cases, row, OV_CASE_RESPONDED)) {
      json_decref(nos);
      snprintf(msg, sizeof msg, "case %ld was answered at %s", items[i].case_no,
               PQgetvalue(cases, row, OV_CASE_RESPONDED));
      refuse(r, c, BG_P_CASE_ANSWERED, msg);
      goto done;
    }
    char no[8];
    snprintf(no, sizeof no, "%ld", items[i].case_no);
    const char *pr[] = {id, no, items[i].case_reference, items[i].explanation, now_s, late ? "true" : "false"};
    if (!bg_dbc_run(c, "ov_case_respond", 6, pr, NULL)) {
      json_decref(nos);
      goto failed;
    }
    json_array_append_new(nos, json_integer(items[i].case_no));
  }
  json_t *ev = bg_event_new(r, "audit.inspection.responded", "inspection", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "case_nos", nos);
  json_object_set_new(json_object_get(ev, "details"), "late", json_boolean(late));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  reply_inspection(r, c, id, 200);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(in);
  PQclear(cases);
  free(items);
  bg_db_release(c);
}

/* ---- the auditors' findings and opinion ---- */

struct finding_item {
  long case_no;
  const char *result, *note;
};
/* a breach states what was breached */
static void breach_note(const void *item, const char *prefix, json_t *errors)
{
  const struct finding_item *f = item;
  if (f->result && !strcmp(f->result, "breach") && !f->note) {
    char field[64];
    snprintf(field, sizeof field, "%snote", prefix);
    bg_field_err(errors, field, "required", "a breach states what was breached");
  }
}

struct findings_body {
  json_t *findings;
  const char *opinion;
  int suspend_grants;
};

void aud_h_inspections_findings(struct bg_request *r)
{
  static const char *const results[] = {"compliant", "breach", "observation", NULL};
  static const struct bg_field spec[] = {
    BG_FIELD("findings", BG_F_ARRAY, false, struct findings_body, findings, .max = 200),
    BG_FIELD("opinion", BG_F_STRING, false, struct findings_body, opinion, .min = 1, .max = 4000),
    BG_FIELD("suspend_grants", BG_F_BOOL, false, struct findings_body, suspend_grants), BG_FIELD_END};
  static const struct bg_field item_spec[] = {
    BG_FIELD("case_no", BG_F_INT, true, struct finding_item, case_no, .imin = 1, .imax = 200),
    BG_FIELD("result", BG_F_ENUM, true, struct finding_item, result, .enumv = results),
    BG_FIELD("note", BG_F_STRING, false, struct finding_item, note, .min = 1, .max = 4000), BG_FIELD_END};
  struct findings_body b = {.suspend_grants = -1};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  size_t n = json_array_size(b.findings), i;
  struct finding_item *items = calloc(n ? n : 1, sizeof *items);
  if (!items) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  json_t *errors = json_array();
  if (!n && !b.opinion)
    bg_field_err(errors, "findings", "required", "give findings, an opinion or both");
  if (!parse_cases(r, b.findings, "findings", item_spec, items, sizeof *items, errors, breach_note)) {
    free(items);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *in = NULL, *cases = NULL;
  json_t *opened = json_array();
  if (!c)
    goto done;
  if (!(in = fetch(r, c, true)))
    goto done;
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", PQgetvalue(in, 0, OV_IN_ID));
  if (!is_auditor(in, r->token.sub)) {
    refuse(r, c, BG_P_NOT_AUDITOR, "the inspection's auditors record findings");
    goto done;
  }
  if (!state_is(in, "open")) {
    refuse(r, c, BG_P_INSPECTION_STATE, "the findings and opinion are recorded already");
    goto done;
  }
  const char *p[] = {id};
  if (!(cases = bg_dbc_exec(c, "ov_cases", 1, p, NULL)))
    goto failed;
  time_t now = bg_now(), due = 0;
  bg_time_parse(PQgetvalue(in, 0, OV_IN_DUE), &due);
  char now_s[BG_TIME_LEN], ca_due[BG_TIME_LEN];
  bg_time_fmt(now, now_s);
  bg_time_fmt(now + AUD_CORRECTIVE_DUE_DAYS * AUD_DAY, ca_due);
  json_t *recorded = json_array();
  for (i = 0; i < n; i++) {
    int row = case_count(cases, items[i].case_no);
    char msg[128];
    enum bg_problem why = BG_P__COUNT;
    if (row < 0) {
      why = BG_P_CASE_UNKNOWN;
      snprintf(msg, sizeof msg, "case %ld is not in the sample", items[i].case_no);
    } else if (!PQgetisnull(cases, row, OV_CASE_FINDING)) {
      why = BG_P_CASE_FOUND;
      snprintf(msg, sizeof msg, "case %ld has a finding already", items[i].case_no);
    } else if (PQgetisnull(cases, row, OV_CASE_RESPONDED) && now <= due) {
      /* the querier has until the deadline to explain the case */
      why = BG_P_CASE_RESPONSE_PENDING;
      snprintf(msg, sizeof msg, "case %ld: the querier's documents are due by %s", items[i].case_no,
               PQgetvalue(in, 0, OV_IN_DUE));
    }
    if (why != BG_P__COUNT) {
      json_decref(recorded);
      refuse(r, c, why, msg);
      goto done;
    }
    char no[8];
    snprintf(no, sizeof no, "%ld", items[i].case_no);
    const char *pf[] = {id, no, items[i].result, items[i].note, r->token.sub, now_s};
    if (!bg_dbc_run(c, "ov_case_find", 6, pf, NULL)) {
      json_decref(recorded);
      goto failed;
    }
    json_array_append_new(recorded, json_pack("{s:I, s:s}", "case_no", (json_int_t)items[i].case_no, "result",
                                              items[i].result));
    if (strcmp(items[i].result, "breach") != 0)
      continue;
    /* rule 8: correct at once, report within ten days */
    char ca[BG_UUID_LEN];
    bg_uuid_v4(ca);
    bool suspend = b.suspend_grants == 1;
    const char *pc[] = {ca,           id,     no,     PQgetvalue(in, 0, OV_IN_QUERIER_ID), PQgetvalue(in, 0, OV_IN_QUNIT_ID),
                        items[i].note, r->token.sub, now_s, ca_due, suspend ? "requested" : "none"};
    if (!bg_dbc_run(c, "ov_ca_insert", 10, pc, NULL)) {
      json_decref(recorded);
      goto failed;
    }
    json_t *ev = bg_event_new(r, "audit.corrective_action.opened", "corrective_action", ca, "success");
    json_t *d = json_object_get(ev, "details");
    json_object_set_new(d, "inspection_id", json_string(id));
    json_object_set_new(d, "inspection_no", json_string(PQgetvalue(in, 0, OV_IN_NO)));
    json_object_set_new(d, "case_no", json_integer(items[i].case_no));
    json_object_set_new(d, "account_id", json_string(PQgetvalue(in, 0, OV_IN_QUERIER_ID)));
    json_object_set_new(d, "due_at", json_string(ca_due));
    json_object_set_new(d, "suspend_grants", json_boolean(suspend));
    if (!aud_append_own_tx(c, ev, r->request_id)) {
      json_decref(recorded);
      goto failed;
    }
    if (suspend)
      json_array_append_new(opened, json_string(ca));
  }
  if (b.opinion) {
    const char *po[] = {id, b.opinion, r->token.sub, now_s};
    if (!bg_dbc_run(c, "ov_in_opinion", 4, po, NULL)) {
      json_decref(recorded);
      goto failed;
    }
  }
  /* every case found and an opinion given: the record goes to its signatures */
  PQclear(cases);
  bool complete = (cases = bg_dbc_exec(c, "ov_cases", 1, p, NULL)) != NULL;
  for (int k = 0; cases && k < PQntuples(cases); k++)
    complete = complete && !PQgetisnull(cases, k, OV_CASE_FINDING);
  if (!cases) {
    json_decref(recorded);
    goto failed;
  }
  complete = complete && (b.opinion || !PQgetisnull(in, 0, OV_IN_OPINION));
  const char *ps[] = {id, "findings_recorded", now_s};
  if (complete && !bg_dbc_run(c, "ov_in_state", 3, ps, NULL)) {
    json_decref(recorded);
    goto failed;
  }
  json_t *ev = bg_event_new(r, "audit.inspection.findings_recorded", "inspection", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "findings", recorded);
  json_object_set_new(d, "opinion_given", json_boolean(b.opinion != NULL));
  json_object_set_new(d, "complete", json_boolean(complete));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  /* the immediate suspension goes to accounts after the finding is on record, so a refusal
   * there cannot undo the finding; a failed one is retried on the corrective action */
  json_t *ca;
  json_array_foreach(opened, i, ca) aud_corrective_apply_suspension(r, c, json_string_value(ca));
  reply_inspection(r, c, id, 200);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(in);
  PQclear(cases);
  json_decref(opened);
  free(items);
  bg_db_release(c);
}

/* ---- signatures ---- */

struct signoff_body {
  const char *capacity;
};

void aud_h_inspections_signoffs(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("capacity", BG_F_ENUM, true, struct signoff_body, capacity, .enumv = capacities), BG_FIELD_END};
  struct signoff_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  long status;
  json_t *me = aud_account_get(r, r->token.sub, &status);
  if (!me) {
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the signer");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *in = NULL, *signs = NULL;
  if (!c)
    goto done;
  if (!(in = fetch(r, c, true)))
    goto done;
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", PQgetvalue(in, 0, OV_IN_ID));
  bool unavailable = false;
  bool entitled = !strcmp(b.capacity, "querier")   ? !strcmp(r->token.sub, PQgetvalue(in, 0, OV_IN_QUERIER_ID))
                  : !strcmp(b.capacity, "auditor") ? is_auditor(in, r->token.sub)
                  : !strcmp(b.capacity, "using_unit_supervisor")
                      ? (using_supervisor(r, in) && strcmp(r->token.sub, PQgetvalue(in, 0, OV_IN_QUERIER_ID)) != 0) ||
                          director_for_supervisor(r, in, &unavailable)
                      : auditing_supervisor(r, in);
  if (!entitled && unavailable) {
    refuse(r, c, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot say whether the querier is a supervisor");
    goto done;
  }
  if (!entitled) {
    refuse(r, c, BG_P_SIGNOFF_NOT_ENTITLED, "you cannot sign this record in that capacity");
    goto done;
  }
  if (!state_is(in, "findings_recorded")) {
    refuse(r, c, BG_P_INSPECTION_STATE, state_is(in, "open") ? "the record is signed once its findings and opinion are in"
                                                             : "the record is signed already");
    goto done;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *name = json_string_value(json_object_get(me, "name"));
  const char *title = json_string_value(json_object_get(me, "title"));
  const char *unit = json_string_value(json_object_get(me, "unit_id"));
  const char *pi[] = {id, b.capacity, r->token.sub, name ? name : "", title, unit, now_s};
  struct bg_dberr err = {0};
  if (!bg_dbc_run(c, "ov_signoff_insert", 7, pi, &err)) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
      refuse(r, c, BG_P_SIGNOFF_EXISTS, "that capacity has signed, or you signed in another");
      goto done;
    }
    goto failed;
  }
  const char *p[] = {id};
  if (!(signs = bg_dbc_exec(c, "ov_signoffs", 1, p, NULL)))
    goto failed;
  bool all = PQntuples(signs) == 4;
  const char *ps[] = {id, "signed", now_s};
  if (all && !bg_dbc_run(c, "ov_in_state", 3, ps, NULL))
    goto failed;
  json_t *ev = bg_event_new(r, "audit.inspection.signed_off", "inspection", id, "success");
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "capacity", json_string(b.capacity));
  json_object_set_new(d, "name", json_string(name ? name : ""));
  json_object_set_new(d, "title", title ? json_string(title) : json_null());
  json_object_set_new(d, "all_signed", json_boolean(all));
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  reply_inspection(r, c, id, 200);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(in);
  PQclear(signs);
  json_decref(me);
  bg_db_release(c);
}

/* ---- the Director's review ---- */

struct director_body {
  const char *comment;
};

void aud_h_inspections_director(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("comment", BG_F_STRING, false, struct director_body, comment, .min = 1, .max = 4000), BG_FIELD_END};
  struct director_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  if (b.comment && aud_has_national_id(json_object_get(r->json, "comment"))) {
    bg_reply_field_error(r, BG_P_VALIDATION, "comment", "national-id", "must not hold an ID number (it goes on the log)");
    return;
  }
  if (!bg_req_has_role(r, "director")) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "the Director reviews and files Form 4");
    return;
  }
  long status;
  json_t *me = aud_account_get(r, r->token.sub, &status);
  if (!me) {
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "accounts cannot name the Director");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  PGresult *in = NULL;
  char *review_s = NULL;
  if (!c)
    goto done;
  if (!(in = fetch(r, c, true)))
    goto done;
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", PQgetvalue(in, 0, OV_IN_ID));
  if (!state_is(in, "signed")) {
    refuse(r, c, BG_P_INSPECTION_STATE, state_is(in, "closed") ? "the Director has reviewed this record"
                                                               : "the record is reviewed once all four have signed");
    goto done;
  }
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  json_t *review = json_pack("{s:s, s:O, s:O, s:o, s:s}", "account_id", r->token.sub, "name",
                             json_object_get(me, "name"), "title", json_object_get(me, "title"), "comment",
                             b.comment ? json_string(b.comment) : json_null(), "reviewed_at", now_s);
  review_s = bg_json_dump(review);
  json_decref(review);
  const char *pd[] = {id, review_s, now_s};
  if (!review_s || !bg_dbc_run(c, "ov_in_director", 3, pd, NULL))
    goto failed;
  json_t *ev = bg_event_new(r, "audit.inspection.reviewed", "inspection", id, "success");
  json_object_set_new(json_object_get(ev, "details"), "comment", b.comment ? json_string(b.comment) : json_null());
  if (!aud_append_own_tx(c, ev, r->request_id) || !bg_dbc_commit(c))
    goto failed;
  reply_inspection(r, c, id, 200);
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(in);
  free(review_s);
  json_decref(me);
  bg_db_release(c);
}
