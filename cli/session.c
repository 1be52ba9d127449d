/* `bligate whoami`, `refresh` and `logout`: the commands that use the stored token. */
#include <string.h>
#include <time.h>

#include "bligate/clock.h"
#include "cli.h"

/* What to do after a 401, by problem code. */
static void hint_401(const char *code)
{
  if (strcmp(code, "token-expired") == 0)
    fprintf(stderr, "bligate: the access token expired: run `bligate refresh`\n");
  else
    fprintf(stderr, "bligate: sign in again with `bligate login`\n");
}

/* Loads the token for a command that must not use an exposed one; prints why not. */
static bool load_usable(const char *path, struct cli_token *t)
{
  switch (cli_token_load(path, t)) {
  case CLI_TOKEN_LOADED:
    return true;
  case CLI_TOKEN_ABSENT:
    fprintf(stderr, "bligate: not signed in (no token file %s): run `bligate login`\n", path);
    return false;
  case CLI_TOKEN_INSECURE:
    fprintf(stderr, "bligate: refusing to use it: run `bligate logout` to end the session and remove it, "
                    "then log in again\n");
    cli_token_clear(t);
    return false;
  case CLI_TOKEN_BAD:
    break;
  }
  return false;
}

/* --url overrides the server the token came from. */
static bool base_url(const struct cli_opts *o, const struct cli_token *t, char out[CLI_URL_MAX])
{
  return cli_url_normalise(o->url ? o->url : t->url, out);
}

static void print_field(const char *label, const char *value)
{
  printf("%-17s", label);
  cli_put_safe(stdout, value);
  putchar('\n');
}

static void print_expiry(const char *label, const char *when)
{
  printf("%-17s", label);
  cli_put_safe(stdout, when);
  time_t t;
  if (when && bg_time_parse(when, &t)) {
    double left = difftime(t, time(NULL));
    if (left > 0)
      printf(" (in %.0fs)", left);
    else
      fputs(" (passed)", stdout);
  }
  putchar('\n');
}

static void print_me(const json_t *me)
{
  const json_t *acc = json_object_get(me, "account");
  const json_t *unit = json_object_get(me, "unit");
  const json_t *sess = json_object_get(me, "session");
  print_field("name:", cli_str(acc, "name"));
  print_field("account:", cli_str(acc, "id"));
  printf("%-17s", "roles:");
  const json_t *roles = json_object_get(me, "roles");
  size_t i;
  const json_t *role;
  json_array_foreach(roles, i, role)
  {
    if (i > 0)
      fputs(", ", stdout);
    cli_put_safe(stdout, json_string_value(role));
  }
  if (json_array_size(roles) == 0)
    fputs("(none)", stdout);
  putchar('\n');
  printf("%-17s", "unit:");
  cli_put_safe(stdout, cli_str(unit, "name"));
  fputs(" (", stdout);
  cli_put_safe(stdout, cli_str(unit, "code"));
  fputs(", ", stdout);
  cli_put_safe(stdout, cli_str(unit, "id") ? cli_str(unit, "id") : cli_str(acc, "unit_id"));
  fputs(")\n", stdout);
  print_field("session:", cli_str(sess, "id"));
  print_expiry("idle expiry:", cli_str(sess, "idle_expires_at"));
  print_expiry("absolute expiry:", cli_str(sess, "expires_at"));
}

int cli_cmd_whoami(const struct cli_opts *o)
{
  char path[CLI_PATH_MAX], url[CLI_URL_MAX];
  struct cli_token t;
  if (!cli_token_path(path) || !load_usable(path, &t))
    return CLI_FAIL;
  int rc = CLI_FAIL;
  if (base_url(o, &t, url)) {
    struct cli_reply r;
    cli_call("GET", url, "/v1/auth/me", t.access_token, NULL, &r);
    if (r.status == 200 && json_is_object(r.json)) {
      print_me(r.json);
      rc = CLI_OK;
    } else {
      cli_report_failure("whoami", &r);
      if (r.status == 401)
        hint_401(cli_problem_code(&r));
    }
    cli_reply_free(&r);
  }
  cli_token_clear(&t);
  return rc;
}

int cli_cmd_refresh(const struct cli_opts *o)
{
  char path[CLI_PATH_MAX], url[CLI_URL_MAX];
  struct cli_token t;
  if (!cli_token_path(path) || !load_usable(path, &t))
    return CLI_FAIL;
  int rc = CLI_FAIL;
  if (base_url(o, &t, url)) {
    json_t *empty = json_object();
    struct cli_reply r;
    cli_call("POST", url, "/v1/auth/sessions/current/refresh", t.access_token, empty, &r);
    json_decref(empty);
    long long expires_in = 0;
    if (r.status != 200) {
      cli_report_failure("refresh failed", &r);
      if (r.status == 401)
        fprintf(stderr, "bligate: sign in again with `bligate login`\n");
    } else if (cli_session_store(path, t.url, r.json, &expires_in)) {
      fputs("token refreshed, session ", stdout);
      cli_put_safe(stdout, cli_str(r.json, "session_id"));
      printf(", token expires in %llds\n", expires_in);
      rc = CLI_OK;
    }
    cli_reply_free(&r);
  }
  cli_token_clear(&t);
  return rc;
}

/* DELETE the current session. An access token that expired is exchanged first (refresh takes a
 * recently expired one), so logging out after a coffee still ends the session on the server. */
static void end_session(const char *url, const char *token, struct cli_reply *r)
{
  cli_call("DELETE", url, "/v1/auth/sessions/current", token, NULL, r);
  if (r->status != 401 || strcmp(cli_problem_code(r), "token-expired") != 0)
    return;
  json_t *empty = json_object();
  struct cli_reply fresh;
  cli_call("POST", url, "/v1/auth/sessions/current/refresh", token, empty, &fresh);
  json_decref(empty);
  const char *tok = fresh.status == 200 ? cli_str(fresh.json, "access_token") : NULL;
  if (tok) {
    cli_reply_free(r);
    cli_call("DELETE", url, "/v1/auth/sessions/current", tok, NULL, r);
  }
  cli_reply_free(&fresh);
}

int cli_cmd_logout(const struct cli_opts *o)
{
  char path[CLI_PATH_MAX], url[CLI_URL_MAX];
  struct cli_token t;
  if (!cli_token_path(path))
    return CLI_FAIL;
  switch (cli_token_load(path, &t)) {
  case CLI_TOKEN_ABSENT:
    fprintf(stderr, "bligate: not signed in\n");
    return CLI_OK;
  case CLI_TOKEN_BAD:
    return CLI_FAIL;
  case CLI_TOKEN_INSECURE:
    /* Ending a session whose token may have leaked is exactly what to do with it. */
    fprintf(stderr, "bligate: ending that session anyway\n");
    break;
  case CLI_TOKEN_LOADED:
    break;
  }
  int rc = CLI_FAIL;
  if (base_url(o, &t, url)) {
    struct cli_reply r;
    end_session(url, t.access_token, &r);
    if (r.status == 204) {
      if (cli_token_remove(path)) {
        fputs("signed out, session ", stdout);
        cli_put_safe(stdout, t.session_id);
        puts(" ended");
        rc = CLI_OK;
      }
    } else if (r.status == 401) {
      /* The server no longer honours this token: the session is over (or out of reach). */
      fputs("bligate: the server says ", stderr);
      cli_put_safe(stderr, *cli_problem_code(&r) ? cli_problem_code(&r) : "unauthenticated");
      fputs(": the session had already ended; removing the token file\n", stderr);
      if (cli_token_remove(path)) {
        puts("signed out");
        rc = CLI_OK;
      }
    } else {
      cli_report_failure("logout failed", &r);
      fprintf(stderr, "bligate: the token file is kept: run `bligate logout` again\n");
    }
    cli_reply_free(&r);
  }
  cli_token_clear(&t);
  return rc;
}
