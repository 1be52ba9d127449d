/* What the handlers of both forms share: the legal statement every form must make (rule 5,
 * Form 3: "not accepted" without a clear legal basis and relevance), subjects in and out,
 * coverage of the items by the law, the querier's grants, and the request row itself. */
#include "wf.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/svc.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELEVANCE_MIN 15

bool wf_check_legal_statement(struct bg_request *r, const char *legal_basis_id, const char *article,
                              const char *relevance)
{
  json_t *errors = json_array();
  if (!legal_basis_id)
    bg_field_err(errors, "legal_basis_id", "required", "name the law the query is based on (GET /v1/legal-bases)");
  if (wf_visible_chars(article) == 0)
    bg_field_err(errors, "article", "required", "name the article of that law");
  if (wf_visible_chars(relevance) == 0)
    bg_field_err(errors, "relevance", "required", "explain how the case relates to the query");
  else if (wf_visible_chars(relevance) < RELEVANCE_MIN)
    bg_field_err(errors, "relevance", "length",
                 "at least 15 characters, not counting spaces: explain how the case relates to the query");
  if (json_array_size(errors) == 0) {
    json_decref(errors);
    return true;
  }
  bg_reply_problem_errors(r, BG_P_LEGAL_BASIS_REQUIRED, errors,
                          "a form without a clear legal basis and relevance is not accepted (rule 5)");
  return false;
}

bool wf_check_case_reference(struct bg_request *r, const char *case_reference)
{
  if (!case_reference || wf_visible_chars(case_reference) > 0)
    return true;
  bg_reply_field_error(r, BG_P_VALIDATION, "case_reference", "required",
                       "a case reference made only of spaces or invisible characters names no case");
  return false;
}

json_t *wf_parse_subjects(struct bg_request *r, const json_t *subjects)
{
  json_t *errors = json_array(), *items = NULL;
  enum wf_subjects_result res = wf_subjects_check(subjects, errors, &items);
  switch (res) {
  case WF_SUBJECTS_OK:
    json_decref(errors);
    return items;
  case WF_SUBJECTS_UNKNOWN_FIELD:
    bg_reply_problem_errors(r, BG_P_UNKNOWN_FIELD, errors, "a subject has a field this endpoint does not accept");
    break;
  case WF_SUBJECTS_ITEM_UNKNOWN:
    bg_reply_problem_errors(r, BG_P_ITEM_UNKNOWN, errors, "an item is not in the BLI catalogue");
    break;
  default:
    bg_reply_problem_errors(r, BG_P_VALIDATION, errors, "a subject is invalid");
    break;
  }
  return NULL;
}

/* Adds a machine-readable "items" member to the problem just replied. */
static void problem_items(struct bg_request *r, json_t *items)
{
  if (r->reply)
    json_object_set(r->reply, "items", items);
}

bool wf_check_coverage(struct bg_request *r, const char *legal_basis_id, const json_t *items)
{
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return false;
  const char *p[] = {legal_basis_id};
  PGresult *res = bg_dbc_exec(c, "lb_get", 1, p, NULL);
  bool ok = false;
  if (!res) {
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0) {
    bg_reply_field_error(r, BG_P_LEGAL_BASIS_UNKNOWN, "legal_basis_id", "unknown", "no such legal basis");
  } else {
    json_t *covered = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
    json_t *missing = wf_items_missing(items, covered);
    if (json_array_size(missing) == 0) {
      ok = true;
    } else {
      json_t *errors = json_array();
      char list[128] = "", detail[256];
      size_t i;
      json_t *v;
      json_array_foreach(missing, i, v)
      {
        char d[160];
        snprintf(d, sizeof d, "%s is not among the items %s may justify", json_string_value(v), PQgetvalue(res, 0, 2));
        bg_field_err(errors, "items", "not-covered", d);
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", json_string_value(v));
      }
      snprintf(detail, sizeof detail, "%s does not cover: %s", PQgetvalue(res, 0, 2), list);
      bg_reply_problem_errors(r, BG_P_ITEM_NOT_COVERED, errors, detail);
      problem_items(r, missing);
    }
    json_decref(missing);
    json_decref(covered);
  }
  PQclear(res);
  bg_db_release(c);
  return ok;
}

bool wf_check_grants(struct bg_request *r, const char *querier_id, const json_t *items)
{
  json_t *grants = NULL;
  long st = wf_grants_get(r, querier_id, &grants);
  if (st != 200) {
    json_decref(grants);
    if (st == 404)
      bg_reply_field_error(r, BG_P_QUERIER_INVALID, "querier_id", "unknown", "no such account");
    else
      wf_reply_accounts_down(r, st);
    return false;
  }
  json_t *active = wf_active_items(grants);
  json_t *missing = wf_items_missing(items, active);
  bool ok = json_array_size(missing) == 0;
  if (!ok) {
    json_t *errors = json_array();
    char list[128] = "", detail[200];
    size_t i;
    json_t *v;
    json_array_foreach(missing, i, v)
    {
      char d[96];
      snprintf(d, sizeof d, "the querier holds no active grant for %s today", json_string_value(v));
      bg_field_err(errors, "items", "not-granted", d);
      size_t n = strlen(list);
      snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", json_string_value(v));
    }
    snprintf(detail, sizeof detail, "the querier holds no active grant for: %s", list);
    bg_reply_problem_errors(r, BG_P_ITEMS_NOT_GRANTED, errors, detail);
    problem_items(r, missing);
  }
  json_decref(missing);
  json_decref(active);
  json_decref(grants);
  return ok;
}

json_t *wf_seal_subjects(const json_t *subjects)
{
  json_t *out = json_array();
  size_t i;
  json_t *s;
  json_array_foreach(subjects, i, s)
  {
    const char *nid = json_string_value(json_object_get(s, "national_id"));
    char hmac[65], masked[11];
    char *enc = NULL;
    if (!nid || !bg_id_hmac(nid, hmac) || !(enc = wf_seal(nid, hmac))) {
      json_decref(out);
      return NULL;
    }
    bg_twid_mask(nid, masked);
    json_array_append_new(out, json_pack("{s:O, s:s, s:s, s:s, s:O}", "name", json_object_get(s, "name"), "id_hmac",
                                         hmac, "id_masked", masked, "id_enc", enc, "items",
                                         json_object_get(s, "items")));
    free(enc);
  }
  return out;
}

json_t *wf_event_subjects(const json_t *sealed)
{
  json_t *out = json_array();
  size_t i;
  json_t *s;
  json_array_foreach(sealed, i, s)
    json_array_append_new(out, json_pack("{s:O, s:O}", "id_hmac", json_object_get(s, "id_hmac"), "id_masked",
                                         json_object_get(s, "id_masked")));
  return out;
}

json_t *wf_subjects_json(PGresult *res, bool full, bool with_uses)
{
  json_t *out = json_array();
  for (int i = 0; i < PQntuples(res); i++) {
    long seq = 0;
    bg_parse_long(PQgetvalue(res, i, 1), 0, 1000, &seq);
    json_t *items = json_loads(PQgetvalue(res, i, 6), 0, NULL);
    json_t *o = json_pack("{s:s, s:i, s:s, s:s}", "id", PQgetvalue(res, i, 0), "seq", (int)seq, "name",
                          PQgetvalue(res, i, 2), "national_id_masked", PQgetvalue(res, i, 3));
    if (full) {
      char *nid = wf_open(PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
      if (!nid) {
        json_decref(items);
        json_decref(o);
        json_decref(out);
        return NULL;
      }
      json_object_set_new(o, "national_id", json_string(nid));
      free(nid);
    }
    if (with_uses) {
      json_t *uses = PQgetisnull(res, i, 7) ? NULL : json_loads(PQgetvalue(res, i, 7), 0, NULL);
      json_t *list = json_array();
      size_t k;
      json_t *it;
      json_array_foreach(items, k, it)
      {
        json_t *u = json_object_get(uses, json_string_value(it));
        json_int_t used = json_integer_value(json_array_get(u, 0)), max = json_integer_value(json_array_get(u, 1));
        json_array_append_new(list, json_pack("{s:O, s:I, s:I, s:I}", "item", it, "used", used, "max_uses", max,
                                              "remaining", max - used));
      }
      json_decref(uses);
      json_object_set_new(o, "items", list);
      json_decref(items);
    } else {
      json_object_set_new(o, "items", items ? items : json_array());
    }
    json_array_append_new(out, o);
  }
  return out;
}

bool wf_record_disclosure(struct bg_request *r, struct bg_dbc *c, const char *kind, const char *id, PGresult *subjects)
{
  char type[64];
  snprintf(type, sizeof type, "%s.subjects_disclosed", kind);
  json_t *ev = bg_event_new(r, type, kind, id, "success");
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(subjects); i++)
    json_array_append_new(list, json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(subjects, i, 5), "id_masked",
                                          PQgetvalue(subjects, i, 3)));
  json_object_set_new(ev, "subjects", list);
  return bg_outbox_add(c, ev);
}

bool wf_insert_request_row(struct bg_dbc *c, const struct wf_new_request *q)
{
  char max[16], count[16];
  snprintf(max, sizeof max, "%d", q->max_uses);
  snprintf(count, sizeof count, "%d", q->subject_count);
  const char *p[] = {q->id,          q->unit_id,        q->querier_id,        q->querier_name,   q->requester_id,
                     q->requester_name, q->requester_unit_id, q->submitted_by, q->legal_basis_id, q->article,
                     q->relevance,   q->case_reference, max,                  count,             q->decider_role,
                     q->external_application_id, q->now};
  return bg_dbc_run(c, "qr_insert", 17, p, NULL);
}

const char *wf_decider_role(const json_t *querier, const json_t *requester)
{
  bool requester_same_unit = requester && !strcmp(wf_str(requester, "unit_id"), wf_str(querier, "unit_id"));
  if (wf_has_role(querier, "supervisor") || (requester_same_unit && wf_has_role(requester, "supervisor")))
    return "director";
  return "supervisor";
}

bool wf_is_overseer(struct bg_request *r)
{
  return bg_req_has_role(r, "director") || bg_req_has_role(r, "ethics_officer") ||
         bg_req_has_role(r, "permission_admin");
}

static bool date_ok(const char *s)
{
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
      return false;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return y >= 1900 && m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] && !(m == 2 && d == 29 && !leap);
}

bool wf_date_filters(struct bg_request *r, const char **from, const char **to)
{
  *from = bg_req_query(r, "from");
  *to = bg_req_query(r, "to");
  if (*from && !date_ok(*from)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "from", "invalid", "must be a date YYYY-MM-DD");
    return false;
  }
  if (*to && !date_ok(*to)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, "to", "invalid", "must be a date YYYY-MM-DD");
    return false;
  }
  return true;
}

bool wf_uuid_query(struct bg_request *r, const char *name, const char **out)
{
  *out = bg_req_query(r, name);
  if (*out && !bg_uuid_valid(*out)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, name, "invalid", "must be a UUID");
    return false;
  }
  return true;
}

