/* GET /v1/external-applications/{id}/results: an agency's Form 3 answer. Workflow decides who
 * may see the application and says what has been queried (the caller's own token is passed
 * on, so its visibility rules apply unchanged); the data itself is here, and only the applicant
 * and the querier read it, each record read an event on the log. */
#include "prx.h"
#include "bligate/clock.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <string.h>
#include <strings.h>

void prx_h_app_results(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  char reader[256];
  if (!prx_check_session(r, reader, sizeof reader))
    return;
  const char *auth = bg_req_header(r, "Authorization");
  char url[512];
  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || /* the scheme's case does not matter (RFC 9110) */
      !bg_fmt(url, sizeof url, "%s/v1/external-applications/%s/results", prx.workflow_url, id)) {
    bg_reply_problem(r, BG_P_UNAUTHENTICATED, NULL);
    return;
  }
  struct bg_httpc_req req = {.method = "GET", .url = url, .bearer = auth + 7, .request_id = r->request_id};
  struct bg_httpc_resp resp;
  json_t *progress = bg_httpc_do(&req, &resp) ? bg_httpc_json(&resp) : NULL;
  long st = resp.status;
  bg_httpc_resp_free(&resp);
  if (st != 200 || !json_is_object(progress)) {
    enum bg_problem p;
    const char *code = json_string_value(json_object_get(progress, "code"));
    if (st >= 400 && st < 500 && bg_problem_from_code(code, &p) && bg_problem_status(p) == (unsigned)st)
      bg_reply_problem(r, p, NULL);
    else
      bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "cannot read the application from workflow");
    json_decref(progress);
    return;
  }
  const char *p[] = {id};
  PGresult *res = bg_db_fetch(r, prx.db, "q_by_app", 1, p);
  if (!res) {
    json_decref(progress);
    return;
  }
  json_t *results = json_array(), *events = json_array();
  bool ok = true;
  int held;
  for (int i = 0; ok && i < PQntuples(res); i++) {
    const char *role = prx_reader_role(r, res, i);
    if (!role || !strcmp(role, "requester"))
      continue; /* the application's other readers see the progress, not the data */
    json_t *one = prx_result_gone(res, i) ? prx_query_json(res, i, NULL) : prx_read_result(r, res, i, role, id, events);
    if (!one)
      ok = false;
    else
      json_array_append_new(results, one);
  }
  PQclear(res);
  if (!ok) {
    bg_reply_problem(r, BG_P_INTERNAL, "a stored result cannot be opened");
    json_decref(results);
    json_decref(progress);
  } else if (json_array_size(events) && !prx_audit_append(r, events)) {
    bg_reply_problem(r, BG_P_AUDIT_UNAVAILABLE, "the audit log did not acknowledge this reading");
    json_decref(results);
    json_decref(progress);
  } else if (json_array_size(events) && (held = prx_reads_still_held(r, events)) != 1) {
    /* a purge destroyed one while the readings were appended: read again to see what is left */
    if (held == 0)
      bg_reply_problem(r, BG_P_CONFLICT, "a result was destroyed (its retention ended) while it was read; read again");
    json_decref(results);
    json_decref(progress);
  } else {
    if (json_array_size(events)) {
      char at[BG_TIME_LEN];
      json_object_set_new(progress, "watermark",
                          prx_watermark(r->token.sub, reader[0] ? reader : NULL, r->token.unit[0] ? r->token.unit : NULL,
                                        bg_time_fmt(bg_now(), at)));
    }
    json_object_set_new(progress, "results", results);
    bg_reply_json(r, 200, progress);
  }
  json_decref(events);
}
