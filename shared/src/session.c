/* Session answers from accounts → refusals (session.h). */
#include "bligate/session.h"
#include "bligate/http.h"
#include <string.h>

bool bg_session_live(struct bg_request *r, long status, const json_t *s)
{
  if (status == 404) {
    bg_reply_problem(r, BG_P_SESSION_ENDED, NULL);
    return false;
  }
  if (status != 200 || !json_is_object(s)) {
    bg_reply_problem(r, BG_P_DEPENDENCY_UNAVAILABLE, "cannot check the session with accounts");
    return false;
  }
  if (!json_is_true(json_object_get(s, "live"))) {
    const char *why = json_string_value(json_object_get(s, "reason"));
    if (why && !strcmp(why, "idle"))
      bg_reply_problem(r, BG_P_SESSION_IDLE, NULL);
    else if (why && !strcmp(why, "account-inactive"))
      bg_reply_problem(r, BG_P_ACCOUNT_INACTIVE, NULL);
    else
      bg_reply_problem(r, BG_P_SESSION_ENDED, NULL);
    return false;
  }
  const char *acct = json_string_value(json_object_get(s, "account_id"));
  if (!acct || strcmp(acct, r->token.sub) != 0) {
    bg_reply_problem(r, BG_P_TOKEN_INVALID, "the token's session belongs to another account");
    return false;
  }
  const char *st = json_string_value(json_object_get(s, "account_status"));
  if (st && strcmp(st, "active") != 0) {
    bg_reply_problem(r, BG_P_ACCOUNT_INACTIVE, NULL);
    return false;
  }
  return true;
}
