/* The workflow service's endpoints. */
#include "wf.h"

#define AUTH BG_R_AUTH
#define JSON BG_R_JSON
#define OPT BG_R_BODY_OPTIONAL
#define IDEM BG_R_IDEMPOTENT
/* integration clients (docs/integration.md) act on their unit's approvals */
#define INTEGRATION BG_R_INTEGRATION

const struct bg_route wf_routes[] = {
  {.method = "GET", .pattern = "/v1/legal-bases", .handler = wf_h_legal_bases_list, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/legal-bases", .handler = wf_h_legal_bases_post, .flags = AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/legal-bases/{}", .handler = wf_h_legal_bases_get, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/query-requests", .handler = wf_h_requests_list, .flags = AUTH | INTEGRATION,
   .scope = "approvals:"},
  {.method = "POST", .pattern = "/v1/query-requests", .handler = wf_h_requests_post, .flags = AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/query-requests/{}", .handler = wf_h_requests_get, .flags = AUTH | INTEGRATION,
   .scope = "approvals:"},
  {.method = "POST", .pattern = "/v1/query-requests/{}/decision", .handler = wf_h_requests_decide,
   .flags = AUTH | JSON | INTEGRATION, .scope = "approvals:"},
  {.method = "POST", .pattern = "/v1/query-requests/{}/cancel", .handler = wf_h_requests_cancel,
   .flags = AUTH | JSON | OPT},
  {.method = "GET", .pattern = "/v1/external-applications", .handler = wf_h_apps_list, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/external-applications", .handler = wf_h_apps_post, .flags = AUTH | JSON | IDEM},
  {.method = "GET", .pattern = "/v1/external-applications/{}", .handler = wf_h_apps_get, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/external-applications/{}/endorsement", .handler = wf_h_apps_endorse,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/external-applications/{}/review", .handler = wf_h_apps_review,
   .flags = AUTH | JSON},
  {.method = "GET", .pattern = "/v1/external-applications/{}/results", .handler = wf_h_apps_results, .flags = AUTH},
  {.method = "POST", .pattern = "/internal/query-requests/{}/consume", .handler = wf_h_consume,
   .flags = BG_R_CLIENT | JSON, .scope = "requests:consume"},
  {.method = "POST", .pattern = "/internal/query-requests/{}/release", .handler = wf_h_release,
   .flags = BG_R_CLIENT | JSON, .scope = "requests:consume"},
};
const size_t wf_nroutes = sizeof wf_routes / sizeof wf_routes[0];
