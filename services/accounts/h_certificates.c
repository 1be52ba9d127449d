/* Citizen certificates registered to an account ("uploaded to the e-Government platform",
 * rule 2). Only a certificate that chains to the trust store, is valid and unrevoked, and
 * names the account's holder (CN and the ID's last four digits) is accepted. */
#include "acct.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool may_manage(struct bg_request *r, const char *account_id)
{
  return bg_req_has_role(r, "permission_admin") || strcmp(account_id, r->token.sub) == 0;
}

static json_t *cert_row(PGresult *res, int row, void *arg) { return acct_cert_json(res, row); }

void acct_h_certs_list(struct bg_request *r)
{
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  if (!may_manage(r, id) && !bg_req_has_role(r, "it_staff")) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "cert_list", 1, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
  } else {
    json_t *page = bg_page(res, PQntuples(res), 9, 0, cert_row, NULL);
    bg_reply_json(r, 200, page);
  }
  PQclear(res);
  bg_db_release(c);
}

struct cert_body {
  const char *certificate;
};

void acct_h_certs_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("certificate", BG_F_STRING, true, struct cert_body, certificate, .min = 1, .max = 16384), BG_FIELD_END};
  const char *id;
  if (!bg_req_uuid_param(r, 0, &id))
    return;
  if (!may_manage(r, id)) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "certificates are registered by their holder or the permission administrator");
    return;
  }
  struct cert_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  X509 *cert = acct_cert_parse(b.certificate);
  if (!cert) {
    bg_reply_field_error(r, BG_P_VALIDATION, "certificate", "invalid", "must be a PEM or base64 DER certificate");
    return;
  }
  struct acct_cert_info ci;
  char detail[160];
  time_t now = bg_now();
  struct bg_dbc *c = NULL;
  PGresult *acc = NULL, *res = NULL;
  char *pem = NULL;
  if (!acct_cert_info(cert, &ci)) {
    bg_reply_field_error(r, BG_P_VALIDATION, "certificate", "invalid", "the certificate has no subject CN");
    goto done;
  }
  enum acct_cert_err ce = acct_pki_verify(acct.pki, cert, now, detail, sizeof detail);
  if (ce != ACCT_CERT_OK) {
    bg_reply_problem(r, acct_cert_problem(ce), "%s", detail);
    goto done;
  }
  if (!(c = bg_db_for(r, acct.db)))
    goto done;
  const char *pa[] = {id};
  if (!(acc = bg_dbc_exec(c, "account_get", 1, pa, NULL))) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(acc) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such account");
    goto done;
  }
  if (strcmp(PQgetvalue(acc, 0, 9), "active") != 0) {
    bg_reply_problem(r, BG_P_ACCOUNT_INACTIVE, NULL);
    goto done;
  }
  const char *nid = PQgetvalue(acc, 0, 2);
  if (strcmp(ci.cn, PQgetvalue(acc, 0, 1)) != 0 || strcmp(ci.id_last4, nid + strlen(nid) - 4) != 0) {
    bg_reply_problem(r, BG_P_CERT_MISMATCH, "the certificate's holder name or ID digits differ from the account's");
    goto done;
  }
  char cid[BG_UUID_LEN], now_s[BG_TIME_LEN], nb[BG_TIME_LEN], na[BG_TIME_LEN];
  bg_uuid_v4(cid);
  bg_time_fmt(now, now_s);
  bg_time_fmt(ci.not_before, nb);
  bg_time_fmt(ci.not_after, na);
  pem = acct_cert_pem(cert);
  struct bg_dberr err;
  const char *p[] = {cid, id, ci.fingerprint, ci.serial, ci.issuer, ci.cn, nb, na, pem, now_s};
  if (!bg_dbc_begin(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  if (!(res = bg_dbc_exec(c, "cert_insert", 10, p, &err))) {
    if (!strcmp(err.sqlstate, BG_SQL_UNIQUE)) {
      bg_dbc_rollback(c);
      bg_reply_problem(r, BG_P_CERT_ALREADY_REGISTERED, NULL);
    } else {
      bg_db_failed(r, c);
    }
    goto done;
  }
  json_t *ev = bg_event_new(r, "certificate.registered", "certificate", cid, "success");
  json_object_set_new(json_object_get(ev, "details"), "account_id", json_string(id));
  json_object_set_new(json_object_get(ev, "details"), "fingerprint_sha256", json_string(ci.fingerprint));
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) {
    bg_db_failed(r, c);
    goto done;
  }
  char loc[128];
  snprintf(loc, sizeof loc, "/v1/accounts/%s/certificates/%s", id, cid);
  bg_reply_header(r, "Location", loc);
  bg_reply_json(r, 201, acct_cert_json(res, 0));
done:
  X509_free(cert);
  free(pem);
  PQclear(acc);
  PQclear(res);
  bg_db_release(c);
}

void acct_h_certs_delete(struct bg_request *r)
{
  const char *id, *cid;
  if (!bg_req_uuid_param(r, 0, &id) || !bg_req_uuid_param(r, 1, &cid))
    return;
  if (!may_manage(r, id)) {
    bg_reply_problem(r, BG_P_FORBIDDEN, "certificates are disabled by their holder or the permission administrator");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {cid, id, now_s}, *ps[] = {cid, now_s, id};
  PGresult *res = NULL, *ended = NULL;
  if (!bg_dbc_begin(c) || !(res = bg_dbc_exec(c, "cert_disable", 3, p, NULL))) {
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0) {
    bg_dbc_rollback(c);
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such certificate on this account");
  } else if (!(ended = bg_dbc_exec(c, "sessions_end_certificate", 3, ps, NULL))) {
    bg_db_failed(r, c);
  } else {
    /* a card reported lost: the sessions it opened end with it, at once */
    json_t *ev = bg_event_new(r, "certificate.disabled", "certificate", cid, "success");
    json_object_set_new(json_object_get(ev, "details"), "account_id", json_string(id));
    json_object_set_new(json_object_get(ev, "details"), "sessions_ended", json_integer(PQntuples(ended)));
    if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
      bg_db_failed(r, c);
    else
      bg_reply_empty(r, 204);
  }
  PQclear(res);
  PQclear(ended);
  bg_db_release(c);
}
