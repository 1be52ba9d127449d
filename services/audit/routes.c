/* The audit service's endpoints. */
#include "aud.h"

const struct bg_route aud_routes[] = {
  {.method = "POST", .pattern = "/internal/events", .handler = aud_h_intake, .flags = BG_R_CLIENT | BG_R_JSON,
   .scope = "events:append"},
  {.method = "GET", .pattern = "/v1/audit/keys", .handler = aud_h_keys},
  {.method = "GET", .pattern = "/v1/audit/tree-heads/latest", .handler = aud_h_sth_latest},
  {.method = "GET", .pattern = "/v1/audit/proofs/inclusion", .handler = aud_h_inclusion},
  {.method = "GET", .pattern = "/v1/audit/proofs/consistency", .handler = aud_h_consistency},
  {.method = "GET", .pattern = "/v1/audit/events", .handler = aud_h_events, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/audit/events/search", .handler = aud_h_search, .flags = BG_R_AUTH | BG_R_JSON},
  {.method = "POST", .pattern = "/v1/audit/verifications", .handler = aud_h_verify,
   .flags = BG_R_AUTH | BG_R_JSON | BG_R_BODY_OPTIONAL},
  {.method = "POST", .pattern = "/v1/webhooks", .handler = aud_h_webhooks_post, .flags = BG_R_AUTH | BG_R_JSON},
  {.method = "GET", .pattern = "/v1/webhooks", .handler = aud_h_webhooks_list, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/webhooks/{}", .handler = aud_h_webhooks_get, .flags = BG_R_AUTH},
  {.method = "DELETE", .pattern = "/v1/webhooks/{}", .handler = aud_h_webhooks_delete, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/webhooks/{}/deliveries", .handler = aud_h_webhook_deliveries, .flags = BG_R_AUTH},
};
const size_t aud_nroutes = sizeof aud_routes / sizeof aud_routes[0];
