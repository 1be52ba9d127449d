/* Consumption for the proxy (DESIGN.md §4 step 3): before a BLI query, bliproxy takes one use
 * of (request, subject, item) for the querier, or is refused with a code that says why; an
 * upstream failure gives the use back. Internal: a client token with scope requests:consume. */
#include "wf.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct consume_body {
  const char *querier_id, *querier_unit_id, *subject_id, *national_id, *item, *consumption_id;
};

static json_t *subject_event(PGresult *s, int hmac_col, int mask_col)
{
  return json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(s, 0, hmac_col), "id_masked", PQgetvalue(s, 0, mask_col));
}

/* After a use is taken or given back, a linked Form 3 application is closed when every
 * (subject, item) has been queried, and opened again when a release undoes that. The
 * application is locked before the uses are counted: two uses of different pairs taken at once
 * would each count before the other committed, see one pair undone, and leave the application
 * open for good (read committed: the count after the lock sees what the lock waited for). */
static bool follow_completion(struct bg_request *r, struct bg_dbc *c, const char *request_id, const char *now_s)
{
  const char *p[] = {request_id};
  PGresult *app = bg_dbc_exec(c, "ea_by_request", 1, p, NULL);
  PGresult *done = app ? bg_dbc_exec(c, "qr_all_done", 1, p, NULL) : NULL;
  bool ok = done && app;
  if (ok && PQntuples(app) == 1) {
    bool all = PQgetvalue(done, 0, 0)[0] == 't';
    const char *state = PQgetvalue(app, 0, 1);
    bool completed = !strcmp(state, "closed") && !PQgetisnull(app, 0, 2) && !strcmp(PQgetvalue(app, 0, 2), "completed");
    const char *to = NULL, *reason = NULL;
    if (all && !strcmp(state, "approved")) {
      to = "closed";
      reason = "completed";
    } else if (!all && completed) {
      to = "approved";
    }
    if (to) {
      const char *ps[] = {PQgetvalue(app, 0, 0), to, reason, now_s};
      json_t *ev = bg_event_new(r, "external_application.state_changed", "external_application",
                                PQgetvalue(app, 0, 0), "success");
      json_object_set_new(json_object_get(ev, "details"), "state", json_string(to));
      json_object_set_new(json_object_get(ev, "details"), "close_reason", reason ? json_string(reason) : json_null());
      ok = bg_dbc_run(c, "ea_set_state", 4, ps, NULL) && bg_outbox_add(c, ev);
    }
  }
  PQclear(done);
  PQclear(app);
  return ok;
}

/* Columns of qc_check_* after the request's (QRCOLS_NOUSAGE): the subject (NULL when it is
 * not on the request), whether the item is on it, and whether a use of it is left. */
enum { QC_SUBJECT = QR_UPDATED + 1, QC_NAME, QC_MASKED, QC_ENC, QC_HMAC, QC_ITEM_LISTED, QC_USE_LEFT };

/* Round trip 1: the request, the subject and the use, without a lock (it only advises). */
static PGresult *consume_check(struct bg_dbc *c, const char *id, const char *now_s, const struct consume_body *b,
                               const char *hmac)
{
  const char *p[] = {id, now_s, b->subject_id ? b->subject_id : hmac, b->item};
  return bg_dbc_exec(c, b->subject_id ? "qc_check_by_id" : "qc_check_by_hmac", 4, p, NULL);
}

/* The refusals, in this order, each with its own code; BG_P__COUNT when none applies. Whose
 * request it is comes first: anything later (its state, its subjects and items, its uses) is the
 * request's querier's to learn, not another querier's who holds its id. */
static enum bg_problem consume_refusal(PGresult *q, const struct consume_body *b)
{
  if (PQntuples(q) == 0)
    return BG_P_NOT_FOUND;
  if (strcmp(PQgetvalue(q, 0, QR_QUERIER), b->querier_id) != 0)
    return BG_P_NOT_REQUEST_QUERIER;
  /* rule 5: a request is for its unit's business, approved by that unit's supervisor; a querier
   * who has moved to another unit no longer does it (a request's unit never changes, so round
   * trip 2 need not look again) */
  if (strcmp(PQgetvalue(q, 0, QR_UNIT), b->querier_unit_id) != 0)
    return BG_P_REQUEST_OTHER_UNIT;
  const char *state = PQgetvalue(q, 0, QR_STATE);
  if (!strcmp(state, "expired"))
    return BG_P_REQUEST_EXPIRED;
  if (strcmp(state, "approved") != 0)
    return BG_P_REQUEST_NOT_APPROVED;
  if (PQgetisnull(q, 0, QC_SUBJECT))
    return BG_P_SUBJECT_NOT_ON_REQUEST;
  if (strcmp(PQgetvalue(q, 0, QC_ITEM_LISTED), "t") != 0)
    return BG_P_ITEM_NOT_ON_REQUEST;
  if (strcmp(PQgetvalue(q, 0, QC_USE_LEFT), "t") != 0)
    return BG_P_USES_EXHAUSTED;
  return BG_P__COUNT;
}

static void reply_refusal(struct bg_request *r, enum bg_problem refuse, PGresult *q)
{
  if (refuse == BG_P_NOT_FOUND)
    bg_reply_problem(r, refuse, "no such query request");
  else if (refuse == BG_P_REQUEST_EXPIRED || refuse == BG_P_REQUEST_NOT_APPROVED)
    bg_reply_problem(r, refuse, "the request is %s", PQgetvalue(q, 0, QR_STATE));
  else
    bg_reply_problem(r, refuse, NULL);
}

/* Called by bliproxy before every BLI query, so it is kept to two round trips (it was seven,
 * in a transaction, and the largest share of workflow's database time): round trip 1 reads
 * and refuses, round trip 2 (qc_take) takes the use, records the consumption and the event in
 * one statement that re-checks the request itself. A request linked to a Form 3 application
 * also closes (or reopens) the application, so there qc_take runs in a transaction with that. */
void wf_h_consume(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("querier_id", BG_F_UUID, true, struct consume_body, querier_id),
    /* the querier's unit now, as accounts told the proxy with the session and the grant */
    BG_FIELD("querier_unit_id", BG_F_UUID, true, struct consume_body, querier_unit_id),
    BG_FIELD("subject_id", BG_F_UUID, false, struct consume_body, subject_id),
    BG_FIELD("national_id", BG_F_NATIONAL_ID, false, struct consume_body, national_id),
    BG_FIELD("item", BG_F_STRING, true, struct consume_body, item, .min = 1, .max = 16),
    /* the caller's own id for the use, so that one it stopped waiting for can still be given back */
    BG_FIELD("consumption_id", BG_F_UUID, false, struct consume_body, consumption_id),
    BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct consume_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  if (!b.subject_id == !b.national_id) {
    bg_reply_field_error(r, BG_P_VALIDATION, b.subject_id ? "national_id" : "subject_id", "exclusive",
                         "name the subject by exactly one of subject_id and national_id");
    return;
  }
  char hmac[65];
  if (b.national_id && !bg_id_hmac(b.national_id, hmac)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN], cid[BG_UUID_LEN];
  bg_time_fmt(bg_now(), now_s);
  if (b.consumption_id)
    snprintf(cid, sizeof cid, "%s", b.consumption_id);
  else
    bg_uuid_v4(cid);
  PGresult *q = NULL, *u = NULL, *a = NULL;
  json_t *purpose = NULL;
  char *nid = NULL, *evtext = NULL;
  if (!(q = consume_check(c, id, now_s, &b, hmac)))
    goto failed;
  enum bg_problem refuse = consume_refusal(q, &b);
  if (refuse != BG_P__COUNT) {
    reply_refusal(r, refuse, q);
    goto done;
  }
  /* the proxy needs the number itself to ask BLI; opened before the use is taken, so that an
   * ID that does not open takes nothing */
  if (!(nid = wf_open(PQgetvalue(q, 0, QC_ENC), PQgetvalue(q, 0, QC_HMAC)))) {
    bg_reply_problem(r, BG_P_INTERNAL, "the subject's ID could not be read");
    goto done;
  }
  purpose = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s}", "form", "F2", "registration_no",
                      PQgetvalue(q, 0, QR_NO), "legal_basis", "id", PQgetvalue(q, 0, QR_LB_ID), "code",
                      PQgetvalue(q, 0, QR_LB_CODE), "law_name", PQgetvalue(q, 0, QR_LB_NAME), "article",
                      PQgetvalue(q, 0, QR_ARTICLE), "case_reference", PQgetvalue(q, 0, QR_CASE));
  /* details.used and details.max_uses are added by qc_take, which alone knows them */
  json_t *ev = bg_event_new(r, "query_request.use_consumed", "query_request", id, "success");
  json_object_set_new(ev, "subject", json_pack("{s:s, s:s}", "id_hmac", PQgetvalue(q, 0, QC_HMAC), "id_masked",
                                               PQgetvalue(q, 0, QC_MASKED)));
  json_object_set(ev, "purpose", purpose);
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "consumption_id", json_string(cid));
  json_object_set_new(d, "querier_id", json_string(b.querier_id));
  json_object_set_new(d, "item", json_string(b.item));
  char evid[BG_UUID_LEN];
  snprintf(evid, sizeof evid, "%s", json_string_value(json_object_get(ev, "id")));
  evtext = bg_json_dump(ev);
  json_decref(ev);
  if (!evtext)
    goto failed;
  bool linked = !PQgetisnull(q, 0, QR_EXTERNAL);
  const char *client = r->token.sub + (strncmp(r->token.sub, "client:", 7) ? 0 : 7);
  const char *pt[] = {id, PQgetvalue(q, 0, QC_SUBJECT), b.item, b.querier_id, now_s, cid, client, evid, evtext};
  struct bg_dberr err = {0};
  if ((linked && !bg_dbc_begin(c)) || !(u = bg_dbc_exec(c, "qc_take", 9, pt, &err))) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) { /* the caller's id, used before */
      if (c->in_tx)
        bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_CONFLICT, "a use with this consumption_id was taken already");
      goto done;
    }
    goto failed;
  }
  if (PQntuples(u) == 0) {
    /* Nothing was written. Why: the request changed since round trip 1 (cancelled, decided
     * otherwise, expired, another querier), else the last use went to a racing taker. */
    if (linked)
      bg_dbc_rollback(c);
    PQclear(q);
    if (!(q = consume_check(c, id, now_s, &b, hmac)))
      goto failed;
    refuse = consume_refusal(q, &b);
    reply_refusal(r, refuse == BG_P__COUNT ? BG_P_USES_EXHAUSTED : refuse, q);
    goto done;
  }
  /* qc_take wrote an outbox row by itself: the shipper is woken (after the commit, when linked) */
  bg_dbc_outbox_written(c);
  /* the proxy shows the result again to the requester and, for Form 3, the applicant */
  const char *ext = linked ? PQgetvalue(q, 0, QR_EXTERNAL) : NULL;
  const char *pa[] = {ext};
  if (linked && !(follow_completion(r, c, id, now_s) && (a = bg_dbc_exec(c, "ea_applicant", 1, pa, NULL)) &&
                  bg_dbc_commit(c)))
    goto failed;
  long used = 0, max = 0;
  bg_parse_long(PQgetvalue(u, 0, 0), 0, 100, &used);
  bg_parse_long(PQgetvalue(u, 0, 1), 0, 100, &max);
  const struct bg_bli_item *it = bg_bli_item(b.item);
  json_t *parties = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "unit_id", PQgetvalue(q, 0, QR_UNIT),
                              "querier_name", PQgetvalue(q, 0, QR_QUERIER_NAME), "requester_id",
                              PQgetvalue(q, 0, QR_REQUESTER), "requester_name", PQgetvalue(q, 0, QR_REQUESTER_NAME),
                              "external_application_id", ext, "applicant_id",
                              a && PQntuples(a) == 1 ? PQgetvalue(a, 0, 0) : NULL);
  bg_reply_json(r, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s?, s:I, s:I, s:I, s:s, s:O, s:o}",
                          "consumption_id", cid, "request_id", id, "registration_no", PQgetvalue(q, 0, QR_NO),
                          "querier_id", b.querier_id, "subject", "id", PQgetvalue(q, 0, QC_SUBJECT), "name",
                          PQgetvalue(q, 0, QC_NAME), "national_id", nid, "national_id_masked",
                          PQgetvalue(q, 0, QC_MASKED), "item", b.item, "item_name_zh", it ? it->name_zh : NULL,
                          "used", (json_int_t)used, "max_uses", (json_int_t)max, "remaining",
                          (json_int_t)(max - used), "valid_until", PQgetvalue(q, 0, QR_VALID_UNTIL), "purpose",
                          purpose, "parties", parties));
  goto done;
failed:
  bg_db_failed(r, c);
done:
  if (nid) {
    memset(nid, 0, strlen(nid));
    free(nid);
  }
  free(evtext);
  json_decref(purpose);
  PQclear(q);
  PQclear(u);
  PQclear(a);
  bg_db_release(c);
}

struct release_body {
  const char *consumption_id, *reason;
};

void wf_h_release(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("consumption_id", BG_F_UUID, true, struct release_body, consumption_id),
    BG_FIELD("reason", BG_F_STRING, false, struct release_body, reason, .min = 1, .max = 200),
    BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  struct release_body b = {0};
  if (!(bg_json_parse(r, r->json, spec, &b) && bg_req_no_twid(r)))
    return;
  struct bg_dbc *c = bg_db_for(r, wf.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, now_s}, *pc[] = {b.consumption_id, id};
  PGresult *q = NULL, *k = NULL, *u = NULL;
  if (!bg_dbc_begin(c) || !(q = bg_dbc_exec(c, "qr_share", 2, p, NULL)))
    goto failed;
  if (PQntuples(q) == 0 || !(k = bg_dbc_exec(c, "qc_lock", 2, pc, NULL)) || PQntuples(k) == 0) {
    if (PQntuples(q) && !k)
      goto failed;
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such use of this request");
    goto done;
  }
  /* a retried release (the proxy delivers at least once) finds it done and changes nothing */
  if (!PQgetisnull(k, 0, 4)) {
    bg_dbc_rollback(c);
    bg_reply_json(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "consumption_id", b.consumption_id,
                                    "request_id", id, "subject_id", PQgetvalue(k, 0, 1), "item", PQgetvalue(k, 0, 2),
                                    "released_at", PQgetvalue(k, 0, 4), "already_released", 1));
    goto done;
  }
  const char *pr[] = {b.consumption_id, now_s, b.reason}, *pu[] = {PQgetvalue(k, 0, 1), PQgetvalue(k, 0, 2)};
  if (!bg_dbc_run(c, "qc_release", 3, pr, NULL) || !(u = bg_dbc_exec(c, "qu_give_back", 2, pu, NULL)) ||
      PQntuples(u) != 1)
    goto failed;
  json_t *ev = bg_event_new(r, "query_request.use_released", "query_request", id, "success");
  json_object_set_new(ev, "subject", subject_event(k, 5, 6));
  json_t *d = json_object_get(ev, "details");
  json_object_set_new(d, "consumption_id", json_string(b.consumption_id));
  json_object_set_new(d, "querier_id", json_string(PQgetvalue(k, 0, 3)));
  json_object_set_new(d, "item", json_string(PQgetvalue(k, 0, 2)));
  if (b.reason)
    json_object_set_new(d, "reason", json_string(b.reason));
  bool linked = !PQgetisnull(q, 0, QR_EXTERNAL);
  if (!bg_outbox_add(c, ev) || (linked && !follow_completion(r, c, id, now_s)) || !bg_dbc_commit(c))
    goto failed;
  long used = 0, max = 0;
  bg_parse_long(PQgetvalue(u, 0, 0), 0, 100, &used);
  bg_parse_long(PQgetvalue(u, 0, 1), 0, 100, &max);
  bg_reply_json(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "consumption_id",
                                  b.consumption_id, "request_id", id, "subject_id", PQgetvalue(k, 0, 1), "item",
                                  PQgetvalue(k, 0, 2), "released_at", now_s, "already_released", 0, "used",
                                  (json_int_t)used, "max_uses", (json_int_t)max, "remaining",
                                  (json_int_t)(max - used)));
  goto done;
failed:
  bg_db_failed(r, c);
done:
  PQclear(q);
  PQclear(k);
  PQclear(u);
  bg_db_release(c);
}
