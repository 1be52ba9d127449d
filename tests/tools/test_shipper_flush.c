/* bligate-test-shipper-flush: drives the shipper's synchronous path for tests/integration/
 * test_shipper.py. It writes one event to the accounts outbox (as the accounts runtime role),
 * runs a shipper of its own beside the accounts service's (as a second replica would) and
 * waits with bg_shipper_flush_event. Prints {"event_id", "flushed", "ms"}; exit 0 when the
 * event was acknowledged by the audit service within the timeout (argv[1], ms), 1 when not.
 * Environment: as the accounts service (BLIGATE_DB_URL, BLIGATE_AUDIT_URL,
 * BLIGATE_ACCOUNTS_URL, BLIGATE_CLIENT_ID, BLIGATE_CLIENT_SECRET_FILE). */
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/db.h"
#include "bligate/events.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/shipper.h"
#include "bligate/svc.h"
#include "bligate/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bg_db_stmt stmts[] = {BG_OUTBOX_STMT};

int main(int argc, char **argv)
{
  long timeout_ms;
  if (argc != 2 || !bg_parse_long(argv[1], 1, 600000, &timeout_ms)) {
    fprintf(stderr, "usage: bligate-test-shipper-flush TIMEOUT_MS\n");
    return 2;
  }
  bg_log_init("shipper-test", BG_LOG_WARN);
  json_object_seed(0);
  bg_httpc_global_init();
  struct bg_svc *svc = bg_svc_from_env();
  struct bg_db *db = bg_db_new(bg_cfg_str("BLIGATE_DB_URL", NULL), "accounts", 1, stmts, 1);
  struct bg_dbc *c = db ? bg_db_acquire(db, 5000) : NULL;
  json_t *ev = bg_event_new(NULL, "test.shipper.flush", "test", NULL, "success");
  char id[BG_UUID_LEN];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(ev, "id")));
  if (!c || !bg_outbox_add(c, ev)) { /* autocommit: the row is committed when this returns */
    fprintf(stderr, "cannot write the outbox row\n");
    return 2;
  }
  bg_db_release(c);
  struct bg_shipper *s = bg_shipper_start_env("shipper-test", "accounts", svc);
  if (!s) {
    fprintf(stderr, "cannot start a shipper\n");
    return 2;
  }
  int64_t t0 = bg_mono_us();
  bool ok = bg_shipper_flush_event(s, id, (int)timeout_ms);
  long long ms = (long long)((bg_mono_us() - t0) / 1000);
  printf("{\"event_id\":\"%s\",\"flushed\":%s,\"ms\":%lld}\n", id, ok ? "true" : "false", ms);
  bg_shipper_stop(s);
  bg_db_free(db);
  bg_svc_free(svc);
  return ok ? 0 : 1;
}
