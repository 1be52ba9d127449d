/* bligate-audit: the append-only, verifiable event log (DESIGN.md §5); `migrate` applies its
 * schema. */
#include "aud.h"
#include "ov.h"
#include "bligate/config.h"
#include "bligate/httpc.h"
#include "bligate/log.h"
#include "bligate/svc.h"
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct bg_migration audit_migrations[];
extern const size_t audit_migrations_len;

struct aud_ctx aud;

static void load_key(void)
{
  const char *path = bg_cfg_str("BLIGATE_AUDIT_KEY_FILE", NULL);
  FILE *f = fopen(path, "r");
  aud.sign_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  char kid[48];
  if (!aud.sign_key || !bg_jwk_thumbprint(aud.sign_key, kid)) {
    fprintf(stderr, "configuration error: BLIGATE_AUDIT_KEY_FILE must name an EC P-256 private key (PEM)\n");
    exit(2);
  }
  snprintf(aud.kid, sizeof aud.kid, "%s", kid);
  aud.sign_keys = bg_keyset_new();
  bg_keyset_add(aud.sign_keys, aud.kid, aud.sign_key);
  /* Key rotation: the public halves of earlier signing keys (PEM), so tree heads signed before
   * the rotation still verify here and are published at /v1/audit/keys for auditors. */
  const char *prev = bg_cfg_str("BLIGATE_AUDIT_PREVIOUS_KEYS_FILE", "");
  if (*prev) {
    FILE *pf = fopen(prev, "r");
    if (!pf) {
      fprintf(stderr, "configuration error: BLIGATE_AUDIT_PREVIOUS_KEYS_FILE cannot be read\n");
      exit(2);
    }
    EVP_PKEY *pk;
    while ((pk = PEM_read_PUBKEY(pf, NULL, NULL, NULL))) {
      char pkid[48];
      if (!bg_jwk_thumbprint(pk, pkid) || (!bg_keyset_find(aud.sign_keys, pkid) &&
                                           !bg_keyset_add(aud.sign_keys, pkid, pk))) {
        fprintf(stderr, "configuration error: BLIGATE_AUDIT_PREVIOUS_KEYS_FILE holds a key that is not EC P-256\n");
        exit(2);
      }
      EVP_PKEY_free(pk);
    }
    fclose(pf);
  }
}

static bool ready(void *ctx, const char **why)
{
  if (!bg_db_ping(aud.db)) {
    *why = "database unreachable";
    return false;
  }
  return true;
}

int main(int argc, char **argv)
{
  const char *lvl = bg_cfg_str("BLIGATE_LOG_LEVEL", "info");
  bg_log_init("audit", !strcmp(lvl, "debug") ? BG_LOG_DEBUG : !strcmp(lvl, "warn") ? BG_LOG_WARN
                                                          : !strcmp(lvl, "error") ? BG_LOG_ERROR : BG_LOG_INFO);
  json_object_seed(0);
  if (argc > 1 && !strcmp(argv[1], "migrate"))
    return bg_db_migrate(bg_cfg_str("BLIGATE_DB_OWNER_URL", NULL), "audit", audit_migrations, audit_migrations_len)
             ? 0
             : 1;
  if (argc > 1) {
    fprintf(stderr, "usage: bligate-audit [migrate]\n");
    return 2;
  }
  unsigned port = (unsigned)bg_cfg_long("BLIGATE_LISTEN_PORT", 0, 1, 65535);
  if (!getenv("BLIGATE_LISTEN_PORT")) {
    fprintf(stderr, "configuration error: BLIGATE_LISTEN_PORT is required\n");
    return 2;
  }
  load_key();
  bg_id_hmac_init_from_env();
  aud.sth_interval_ms = bg_cfg_long("BLIGATE_AUDIT_STH_INTERVAL_MS", 500, 50, 1000);
  aud.accounts_url = bg_cfg_str("BLIGATE_ACCOUNTS_URL", NULL);
  bool test_clock = bg_cfg_bool("BLIGATE_TEST_CLOCK", false);
  aud_ov_config();
  /* the log's statements and the oversight tables', prepared on every connection */
  size_t nstmts = aud_nstmts + aud_ov_nstmts;
  struct bg_db_stmt *stmts = calloc(nstmts, sizeof *stmts);
  if (!stmts)
    return 1;
  memcpy(stmts, aud_stmts, aud_nstmts * sizeof *stmts);
  memcpy(stmts + aud_nstmts, aud_ov_stmts, aud_ov_nstmts * sizeof *stmts);
  aud.db_pool = (int)bg_cfg_long("BLIGATE_DB_POOL", 8, 2, 256);
  aud.db = bg_db_new(bg_cfg_str("BLIGATE_DB_URL", NULL), "audit", aud.db_pool, stmts, nstmts);
  if (!aud.db) {
    fprintf(stderr, "cannot set up the database pool\n");
    return 1;
  }
  bg_httpc_global_init();
  aud.svc = bg_svc_from_env();
  const struct bg_keyset *keys = bg_svc_keys(aud.svc, 30000);
  if (!keys)
    return 1;
  struct bg_server_cfg cfg = {
    .service = "audit",
    .addr = bg_cfg_str("BLIGATE_LISTEN_ADDR", "127.0.0.1"),
    .port = port,
    .routes = aud_routes,
    .nroutes = aud_nroutes,
    /* a batch of 1000 events fits */
    .max_body = (size_t)bg_cfg_long("BLIGATE_MAX_BODY", 4 << 20, 1024, 64 << 20),
    .max_conns = (unsigned)bg_cfg_long("BLIGATE_MAX_CONNECTIONS", 512, 4, 65536),
    .keys = keys,
    .issuer = bg_cfg_str("BLIGATE_JWT_ISSUER", "bligate"),
    .audience = bg_cfg_str("BLIGATE_JWT_AUDIENCE", "bligate"),
    .auth_hook = aud_session_hook,
    .ready = ready,
    .test_clock = test_clock,
    .idem_db = aud.db,
  };
  struct bg_server *srv = bg_server_start(&cfg);
  if (!srv)
    return 1;
  if (!aud_sth_start()) {
    bg_error("cannot start the tree head signer");
    return 1;
  }
  bg_server_add_metrics(srv, aud_reviews_metrics);
  bg_server_add_metrics(srv, aud_corrective_metrics);
  if (!aud_webhooks_start(bg_cfg_str("BLIGATE_DB_URL", NULL))) {
    bg_error("cannot start the webhook deliveries");
    return 1;
  }
  bg_server_add_metrics(srv, aud_webhooks_metrics);
  bg_server_wait(srv);
  aud_webhooks_stop();
  aud_sth_stop();
  bg_server_stop(srv);
  bg_db_free(aud.db);
  free(stmts);
  bg_svc_free(aud.svc);
  bg_keyset_free(aud.sign_keys);
  EVP_PKEY_free(aud.sign_key);
  bg_info("stopped");
  return 0;
}
