/* bligate-bliproxy: the only road to the BLI data (DESIGN.md §4); `migrate` applies its
 * schema. */
#include "prx.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/service.h"
#include "bligate/shipper.h"
#include "bligate/svc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct bg_migration bliproxy_migrations[];
extern const size_t bliproxy_migrations_len;

struct prx_ctx prx;

static bool ready(void *ctx, const char **why)
{
  (void)ctx;
  if (!bg_db_ping(prx.db)) {
    *why = "database unreachable";
    return false;
  }
  return true;
}

int main(int argc, char **argv)
{
  bg_service_init("bliproxy");
  int rc = bg_service_command(argc, argv, "bliproxy", bliproxy_migrations, bliproxy_migrations_len);
  if (rc >= 0)
    return rc;
  /* Every required setting is read before anything starts, so a bad one exits with 2. */
  struct bg_server_cfg cfg = bg_service_server_cfg("bliproxy", prx_routes, prx_nroutes, 64 << 10);
  prx.accounts_url = bg_cfg_str("BLIGATE_ACCOUNTS_URL", NULL);
  prx.workflow_url = bg_cfg_str("BLIGATE_WORKFLOW_URL", NULL);
  prx.audit_url = bg_cfg_str("BLIGATE_AUDIT_URL", NULL);
  prx.retention_days = bg_cfg_long("BLIGATE_RETENTION_DAYS", 5 * 365 + 1, 1, 100 * 366);
  int purge_s = (int)bg_cfg_long("BLIGATE_PURGE_INTERVAL_S", 3600, 1, 7 * 86400);
  const char *key_file = bg_cfg_str("BLIGATE_RESULT_KEY_FILE", NULL);
  char why[160];
  if (!bg_keyring_load(&prx.keys, key_file, why, sizeof why)) {
    fprintf(stderr, "configuration error: BLIGATE_RESULT_KEY_FILE: %s\n", why);
    return 2;
  }
  bg_id_hmac_init_from_env();
  prx_upstream_init();
  bg_httpc_global_init();
  prx.svc = bg_svc_from_env();
  prx.db = bg_db_new(bg_cfg_str("BLIGATE_DB_URL", NULL), "bliproxy", (int)bg_cfg_long("BLIGATE_DB_POOL", 16, 1, 256),
                     prx_stmts, prx_nstmts);
  if (!prx.svc || !prx.db) {
    fprintf(stderr, "cannot set up the service\n");
    return 1;
  }
  const struct bg_keyset *keys = bg_svc_keys(prx.svc, 30000);
  if (!keys) {
    fprintf(stderr, "cannot fetch the token keys from accounts\n");
    return 1;
  }
  cfg.keys = keys;
  /* the session is asked of accounts by each handler, together with what it needs (the grant) */
  cfg.ready = ready;
  struct bg_server *srv = bg_server_start(&cfg);
  if (!srv)
    return 1;
  /* events that need no wait (failures, destructions) and any the synchronous path could not
   * deliver go from the outbox to the log */
  struct bg_shipper *shipper = bg_shipper_start_env("bliproxy", "bliproxy", prx.svc);
  if (!shipper) {
    bg_error("cannot start the outbox shipper");
    return 1;
  }
  bg_server_add_metrics(srv, bg_shipper_metrics);
  bg_server_add_metrics(srv, prx_upstream_metrics);
  prx_purge_start(purge_s);
  bg_info("retention %ld days; purge every %d s", prx.retention_days, purge_s);
  bg_server_wait(srv);
  prx_purge_stop();
  bg_shipper_stop(shipper);
  bg_server_stop(srv);
  bg_db_free(prx.db);
  bg_svc_free(prx.svc);
  bg_keyring_wipe(&prx.keys);
  bg_info("stopped");
  return 0;
}
