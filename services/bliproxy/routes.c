/* The BLI proxy's endpoints. */
#include "prx.h"

const struct bg_route prx_routes[] = {
  {.method = "GET", .pattern = "/v1/bli/items", .handler = prx_h_items, .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/v1/bli/queries", .handler = prx_h_query_post, .flags = BG_R_AUTH | BG_R_JSON},
  {.method = "GET", .pattern = "/v1/bli/queries", .handler = prx_h_query_list, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/bli/queries/{}", .handler = prx_h_query_get, .flags = BG_R_AUTH},
  {.method = "GET", .pattern = "/v1/external-applications/{}/results", .handler = prx_h_app_results,
   .flags = BG_R_AUTH},
  {.method = "POST", .pattern = "/internal/results/purge", .handler = prx_h_purge,
   .flags = BG_R_CLIENT | BG_R_JSON | BG_R_BODY_OPTIONAL, .scope = "results:purge"},
};
const size_t prx_nroutes = sizeof prx_routes / sizeof prx_routes[0];
