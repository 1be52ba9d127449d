/* `bligate login`: challenge, signature over the nonce, session; the token goes to the token
 * file. Also the storing of a session reply, which refresh shares. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLI_NONCE_MIN 16
#define CLI_NONCE_MAX 512

/* The server chooses what we sign with the holder's certificate key, so only sign something
 * that looks like a nonce: base64 / base64url text of a sane length, never arbitrary bytes a
 * hostile server could pass off as a document. */
static bool nonce_acceptable(const char *nonce)
{
  size_t n = strlen(nonce);
  if (n < CLI_NONCE_MIN || n > CLI_NONCE_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = nonce[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '+' || c == '/' || c == '=';
    if (!ok)
      return false;
  }
  return true;
}

bool cli_session_store(const char *token_path, const char *url, const json_t *reply, long long *expires_in)
{
  const char *tok = cli_str(reply, "access_token");
  const char *sid = cli_str(reply, "session_id");
  json_t *exp = json_object_get(reply, "expires_in");
  if (!tok || !*tok || !sid || !json_is_integer(exp)) {
    fprintf(stderr, "bligate: the server's session reply lacks access_token, session_id or expires_in\n");
    return false;
  }
  *expires_in = json_integer_value(exp);
  struct cli_token t = {.access_token = NULL};
  if (!cli_copy(t.url, sizeof t.url, url) || !cli_copy(t.session_id, sizeof t.session_id, sid)) {
    fprintf(stderr, "bligate: the server's session id is too long\n");
    return false;
  }
  t.access_token = strdup(tok);
  bool ok = t.access_token && cli_token_save(token_path, &t);
  cli_token_clear(&t);
  return ok;
}

/* POST /v1/auth/challenges → challenge_id and nonce (copied into the caller's buffers). */
static bool get_challenge(const char *url, char *id, size_t idcap, char *nonce, size_t noncecap)
{
  json_t *empty = json_object();
  struct cli_reply r;
  cli_call("POST", url, "/v1/auth/challenges", NULL, empty, &r);
  json_decref(empty);
  bool ok = false;
  if (r.status != 201) {
    cli_report_failure("cannot get a login challenge", &r);
  } else {
    const char *cid = cli_str(r.json, "challenge_id");
    const char *n = cli_str(r.json, "nonce");
    if (!cid || !n || !cli_copy(id, idcap, cid) || !nonce_acceptable(n) || !cli_copy(nonce, noncecap, n))
      fprintf(stderr, "bligate: the server's challenge is malformed; refusing to sign it\n");
    else
      ok = true;
  }
  cli_reply_free(&r);
  return ok;
}

/* The signed body for POST /v1/auth/sessions, or NULL (message printed). */
static json_t *session_body(const struct cli_signer *s, bool cms, const char *challenge_id, const char *nonce)
{
  json_t *body = NULL;
  if (cms) {
    char *sig = cli_signer_sign_cms(s, nonce, strlen(nonce));
    if (sig)
      body = json_pack("{s:s, s:s}", "challenge_id", challenge_id, "cms", sig);
    free(sig);
  } else {
    char *pem = cli_signer_cert_pem(s);
    char *sig = pem ? cli_signer_sign_raw(s, nonce, strlen(nonce)) : NULL;
    if (sig)
      body = json_pack("{s:s, s:s, s:s}", "challenge_id", challenge_id, "certificate", pem, "signature", sig);
    free(sig);
    free(pem);
  }
  return body;
}

/* The session exists but cannot be stored: end it rather than leave it live and unreachable. */
static void abandon_session(const char *url, const json_t *reply)
{
  const char *tok = cli_str(reply, "access_token");
  if (!tok)
    return;
  struct cli_reply r;
  cli_call("DELETE", url, "/v1/auth/sessions/current", tok, NULL, &r);
  if (r.status == 204)
    fprintf(stderr, "bligate: the new session was ended again\n");
  cli_reply_free(&r);
}

int cli_cmd_login(const struct cli_opts *o)
{
  char url[CLI_URL_MAX], path[CLI_PATH_MAX];
  if (!cli_url_default(o->url, url) || !cli_token_path(path))
    return CLI_FAIL;
  struct cli_signer *s = cli_signer_new(o->cert, o->key);
  if (!s)
    return CLI_FAIL;
  char challenge_id[64], nonce[CLI_NONCE_MAX + 1];
  json_t *body = NULL;
  if (get_challenge(url, challenge_id, sizeof challenge_id, nonce, sizeof nonce))
    body = session_body(s, o->cms, challenge_id, nonce);
  cli_signer_free(s);
  if (!body)
    return CLI_FAIL;

  struct cli_reply r;
  cli_call("POST", url, "/v1/auth/sessions", NULL, body, &r);
  json_decref(body);
  int rc = CLI_FAIL;
  long long expires_in = 0;
  if (r.status != 201) {
    cli_report_failure("login failed", &r);
  } else if (!cli_session_store(path, url, r.json, &expires_in)) {
    abandon_session(url, r.json);
  } else {
    const json_t *acc = json_object_get(r.json, "account");
    fputs("signed in as ", stdout);
    cli_put_safe(stdout, cli_str(acc, "name"));
    fputs(" (", stdout);
    cli_put_safe(stdout, cli_str(acc, "unit_id"));
    fputs("), session ", stdout);
    cli_put_safe(stdout, cli_str(r.json, "session_id"));
    printf(", token expires in %llds\n", expires_in);
    rc = CLI_OK;
  }
  cli_reply_free(&r);
  return rc;
}
