/* bligate-bli-sandbox: a deterministic simulator of the BLI data-query service (issue 6). With
 * BLIGATE_SANDBOX_TLS_CERT_FILE and _KEY_FILE it serves HTTPS only, and with
 * BLIGATE_SANDBOX_CLIENT_CA_FILE it refuses every request without a client certificate from
 * that CA (mutual TLS, as the real service demands the agency's certificate). No database. */
#include "sbx.h"
#include "bligate/config.h"
#include "bligate/log.h"
#include "bligate/service.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct bg_route routes[] = {
  {.method = "POST", .pattern = "/bli/v1/queries", .handler = sbx_h_query, .flags = BG_R_JSON},
  {.method = "GET", .pattern = "/_sandbox/stats", .handler = sbx_h_stats},
  {.method = "POST", .pattern = "/_sandbox/reset", .handler = sbx_h_reset, .flags = BG_R_JSON | BG_R_BODY_OPTIONAL},
  {.method = "GET", .pattern = "/_sandbox/faults", .handler = sbx_h_faults_get},
  {.method = "PUT", .pattern = "/_sandbox/faults", .handler = sbx_h_faults_put, .flags = BG_R_JSON},
};

static bool ready(void *ctx, const char **why)
{
  (void)ctx, (void)why;
  return true;
}

/* An optional file: NULL when unset; a set but unreadable one exits naming its variable. */
static const char *opt_file(const char *name)
{
  const char *v = bg_cfg_str(name, "");
  if (!*v)
    return NULL;
  if (access(v, R_OK) != 0) {
    fprintf(stderr, "configuration error: %s (%s) cannot be read\n", name, v);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv)
{
  bg_service_init("bli-sandbox");
  if (argc > 1) {
    fprintf(stderr, "usage: %s (configured by BLIGATE_* variables; see services/bli-sandbox/README.md)\n", argv[0]);
    return 2;
  }
  struct bg_server_cfg cfg = bg_service_server_cfg("bli-sandbox", routes, sizeof routes / sizeof routes[0], 4096);
  cfg.ready = ready;
  cfg.tls_cert_file = opt_file("BLIGATE_SANDBOX_TLS_CERT_FILE");
  cfg.tls_key_file = opt_file("BLIGATE_SANDBOX_TLS_KEY_FILE");
  cfg.tls_client_ca_file = opt_file("BLIGATE_SANDBOX_CLIENT_CA_FILE");
  if (!cfg.tls_cert_file != !cfg.tls_key_file || (cfg.tls_client_ca_file && !cfg.tls_cert_file)) {
    fprintf(stderr, "configuration error: BLIGATE_SANDBOX_TLS_CERT_FILE and _KEY_FILE go together, and "
                    "BLIGATE_SANDBOX_CLIENT_CA_FILE needs them\n");
    return 2;
  }
  sbx_data_init(bg_cfg_str("BLIGATE_SANDBOX_SEED", SBX_DEFAULT_SEED));
  sbx_faults_init();
  cfg.draining = sbx_faults_stop;
  struct bg_server *srv = bg_server_start(&cfg);
  if (!srv)
    return 1;
  bg_info("serving %s%s", cfg.tls_cert_file ? "HTTPS" : "plain HTTP",
          cfg.tls_client_ca_file ? " to holders of a client certificate from the configured CA" : "");
  bg_server_wait(srv);
  bg_server_stop(srv);
  bg_info("stopped");
  return 0;
}
