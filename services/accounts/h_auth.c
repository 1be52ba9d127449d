/* Certificate login (rules 2 and 3): challenges, sessions, refresh, logout, me; client
 * credentials for services; the JWKS. Every login, failure and logout goes to the outbox in
 * the transaction that records it. */
#include "acct.h"
#include "bligate/clock.h"
#include "bligate/events.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum bg_problem acct_cert_problem(enum acct_cert_err e)
{
  switch (e) {
  case ACCT_CERT_EXPIRED: return BG_P_CERT_EXPIRED;
  case ACCT_CERT_REVOKED: return BG_P_CERT_REVOKED;
  case ACCT_CERT_REVOCATION_UNAVAILABLE: return BG_P_REVOCATION_UNAVAILABLE;
  case ACCT_CERT_KEY_USAGE: return BG_P_CERT_KEY_USAGE;
  default: return BG_P_CERT_UNTRUSTED;
  }
}

char *acct_user_token(const char *account_id, const char *unit_id, json_t *roles, const char *session_id,
                      time_t session_expires, long *expires_in)
{
  time_t now = bg_now();
  /* a token never outlives its session */
  long ttl = session_expires - now < acct.access_ttl ? (long)(session_expires - now) : acct.access_ttl;
  char jti[BG_UUID_LEN];
  bg_uuid_v4(jti);
  json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:s}", "iss", acct.issuer, "aud",
                             acct.audience, "sub", account_id, "sid", session_id, "unit", unit_id, "roles", roles,
                             "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                             (json_int_t)(now + ttl), "jti", jti);
  char *tok = claims ? bg_jwt_sign(acct.jwt_key, acct.kid, claims) : NULL;
  json_decref(claims);
  *expires_in = ttl;
  return tok;
}

/* ---- challenges ---- */

void acct_h_challenges_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {BG_FIELD_END};
  char dummy;
  if (!bg_json_parse(r, r->json, spec, &dummy))
    return;
  unsigned char raw[32];
  char id[BG_UUID_LEN], now_s[BG_TIME_LEN], exp_s[BG_TIME_LEN];
  if (!bg_random(raw, sizeof raw)) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  char *nonce = bg_b64url_encode(raw, sizeof raw);
  bg_uuid_v4(id);
  time_t now = bg_now();
  bg_time_fmt(now, now_s);
  bg_time_fmt(now + acct.challenge_ttl, exp_s);
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c) {
    free(nonce);
    return;
  }
  const char *p[] = {id, nonce, now_s, exp_s};
  if (!bg_dbc_run(c, "challenge_insert", 4, p, NULL)) {
    bg_db_failed(r, c);
  } else {
    bg_reply_json(r, 201, json_pack("{s:s, s:s, s:s}", "challenge_id", id, "nonce", nonce, "expires_at", exp_s));
    /* Spent challenges are disposable; trimming them now and then keeps the table small. */
    if (raw[0] == 0) {
      const char *pp[] = {now_s};
      bg_dbc_run(c, "challenge_purge", 1, pp, NULL);
      bg_dbc_run(c, "failures_purge", 1, pp, NULL);
    }
  }
  bg_db_release(c);
  free(nonce);
}

/* ---- login ---- */

struct login_body {
  const char *challenge_id, *certificate, *signature, *cms;
};

struct login {
  struct bg_request *r;
  struct bg_dbc *c;
  char fingerprint[65];
  char now_s[BG_TIME_LEN];
};

/* Records a failed login (for throttling and the audit log) and replies with its problem. */
static void login_fail(struct login *l, enum bg_problem p, const char *detail)
{
  const char *fp = l->fingerprint[0] ? l->fingerprint : NULL;
  json_t *ev = bg_event_new(l->r, "auth.login.failed", "certificate", fp, "failure");
  json_object_set_new(json_object_get(ev, "details"), "code", json_string(bg_problem_code(p)));
  char *text = bg_json_dump(ev);
  const char *params[] = {fp, l->r->client_addr, bg_problem_code(p), l->now_s,
                          json_string_value(json_object_get(ev, "id")), text};
  if (!text || !bg_dbc_run(l->c, "login_failed", 6, params, NULL)) {
    /* The refusal stands even when it cannot be recorded; say so in the log. */
    bg_log(BG_LOG_ERROR, l->r->request_id, "could not record a failed login");
  } else {
    bg_dbc_outbox_written(l->c);
  }
  free(text);
  json_decref(ev);
  bg_reply_problem(l->r, p, "%s", detail ? detail : "");
}

/* Columns of login_begin and login_cert. */
enum { LB_NONCE, LB_KNOWN, LB_USED, LB_EXPIRED, LB_CERT_FAILS, LB_CERT_OLDEST, LB_ADDR_FAILS, LB_ADDR_OLDEST,
       LB_CERT_ID, LB_CERT_STATUS, LB_ACCOUNT };

/* Five failures of a certificate or a hundred of an address within the window: 429 with
 * Retry-After (then true). Successful logins never count. */
static bool throttled(struct login *l, PGresult *res, time_t now)
{
  long by_cert = 0, by_addr = 0;
  bg_parse_long(PQgetvalue(res, 0, LB_CERT_FAILS), 0, 1L << 40, &by_cert);
  bg_parse_long(PQgetvalue(res, 0, LB_ADDR_FAILS), 0, 1L << 40, &by_addr);
  const char *oldest = NULL;
  if (by_cert >= acct.fails_per_cert)
    oldest = PQgetvalue(res, 0, LB_CERT_OLDEST);
  else if (by_addr >= acct.fails_per_addr)
    oldest = PQgetvalue(res, 0, LB_ADDR_OLDEST);
  if (!oldest)
    return false;
  time_t t = now;
  bg_time_parse(oldest, &t);
  long wait = (long)(t + acct.fail_window - now);
  char ra[24];
  snprintf(ra, sizeof ra, "%ld", wait > 0 ? wait : 1);
  bg_reply_header(l->r, "Retry-After", ra);
  bg_reply_problem(l->r, BG_P_RATE_LIMITED, "too many failed logins; try again in %s seconds", ra);
  return true;
}

/* The new session, the end of the account's older one and the login event, in one statement. */
static bool login_commit(struct login *l, const char *sid, const char *account_id, const char *name,
                         const char *unit_id, const char *cert_id, const char *exp_s, bool raw_mode)
{
  json_t *ev = bg_event_new(l->r, "auth.login", "session", sid, "success");
  bg_event_set_actor(ev, account_id, name, unit_id, sid);
  json_object_set_new(json_object_get(ev, "details"), "certificate", json_string(l->fingerprint));
  json_object_set_new(json_object_get(ev, "details"), "method", json_string(raw_mode ? "signature" : "cms"));
  char *ev_text = bg_json_dump(ev);
  const char *p[] = {sid, account_id, cert_id, l->now_s, exp_s, l->r->client_addr,
                     json_string_value(json_object_get(ev, "id")), ev_text};
  bool ok = false;
  /* Every lost race means another login of the account committed, so retrying cannot spin; a
   * few attempts were not enough when ten logins of one account raced (a 500 now and then). */
  for (int attempt = 0; ev_text && attempt < 16 && !ok; attempt++) {
    struct bg_dberr err;
    ok = bg_dbc_run(l->c, "login_finish", 8, p, &err);
    /* a concurrent login of the same account won the race: run again, superseding it */
    if (!ok && !(strcmp(err.sqlstate, "23505") == 0 && strcmp(err.constraint, "sessions_one_live") == 0))
      break;
  }
  if (ok)
    bg_dbc_outbox_written(l->c);
  free(ev_text);
  json_decref(ev);
  return ok;
}

/* A login is two round trips: login_begin (challenge, throttling, the certificate's account)
 * and login_finish; everything between is OpenSSL in this process, mostly from caches. */
void acct_h_sessions_post(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("challenge_id", BG_F_UUID, true, struct login_body, challenge_id),
    BG_FIELD("certificate", BG_F_STRING, false, struct login_body, certificate, .min = 1, .max = 16384),
    BG_FIELD("signature", BG_F_STRING, false, struct login_body, signature, .min = 1, .max = 4096),
    BG_FIELD("cms", BG_F_STRING, false, struct login_body, cms, .min = 1, .max = 65536),
    BG_FIELD_END};
  struct login_body b = {0};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  bool raw_mode = b.certificate || b.signature;
  if (raw_mode && b.cms) {
    bg_reply_field_error(r, BG_P_VALIDATION, "cms", "exclusive", "send either certificate and signature, or cms");
    return;
  }
  if (raw_mode && (!b.certificate || !b.signature)) {
    bg_reply_field_error(r, BG_P_VALIDATION, b.certificate ? "signature" : "certificate", "required",
                         "certificate and signature go together");
    return;
  }
  if (!raw_mode && !b.cms) {
    bg_reply_field_error(r, BG_P_VALIDATION, "cms", "required", "send either certificate and signature, or cms");
    return;
  }
  struct login l = {.r = r};
  time_t now = bg_now();
  bg_time_fmt(now, l.now_s);
  char since[BG_TIME_LEN];
  bg_time_fmt(now - acct.fail_window, since);
  X509 *cert = NULL;
  unsigned char *sig = NULL, *cms = NULL;
  PGresult *res = NULL;
  char *token = NULL;
  /* The certificate is parsed before the database is asked, so that one round trip consumes
   * the challenge and finds the account; a malformed one is refused after the challenge
   * checks, as if parsed later. */
  struct acct_cert_info ci;
  /* The certificate a raw login names is anyone's to send (certificates are public): its
   * failures count against it only once its key has signed (l.fingerprint), else a stranger
   * could lock its holder out. Until then it only finds the account and its throttle. */
  char claimed[65] = "";
  if (raw_mode && (cert = acct_cert_parse_cached(b.certificate, &ci)) && ci.fingerprint[0])
    memcpy(claimed, ci.fingerprint, sizeof claimed);
  if (!(l.c = bg_db_for(r, acct.db)))
    goto done;

  const char *pb[] = {b.challenge_id, l.now_s, claimed[0] ? claimed : NULL, r->client_addr, since};
  if (!(res = bg_dbc_exec(l.c, "login_begin", 5, pb, NULL))) {
    bg_db_failed(r, l.c);
    goto done;
  }
  if (throttled(&l, res, now))
    goto done;
  /* The challenge is spent by this attempt whatever its outcome: one nonce, one try. */
  if (PQgetisnull(res, 0, LB_NONCE)) {
    if (PQgetvalue(res, 0, LB_KNOWN)[0] != 't')
      login_fail(&l, BG_P_CHALLENGE_UNKNOWN, "request a new challenge");
    else if (PQgetvalue(res, 0, LB_EXPIRED)[0] == 't' && PQgetvalue(res, 0, LB_USED)[0] != 't')
      login_fail(&l, BG_P_CHALLENGE_EXPIRED, "request a new challenge");
    else /* used before, or by a concurrent attempt a moment ago */
      login_fail(&l, BG_P_CHALLENGE_USED, "a challenge can be used once; request a new one");
    goto done;
  }
  char nonce[64];
  snprintf(nonce, sizeof nonce, "%s", PQgetvalue(res, 0, LB_NONCE));

  size_t siglen, cmslen;
  if (raw_mode) {
    if (!cert) {
      bg_reply_field_error(r, BG_P_VALIDATION, "certificate", "invalid", "must be a PEM or base64 DER certificate");
      goto done;
    }
    if (!(sig = bg_b64_decode(b.signature, &siglen))) {
      bg_reply_field_error(r, BG_P_VALIDATION, "signature", "invalid", "must be base64");
      goto done;
    }
    if (!acct_sig_verify_raw(cert, (const unsigned char *)nonce, strlen(nonce), sig, siglen)) {
      login_fail(&l, BG_P_SIGNATURE_INVALID, "the signature is not over this challenge's nonce by this certificate");
      goto done;
    }
    memcpy(l.fingerprint, claimed, sizeof l.fingerprint);
  } else {
    bool malformed;
    if (!(cms = bg_b64_decode(b.cms, &cmslen))) {
      bg_reply_field_error(r, BG_P_VALIDATION, "cms", "invalid", "must be base64 DER CMS SignedData");
      goto done;
    }
    cert = acct_cms_verify(cms, cmslen, (const unsigned char *)nonce, strlen(nonce), &malformed);
    if (!cert && malformed) {
      bg_reply_field_error(r, BG_P_VALIDATION, "cms", "invalid",
                           "must be DER CMS SignedData with one signer and its certificate");
      goto done;
    }
    if (!cert) {
      login_fail(&l, BG_P_SIGNATURE_INVALID, "the CMS signature does not verify over this challenge's nonce");
      goto done;
    }
    if (acct_cert_info(cert, &ci))
      memcpy(l.fingerprint, ci.fingerprint, sizeof l.fingerprint);
    /* now that the signer is known: its failures and its account */
    PQclear(res);
    const char *pc[] = {l.fingerprint, since};
    if (!(res = bg_dbc_exec(l.c, "login_cert", 2, pc, NULL))) {
      bg_db_failed(r, l.c);
      goto done;
    }
    if (throttled(&l, res, now))
      goto done;
  }

  char detail[160];
  enum acct_cert_err ce = acct_pki_verify(acct.pki, cert, now, detail, sizeof detail);
  if (ce != ACCT_CERT_OK) {
    login_fail(&l, acct_cert_problem(ce), detail);
    goto done;
  }
  /* the certificate's account: ACOLS from LB_ACCOUNT (status at +9) */
  if (!PQgetisnull(res, 0, LB_CERT_ID) && strcmp(PQgetvalue(res, 0, LB_ACCOUNT + 9), "active") != 0) {
    /* a leaver's certificate: say so rather than "not registered" */
    login_fail(&l, BG_P_ACCOUNT_INACTIVE, "the account was deactivated");
    goto done;
  }
  if (PQgetisnull(res, 0, LB_CERT_ID) || strcmp(PQgetvalue(res, 0, LB_CERT_STATUS), "active") != 0) {
    login_fail(&l, BG_P_CERT_NOT_REGISTERED, "register the certificate to your account first");
    goto done;
  }
  const char *account_id = PQgetvalue(res, 0, LB_ACCOUNT), *unit_id = PQgetvalue(res, 0, LB_ACCOUNT + 3);
  char sid[BG_UUID_LEN], exp_s[BG_TIME_LEN];
  bg_uuid_v4(sid);
  bg_time_fmt(now + acct.max_ttl, exp_s);
  if (!login_commit(&l, sid, account_id, PQgetvalue(res, 0, LB_ACCOUNT + 1), unit_id,
                    PQgetvalue(res, 0, LB_CERT_ID), exp_s, raw_mode)) {
    bg_db_failed(r, l.c);
    goto done;
  }
  json_t *roles = json_loads(PQgetvalue(res, 0, LB_ACCOUNT + 5), 0, NULL);
  long expires_in;
  token = acct_user_token(account_id, unit_id, roles, sid, now + acct.max_ttl, &expires_in);
  json_decref(roles);
  if (!token) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    goto done;
  }
  json_t *account = acct_account_json(res, 0, LB_ACCOUNT, true);
  bg_reply_json(r, 201, json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", token, "token_type", "Bearer",
                                  "expires_in", (json_int_t)expires_in, "session_id", sid, "account", account));
done:
  PQclear(res);
  bg_db_release(l.c);
  X509_free(cert);
  free(sig);
  free(cms);
  free(token);
}

/* ---- the session behind a user token ---- */

static time_t col_time(PGresult *res, int col)
{
  time_t t = 0;
  if (!PQgetisnull(res, 0, col))
    bg_time_parse(PQgetvalue(res, 0, col), &t);
  return t;
}

void acct_session_read(PGresult *res, int status_col, time_t now, struct acct_session *s)
{
  s->account_id = PQgetvalue(res, 0, SESS_ACCOUNT_ID);
  s->end_reason = PQgetisnull(res, 0, SESS_END_REASON) ? NULL : PQgetvalue(res, 0, SESS_END_REASON);
  s->created = col_time(res, SESS_CREATED_AT);
  s->last_seen = col_time(res, SESS_LAST_SEEN_AT);
  s->expires = col_time(res, SESS_EXPIRES_AT);
  if (!PQgetisnull(res, 0, SESS_ENDED_AT))
    s->reason = "ended";
  else if (strcmp(PQgetvalue(res, 0, status_col), "active") != 0)
    s->reason = "account-inactive";
  else if (s->expires <= now)
    s->reason = "expired";
  else if (s->last_seen + acct.idle_ttl <= now)
    s->reason = "idle";
  else
    s->reason = NULL;
}

void acct_session_touch(struct bg_dbc *c, const char *sid, struct acct_session *s, time_t now, const char *now_s)
{
  if (s->reason || now - s->last_seen <= 5)
    return;
  const char *p[] = {sid, now_s};
  /* A failed touch costs the user at most 5 s of idle time; the request goes on. */
  if (bg_dbc_run(c, "session_touch", 2, p, NULL))
    s->last_seen = now;
}

json_t *acct_text_array_json(const char *s)
{
  json_t *out = json_array();
  if (!s || *s++ != '{')
    return out;
  char item[128];
  while (*s && *s != '}') {
    size_t n = 0;
    if (*s == '"') {
      for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
          s++;
        if (n + 1 < sizeof item)
          item[n++] = *s;
      }
      if (*s == '"')
        s++;
    } else {
      for (; *s && *s != ',' && *s != '}'; s++)
        if (n + 1 < sizeof item)
          item[n++] = *s;
    }
    item[n] = '\0';
    json_array_append_new(out, json_string(item));
    if (*s == ',')
      s++;
  }
  return out;
}

static json_t *str_or_null(PGresult *res, int col)
{
  return PQgetisnull(res, 0, col) ? json_null() : json_string(PQgetvalue(res, 0, col));
}

static json_t *time_json(PGresult *res, int col)
{
  char ts[BG_TIME_LEN];
  return PQgetisnull(res, 0, col) ? json_null() : json_string(bg_time_fmt(col_time(res, col), ts));
}

/* The Account and Unit objects of GET /v1/auth/me from a session_check row. */
static json_t *me_account_json(PGresult *res, json_t *roles)
{
  char masked[11];
  const char *nid = PQgetvalue(res, 0, SESS_NATIONAL_ID);
  bg_twid_mask(nid, masked);
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(PQgetvalue(res, 0, SESS_ACCOUNT_ID)));
  json_object_set_new(o, "name", json_string(PQgetvalue(res, 0, SESS_NAME)));
  json_object_set_new(o, "national_id_masked", json_string(masked));
  json_object_set_new(o, "unit_id", json_string(PQgetvalue(res, 0, SESS_UNIT_ID)));
  json_object_set_new(o, "title", json_string(PQgetvalue(res, 0, SESS_TITLE)));
  json_object_set(o, "roles", roles);
  json_object_set_new(o, "phone", str_or_null(res, SESS_PHONE));
  json_object_set_new(o, "email", str_or_null(res, SESS_EMAIL));
  json_object_set_new(o, "egov_account", str_or_null(res, SESS_EGOV));
  json_object_set_new(o, "status", json_string(PQgetvalue(res, 0, SESS_STATUS)));
  json_object_set_new(o, "created_at", time_json(res, SESS_A_CREATED_AT));
  json_object_set_new(o, "updated_at", time_json(res, SESS_A_UPDATED_AT));
  json_object_set_new(o, "national_id", json_string(nid));
  return o;
}

bool acct_session_hook(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return false;
  time_t now = bg_now();
  char now_s[BG_TIME_LEN];
  bg_time_fmt(now, now_s);
  const char *p[] = {r->token.sid};
  PGresult *res = bg_dbc_exec(c, "session_check", 1, p, NULL);
  struct acct_session s;
  bool ok = false;
  if (!res) {
    bg_db_failed(r, c);
    goto done;
  }
  if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, SESS_ACCOUNT_ID), r->token.sub) != 0) {
    bg_reply_problem(r, BG_P_SESSION_ENDED, "unknown session");
    goto done;
  }
  acct_session_read(res, SESS_STATUS, now, &s);
  const char *end = NULL;
  if (!s.reason) {
    ok = true;
  } else if (!strcmp(s.reason, "ended")) {
    bg_reply_problem(r, BG_P_SESSION_ENDED, "the session ended (%s)", s.end_reason ? s.end_reason : "");
  } else if (!strcmp(s.reason, "account-inactive")) {
    bg_reply_problem(r, BG_P_SESSION_ENDED, "the account is not active");
  } else if (!strcmp(s.reason, "expired")) {
    end = "expired";
    bg_reply_problem(r, BG_P_SESSION_ENDED, "the session reached its maximum lifetime; sign in again");
  } else {
    /* Rule 3: an unattended session locks. */
    end = "idle";
    bg_reply_problem(r, BG_P_SESSION_IDLE, "sign in again");
  }
  if (end) {
    const char *pe[] = {r->token.sid, end, now_s};
    bg_dbc_run(c, "session_end", 3, pe, NULL);
  }
  if (!ok)
    goto done;
  acct_session_touch(c, r->token.sid, &s, now, now_s);
  json_t *unit = NULL;
  if (r->route->handler == acct_h_me && !(unit = acct_unit_cached(c, PQgetvalue(res, 0, SESS_UNIT_ID)))) {
    bg_db_failed(r, c);
    ok = false;
    goto done;
  }
  /* the rest works on the result alone: the connection goes back to the pool first */
  bg_db_release(c);
  c = NULL;
  /* Authorize on the account's current unit and roles, not the token's copy. */
  json_t *roles = acct_text_array_json(PQgetvalue(res, 0, SESS_ROLES));
  bg_token_set_authz(&r->token, roles, PQgetvalue(res, 0, SESS_UNIT_ID));
  char created[BG_TIME_LEN], seen[BG_TIME_LEN], idle[BG_TIME_LEN], expires[BG_TIME_LEN];
  r->auth_info = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}}", "session", "id", r->token.sid, "account_id",
                           r->token.sub, "created_at", bg_time_fmt(s.created, created), "last_seen_at",
                           bg_time_fmt(s.last_seen, seen), "idle_expires_at",
                           bg_time_fmt(s.last_seen + acct.idle_ttl, idle), "expires_at",
                           bg_time_fmt(s.expires, expires));
  /* the account and its unit, read in the same round trip, for the handler that shows them */
  if (unit) {
    json_object_set_new(r->auth_info, "account", me_account_json(res, roles));
    json_object_set_new(r->auth_info, "unit", unit);
  }
  json_decref(roles);
done:
  PQclear(res);
  bg_db_release(c);
  return ok;
}

/* The certificate that opened the session is checked again at every refresh (every few minutes
 * of work): one revoked since the login (or expired, or no longer trusted) ends the session, and
 * without current revocation data no new token is issued (fail closed). False after replying. */
static bool session_cert_ok(struct bg_request *r, struct bg_dbc *c)
{
  const char *p[] = {r->token.sid};
  PGresult *res = bg_dbc_exec(c, "session_cert", 1, p, NULL);
  if (!res || PQntuples(res) != 1) {
    if (res)
      bg_reply_problem(r, BG_P_SESSION_ENDED, NULL);
    else
      bg_db_failed(r, c);
    PQclear(res);
    return false;
  }
  X509 *cert = acct_cert_parse(PQgetvalue(res, 0, 0));
  PQclear(res);
  char detail[160] = "";
  enum acct_cert_err ce = cert ? acct_pki_verify(acct.pki, cert, bg_now(), detail, sizeof detail) : ACCT_CERT_MALFORMED;
  X509_free(cert);
  if (ce == ACCT_CERT_OK)
    return true;
  if (ce != ACCT_CERT_REVOCATION_UNAVAILABLE) {
    char now_s[BG_TIME_LEN];
    bg_time_fmt(bg_now(), now_s);
    const char *why = ce == ACCT_CERT_REVOKED ? "certificate_revoked" : "certificate_invalid";
    const char *pe[] = {r->token.sid, why, now_s};
    if (!bg_dbc_begin(c) || !bg_dbc_run(c, "session_end", 3, pe, NULL)) {
      bg_db_failed(r, c);
      return false;
    }
    json_t *ev = bg_event_new(r, "auth.session_ended", "session", r->token.sid, "success");
    json_object_set_new(json_object_get(ev, "details"), "reason", json_string(why));
    if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c)) { /* bg_outbox_add takes ev either way */
      bg_db_failed(r, c);
      return false;
    }
  }
  bg_reply_problem(r, acct_cert_problem(ce), "%s", detail);
  return false;
}

void acct_h_sessions_refresh(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  if (!session_cert_ok(r, c)) {
    bg_db_release(c);
    return;
  }
  const char *p[] = {r->token.sub};
  PGresult *res = bg_dbc_exec(c, "account_get", 1, p, NULL);
  if (!res || PQntuples(res) == 0) {
    bg_db_failed(r, c);
  } else {
    json_t *roles = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
    long expires_in;
    time_t sexp = 0;
    bg_time_parse(json_string_value(json_object_get(json_object_get(r->auth_info, "session"), "expires_at")), &sexp);
    char *token = acct_user_token(r->token.sub, PQgetvalue(res, 0, 3), roles, r->token.sid, sexp, &expires_in);
    json_decref(roles);
    if (token)
      bg_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", token, "token_type", "Bearer",
                                      "expires_in", (json_int_t)expires_in, "session_id", r->token.sid, "account",
                                      acct_account_json(res, 0, 0, true)));
    else
      bg_reply_problem(r, BG_P_INTERNAL, NULL);
    free(token);
  }
  PQclear(res);
  bg_db_release(c);
}

void acct_h_sessions_delete(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {r->token.sid, "logout", now_s};
  json_t *ev = bg_event_new(r, "auth.logout", "session", r->token.sid, "success");
  if (!bg_dbc_begin(c) || !bg_dbc_run(c, "session_end", 3, p, NULL) || !bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    bg_db_failed(r, c);
  else
    bg_reply_empty(r, 204);
  bg_db_release(c);
}

void acct_h_me(struct bg_request *r)
{
  /* the session hook has just read the account, its unit and the session */
  json_t *acc = json_object_get(r->auth_info, "account");
  bg_reply_json(r, 200, json_pack("{s:O, s:O, s:O, s:O}", "account", acc, "unit",
                                  json_object_get(r->auth_info, "unit"), "roles", json_object_get(acc, "roles"),
                                  "session", json_object_get(r->auth_info, "session")));
}

/* ---- OAuth2 client credentials (RFC 6749 §4.4) for services and city systems ---- */

static bool scope_allowed(json_t *allowed, const char *s, size_t n)
{
  size_t i;
  json_t *v;
  json_array_foreach(allowed, i, v) if (strlen(json_string_value(v)) == n &&
                                        strncmp(json_string_value(v), s, n) == 0) return true;
  return false;
}

void acct_h_tokens(struct bg_request *r)
{
  const char *gt = bg_req_form(r, "grant_type");
  if (!gt || strcmp(gt, "client_credentials") != 0) {
    bg_reply_problem(r, BG_P_GRANT_TYPE_UNSUPPORTED, NULL);
    return;
  }
  char idbuf[128] = "", secbuf[256] = "";
  const char *id = bg_req_form(r, "client_id"), *secret = bg_req_form(r, "client_secret");
  const char *auth = bg_req_header(r, "Authorization");
  if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
    size_t n;
    char *dec = (char *)bg_b64_decode(auth + 6, &n);
    char *colon = dec ? strchr(dec, ':') : NULL;
    if (colon) {
      *colon = '\0';
      snprintf(idbuf, sizeof idbuf, "%s", dec);
      snprintf(secbuf, sizeof secbuf, "%s", colon + 1);
      id = idbuf;
      secret = secbuf;
    }
    free(dec);
  }
  if (!id || !secret || !*id || !*secret) {
    bg_reply_header(r, "WWW-Authenticate", "Basic realm=\"bligate\"");
    bg_reply_problem(r, BG_P_CLIENT_INVALID, "authenticate with HTTP Basic or client_id and client_secret");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  const char *p[] = {id};
  PGresult *res = bg_dbc_exec(c, "client_get", 1, p, NULL);
  bg_db_release(c);
  if (!res) {
    bg_reply_problem(r, BG_P_DB_UNAVAILABLE, NULL);
    return;
  }
  /* An unknown or disabled client pays for the same key derivation as a known one: a reply
   * faster for one than the other would tell an outsider which client ids exist. */
  bool known = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 2), "active") == 0;
  bool ok = acct_secret_check(secret, known ? PQgetvalue(res, 0, 0) : acct_secret_decoy()) && known;
  json_t *allowed = ok ? json_loads(PQgetvalue(res, 0, 1), 0, NULL) : NULL;
  PQclear(res);
  if (!ok) {
    bg_reply_header(r, "WWW-Authenticate", "Basic realm=\"bligate\"");
    bg_reply_problem(r, BG_P_CLIENT_INVALID, NULL);
    return;
  }
  char scope[256] = "";
  const char *req = bg_req_form(r, "scope");
  if (req && *req) {
    for (const char *s = req; *s;) {
      const char *e = strchr(s, ' ');
      size_t n = e ? (size_t)(e - s) : strlen(s);
      if (n && !scope_allowed(allowed, s, n)) {
        json_decref(allowed);
        bg_reply_problem(r, BG_P_SCOPE_INVALID, "scope '%.*s' is not granted to this client", (int)n, s);
        return;
      }
      s += n;
      while (*s == ' ')
        s++;
    }
    snprintf(scope, sizeof scope, "%s", req);
  } else {
    size_t i;
    json_t *v;
    json_array_foreach(allowed, i, v)
    {
      if (*scope)
        strncat(scope, " ", sizeof scope - strlen(scope) - 1);
      strncat(scope, json_string_value(v), sizeof scope - strlen(scope) - 1);
    }
  }
  json_decref(allowed);
  time_t now = bg_now();
  char sub[160], jti[BG_UUID_LEN];
  snprintf(sub, sizeof sub, "client:%s", id);
  bg_uuid_v4(jti);
  json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", acct.issuer, "aud", acct.audience,
                             "sub", sub, "scope", scope, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                             (json_int_t)(now + acct.access_ttl), "jti", jti);
  char *tok = bg_jwt_sign(acct.jwt_key, acct.kid, claims);
  json_decref(claims);
  if (!tok) {
    bg_reply_problem(r, BG_P_INTERNAL, NULL);
    return;
  }
  bg_reply_json(r, 200, json_pack("{s:s, s:s, s:I, s:s}", "access_token", tok, "token_type", "Bearer", "expires_in",
                                  (json_int_t)acct.access_ttl, "scope", scope));
  free(tok);
}

void acct_h_jwks(struct bg_request *r)
{
  bg_reply_json(r, 200, bg_keyset_to_jwks(acct.keys));
}

/* ---- internal: is this session live? (the proxy asks before every BLI query) ---- */

void acct_h_internal_session(struct bg_request *r)
{
  const char *sid;
  if (!bg_req_uuid_param(r, 0, &sid))
    return;
  struct bg_dbc *c = bg_db_for(r, acct.db);
  if (!c)
    return;
  time_t now = bg_now();
  char now_s[BG_TIME_LEN];
  bg_time_fmt(now, now_s);
  const char *p[] = {sid};
  PGresult *res = bg_dbc_exec(c, "session_check", 1, p, NULL);
  if (!res) {
    bg_db_failed(r, c);
  } else if (PQntuples(res) == 0) {
    bg_reply_problem(r, BG_P_NOT_FOUND, "no such session");
  } else {
    /* the proxy asks before a query: that is the user's activity */
    struct acct_session s;
    acct_session_read(res, SESS_STATUS, now, &s);
    acct_session_touch(c, sid, &s, now, now_s);
    bg_db_release(c); /* the reply is built from the result alone */
    c = NULL;
    char idle[BG_TIME_LEN], expires[BG_TIME_LEN];
    bg_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s, s:s, s:o, s:s, s:s}", "session_id", sid, "account_id",
                            s.account_id, "name", PQgetvalue(res, 0, SESS_NAME), "live", s.reason == NULL, "reason",
                            s.reason, "account_status",
                            PQgetvalue(res, 0, SESS_STATUS), "unit_id", PQgetvalue(res, 0, SESS_UNIT_ID), "roles",
                            acct_text_array_json(PQgetvalue(res, 0, SESS_ROLES)), "idle_expires_at",
                            bg_time_fmt(s.last_seen + acct.idle_ttl, idle), "expires_at",
                            bg_time_fmt(s.expires, expires)));
  }
  PQclear(res);
  bg_db_release(c);
}
