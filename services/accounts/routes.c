/* The accounts service's endpoints. */
#include "acct.h"

#define JSON BG_R_JSON
#define OPT BG_R_BODY_OPTIONAL
#define IDEM BG_R_IDEMPOTENT

const struct bg_route acct_routes[] = {
  {.method = "POST", .pattern = "/v1/auth/challenges", .handler = acct_h_challenges_post, .flags = JSON | OPT},
  {.method = "POST", .pattern = "/v1/auth/sessions", .handler = acct_h_sessions_post, .flags = JSON},
  {.method = "POST", .pattern = "/v1/auth/sessions/current/refresh", .handler = acct_h_sessions_refresh,
   .flags = BG_R_AUTH | BG_R_EXPIRED_OK | JSON | OPT},
  {.method = "DELETE", .pattern = "/v1/auth/sessions/current", .handler = acct_h_sessions_delete, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/auth/me", .handler = acct_h_me, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/auth/tokens", .handler = acct_h_tokens, .flags = BG_R_FORM},
  {.method = "GET", .pattern = "/.well-known/jwks.json", .handler = acct_h_jwks},
  {.method = "GET", .pattern = "/v1/units", .handler = acct_h_units_list, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/units", .handler = acct_h_units_post, .flags = BG_R_AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/units/{}", .handler = acct_h_units_get, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/accounts", .handler = acct_h_accounts_list, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/accounts", .handler = acct_h_accounts_post, .flags = BG_R_AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/accounts/{}", .handler = acct_h_accounts_get, .flags = BG_R_AUTH},
  {.method = "PATCH", .pattern = "/v1/accounts/{}", .handler = acct_h_accounts_patch, .flags = BG_R_AUTH | JSON},
  {.method = "POST", .pattern = "/v1/accounts/{}/deactivate", .handler = acct_h_accounts_deactivate,
   .flags = BG_R_AUTH | JSON},
  {.method = "GET", .pattern = "/v1/accounts/{}/certificates", .handler = acct_h_certs_list, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/accounts/{}/certificates", .handler = acct_h_certs_post,
   .flags = BG_R_AUTH | JSON | IDEM},
  {.method = "DELETE", .pattern = "/v1/accounts/{}/certificates/{}", .handler = acct_h_certs_delete,
   .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/accounts/{}/suspend", .handler = acct_h_accounts_suspend,
   .flags = BG_R_AUTH | JSON},
  {.method = "GET", .pattern = "/v1/accounts/{}/grants", .handler = acct_h_grants_list, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/permission-admin/handover", .handler = acct_h_admin_handover,
   .flags = BG_R_AUTH | JSON},
  {.method = "GET", .pattern = "/v1/permission-applications", .handler = acct_h_apps_list, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/permission-applications", .handler = acct_h_apps_post, .flags = BG_R_AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/permission-applications/{}", .handler = acct_h_apps_get, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/permission-applications/{}/decisions", .handler = acct_h_apps_decide,
   .flags = BG_R_AUTH | JSON},
  {.method = "POST", .pattern = "/v1/permission-applications/{}/resubmission", .handler = acct_h_apps_resubmit,
   .flags = BG_R_AUTH | JSON},
  {.method = "POST", .pattern = "/v1/permission-applications/{}/withdraw", .handler = acct_h_apps_withdraw,
   .flags = BG_R_AUTH | JSON | OPT},
  {.method = "GET", .pattern = "/internal/accounts/{}/grants", .handler = acct_h_internal_grants, .flags = BG_R_CLIENT,
   .scope = "grants:read"},
  {.method = "GET", .pattern = "/internal/sessions/{}", .handler = acct_h_internal_session, .flags = BG_R_CLIENT,
   .scope = "sessions:read"},
  {.method = "GET", .pattern = "/internal/accounts/{}", .handler = acct_h_internal_account, .flags = BG_R_CLIENT,
   .scope = "accounts:read"},
  {.method = "GET", .pattern = "/internal/units/{}", .handler = acct_h_internal_unit, .flags = BG_R_CLIENT,
   .scope = "accounts:read"},
};
const size_t acct_nroutes = sizeof acct_routes / sizeof acct_routes[0];
