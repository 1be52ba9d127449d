/* What accounts says about a user's session (GET /internal/sessions/{sid}, or
 * .../items/{item}), turned into the refusal every service gives: revocation, logout, idle
 * expiry and deactivation take effect at once wherever they are asked. */
#ifndef BLIGATE_SESSION_H
#define BLIGATE_SESSION_H
#include <jansson.h>
#include <stdbool.h>

struct bg_request;
struct bg_svc;

/* status and reply of the call (status 0: accounts unreachable). True when the session is live,
 * belongs to the token's account and the account is active; otherwise replies the refusal
 * (session-ended, session-idle-expired, account-inactive, token-invalid, or 503
 * dependency-unavailable) and returns false. */
bool bg_session_live(struct bg_request *r, long status, const json_t *s);
/* After bg_session_live: the token's roles and unit replaced with the ones accounts holds now
 * (the token's are those of its login; a change of unit or role leaves the session running). */
void bg_session_take_authz(struct bg_request *r, const json_t *s);

/* For a service's auth hook (bg_server_cfg.auth_hook) or handler, for user tokens: asks
 * accounts at accounts_url about the token's session on every request, refuses as
 * bg_session_live does, and replaces the token's roles and unit with the ones accounts holds
 * now, so a change of roles or unit takes effect at once too. When live and session is not
 * NULL, *session is accounts' answer (the caller's to json_decref). */
bool bg_session_check(struct bg_request *r, struct bg_svc *svc, const char *accounts_url, json_t **session);

#endif
