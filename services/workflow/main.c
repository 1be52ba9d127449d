/* bligate-workflow: serves legal bases, query registrations (Form 2) and external
 * applications (Form 3); `migrate` applies its schema. */
#include "wf.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/service.h"
#include "bligate/session.h"
#include "bligate/shipper.h"
#include "bligate/svc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct bg_migration workflow_migrations[];
extern const size_t workflow_migrations_len;

struct wf_ctx wf;

/* A user's session is asked of accounts on every request, as audit and accounts do: a logout,
 * a newer login, a deactivation or a change of roles or unit takes effect at once, not when the
 * token expires. Client tokens (the proxy, integration clients) have no session. */
static bool session_hook(struct bg_request *r) { return bg_session_check(r, wf.svc, wf.accounts_url, NULL); }

static bool ready(void *ctx, const char **why)
{
  if (!bg_db_ping(wf.db)) {
    *why = "database unreachable";
    return false;
  }
  return true;
}

int main(int argc, char **argv)
{
  bg_service_init("workflow");
  int rc = bg_service_command(argc, argv, "workflow", workflow_migrations, workflow_migrations_len);
  if (rc >= 0)
    return rc;
  /* Every required setting is read before anything starts, so a bad one exits with 2. */
  struct bg_server_cfg cfg = bg_service_server_cfg("workflow", wf_routes, wf_nroutes, 1 << 20);
  wf.window_days = bg_cfg_long("BLIGATE_REQUEST_WINDOW_DAYS", 7, 1, 30);
  wf.accounts_url = bg_cfg_str("BLIGATE_ACCOUNTS_URL", NULL);
  bg_id_hmac_init_from_env();
  wf_crypt_init();
  bg_httpc_global_init();
  wf.svc = bg_svc_from_env();
  wf.db = bg_db_new(bg_cfg_str("BLIGATE_DB_URL", NULL), "workflow", (int)bg_cfg_long("BLIGATE_DB_POOL", 8, 1, 256),
                    wf_stmts, wf_nstmts);
  if (!wf.svc || !wf.db) {
    fprintf(stderr, "cannot set up the service\n");
    return 1;
  }
  /* tokens are verified here with accounts' published keys (ES256 only) */
  const struct bg_keyset *keys = bg_svc_keys(wf.svc, 30000);
  if (!keys) {
    fprintf(stderr, "cannot fetch the token keys from accounts\n");
    return 1;
  }
  cfg.keys = keys;
  cfg.auth_hook = session_hook;
  cfg.ready = ready;
  cfg.idem_db = wf.db;
  struct bg_server *srv = bg_server_start(&cfg);
  if (!srv)
    return 1;
  /* every change's event goes from the outbox to the audit log; audit may start later or be
   * away for a while: the shipper backs off and the outbox keeps the events. As for accounts,
   * new rows wake it in-process (db.h's outbox hook) rather than by NOTIFY (dropped in 0002). */
  struct bg_shipper *shipper = bg_shipper_start_env("workflow", "workflow", wf.svc);
  if (!shipper) {
    bg_error("cannot start the outbox shipper");
    return 1;
  }
  bg_server_add_metrics(srv, bg_shipper_metrics);
  bg_info("usable window of approved requests: %ld days", wf.window_days);
  bg_server_wait(srv);
  bg_shipper_stop(shipper);
  bg_server_stop(srv);
  bg_db_free(wf.db);
  bg_svc_free(wf.svc);
  bg_info("stopped");
  return 0;
}
