/* The audit service's endpoints. */
#include "aud.h"
#include "ov.h"

#define AUTH BG_R_AUTH
#define JSON BG_R_JSON
#define OPT BG_R_BODY_OPTIONAL

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
  /* oversight (issue 7) */
  {.method = "POST", .pattern = "/v1/audit/quarterly-reviews", .handler = aud_h_reviews_post, .flags = AUTH | JSON},
  {.method = "GET", .pattern = "/v1/audit/quarterly-reviews", .handler = aud_h_reviews_list, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/audit/quarterly-reviews/{}", .handler = aud_h_reviews_get, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/audit/quarterly-reviews/{}/sign", .handler = aud_h_reviews_sign,
   .flags = AUTH | JSON | OPT},
  {.method = "POST", .pattern = "/v1/audit/quarterly-reviews/{}/submission", .handler = aud_h_reviews_submit,
   .flags = AUTH | JSON},
  {.method = "GET", .pattern = "/v1/audit/quarterly-reviews/{}/export", .handler = aud_h_reviews_export, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/audit/quarters", .handler = aud_h_quarters, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/audit/inspections", .handler = aud_h_inspections_post,
   .flags = AUTH | JSON | BG_R_IDEMPOTENT},
  {.method = "GET", .pattern = "/v1/audit/inspections", .handler = aud_h_inspections_list, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/audit/inspections/{}", .handler = aud_h_inspections_get, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/audit/inspections/{}/responses", .handler = aud_h_inspections_responses,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/audit/inspections/{}/findings", .handler = aud_h_inspections_findings,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/audit/inspections/{}/signoffs", .handler = aud_h_inspections_signoffs,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/audit/inspections/{}/director-review", .handler = aud_h_inspections_director,
   .flags = AUTH | JSON | OPT},
  {.method = "GET", .pattern = "/v1/audit/corrective-actions", .handler = aud_h_corrective_list, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/audit/corrective-actions/{}", .handler = aud_h_corrective_get, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/audit/corrective-actions/{}/report", .handler = aud_h_corrective_report,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/audit/corrective-actions/{}/close", .handler = aud_h_corrective_close,
   .flags = AUTH | JSON | OPT},
  {.method = "POST", .pattern = "/v1/audit/corrective-actions/{}/suspension", .handler = aud_h_corrective_suspend,
   .flags = AUTH | JSON | OPT},
  /* not BG_R_IDEMPOTENT: the key's record would keep an unkeyed hash of a body holding an ID number */
  {.method = "POST", .pattern = "/v1/audit/subject-access-reports", .handler = aud_h_sar_post, .flags = AUTH | JSON},
  {.method = "GET", .pattern = "/v1/audit/subject-access-reports", .handler = aud_h_sar_list, .flags = AUTH},
  {.method = "GET", .pattern = "/v1/audit/subject-access-reports/{}", .handler = aud_h_sar_get, .flags = AUTH},
  {.method = "POST", .pattern = "/v1/audit/subject-access-reports/{}/extension", .handler = aud_h_sar_extend,
   .flags = AUTH | JSON},
  {.method = "POST", .pattern = "/v1/webhooks", .handler = aud_h_webhooks_post, .flags = BG_R_AUTH | BG_R_JSON},
  {.method = "GET", .pattern = "/v1/webhooks", .handler = aud_h_webhooks_list, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/webhooks/{}", .handler = aud_h_webhooks_get, .flags = BG_R_AUTH},
  {.method = "DELETE", .pattern = "/v1/webhooks/{}", .handler = aud_h_webhooks_delete, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/webhooks/{}/deliveries", .handler = aud_h_webhook_deliveries, .flags = BG_R_AUTH},
};
const size_t aud_nroutes = sizeof aud_routes / sizeof aud_routes[0];
