/* bligate-accounts: serves the accounts API; `migrate`, `bootstrap-admin` and `add-client`
 * are the operator's one-off commands. */
#include "acct.h"
#include "ic.h"
#include "bligate/clock.h"
#include "bligate/config.h"
#include "bligate/events.h"
#include "bligate/httpc.h"
#include "bligate/job.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include "bligate/shipper.h"
#include "bligate/svc.h"
#include "bligate/twid.h"
#include "bligate/util.h"
#include <getopt.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct bg_migration accounts_migrations[];
extern const size_t accounts_migrations_len;

struct acct_ctx acct;

static void load_keys(void)
{
  const char *path = bg_cfg_str("BLIGATE_JWT_KEY_FILE", NULL);
  FILE *f = fopen(path, "r");
  acct.jwt_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  acct.keys = bg_keyset_new();
  char kid[48];
  if (!acct.jwt_key || !bg_jwk_thumbprint(acct.jwt_key, kid)) {
    fprintf(stderr, "configuration error: BLIGATE_JWT_KEY_FILE must name an EC P-256 private key (PEM)\n");
    exit(2);
  }
  snprintf(acct.kid, sizeof acct.kid, "%s", bg_cfg_str("BLIGATE_JWT_KID", kid));
  bg_keyset_add(acct.keys, acct.kid, acct.jwt_key);
  /* Key rotation: tokens signed by the previous keys stay valid until they expire. */
  const char *prev = bg_cfg_str("BLIGATE_JWT_PREVIOUS_KEYS_FILE", "");
  if (*prev) {
    FILE *pf = fopen(prev, "r");
    EVP_PKEY *pk;
    if (!pf) {
      fprintf(stderr, "configuration error: BLIGATE_JWT_PREVIOUS_KEYS_FILE cannot be read\n");
      exit(2);
    }
    while ((pk = PEM_read_PUBKEY(pf, NULL, NULL, NULL))) {
      char pkid[48];
      if (bg_jwk_thumbprint(pk, pkid))
        bg_keyset_add(acct.keys, pkid, pk);
      EVP_PKEY_free(pk);
    }
    fclose(pf);
  }
}

static void load_config(void)
{
  acct.issuer = bg_cfg_str("BLIGATE_JWT_ISSUER", "bligate");
  acct.audience = bg_cfg_str("BLIGATE_JWT_AUDIENCE", "bligate");
  acct.access_ttl = bg_cfg_long("BLIGATE_ACCESS_TOKEN_SECONDS", 300, 10, 3600);
  acct.idle_ttl = bg_cfg_long("BLIGATE_SESSION_IDLE_SECONDS", 600, 1, 86400);
  acct.max_ttl = bg_cfg_long("BLIGATE_SESSION_MAX_SECONDS", 28800, 1, 7 * 86400);
  acct.challenge_ttl = bg_cfg_long("BLIGATE_CHALLENGE_SECONDS", 60, 5, 600);
  acct.session_retention_days = bg_cfg_long("BLIGATE_SESSION_RETENTION_DAYS", 90, 1, 36500);
  acct.fails_per_cert = bg_cfg_long("BLIGATE_LOGIN_FAILS_PER_CERT", 5, 1, 1000000);
  acct.fails_per_addr = bg_cfg_long("BLIGATE_LOGIN_FAILS_PER_ADDR", 100, 1, 100000000);
  acct.fail_window = bg_cfg_long("BLIGATE_LOGIN_FAILS_WINDOW_SECONDS", 900, 1, 86400);
}

static struct bg_db *open_db(int size)
{
  struct bg_db *db = bg_db_new(bg_cfg_str("BLIGATE_DB_URL", NULL), "accounts", size, acct_stmts, acct_nstmts);
  if (!db) {
    fprintf(stderr, "cannot set up the database pool\n");
    exit(1);
  }
  return db;
}

static bool ready(void *ctx, const char **why)
{
  if (!bg_db_ping(acct.db)) {
    *why = "database unreachable";
    return false;
  }
  return true;
}

static void metrics(void *ctx, char **buf, size_t *len, size_t *cap)
{
  bg_metrics_append(buf, len, cap,
                    "# HELP bligate_revocation_ok 1 when the CRL is present and current (logins possible).\n"
                    "# TYPE bligate_revocation_ok gauge\nbligate_revocation_ok %d\n",
                    acct_pki_revocation_ok(acct.pki, bg_now()) ? 1 : 0);
}

static int cmd_migrate(void)
{
  return bg_db_migrate(bg_cfg_str("BLIGATE_DB_OWNER_URL", NULL), "accounts", accounts_migrations,
                       accounts_migrations_len)
           ? 0
           : 1;
}

static int cmd_add_client(int argc, char **argv)
{
  const char *id = NULL, *secret_file = NULL, *scopes = "";
  static const struct option opts[] = {{"id", required_argument, 0, 'i'},
                                       {"secret-file", required_argument, 0, 's'},
                                       {"scopes", required_argument, 0, 'c'},
                                       {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (ch == 'i')
      id = optarg;
    else if (ch == 's')
      secret_file = optarg;
    else if (ch == 'c')
      scopes = optarg;
    else
      return 2;
  }
  if (!id || !secret_file) {
    fprintf(stderr, "usage: bligate-accounts add-client --id ID --secret-file FILE [--scopes \"a b\"]\n");
    return 2;
  }
  char secret[256] = "";
  FILE *f = fopen(secret_file, "r");
  if (!f || !fgets(secret, sizeof secret, f)) {
    fprintf(stderr, "cannot read %s\n", secret_file);
    if (f)
      fclose(f);
    return 1;
  }
  fclose(f);
  secret[strcspn(secret, "\r\n")] = '\0';
  if (strlen(secret) < 16) {
    fprintf(stderr, "the client secret must be at least 16 characters\n");
    return 1;
  }
  char *hash = acct_secret_hash(secret);
  struct bg_db *db = open_db(1);
  struct bg_dbc *c = bg_db_acquire(db, 5000);
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *p[] = {id, hash, scopes, now_s};
  int rc = c && hash && bg_dbc_run(c, "client_upsert", 4, p, NULL) ? 0 : 1;
  bg_db_release(c);
  bg_db_free(db);
  free(hash);
  if (rc == 0)
    printf("client %s registered with scopes \"%s\"\n", id, scopes);
  return rc;
}

/* The first permission administrator cannot be created through the API (nobody could
 * authorize it): an operator creates it once, with database access, and it is audited. */
static int cmd_bootstrap_admin(int argc, char **argv)
{
  const char *ucode = NULL, *uname = NULL, *ukind = "it_team", *name = NULL, *nid = NULL, *title = "權限管理員",
             *certfile = NULL;
  static const struct option opts[] = {{"unit-code", required_argument, 0, 'u'}, {"unit-name", required_argument, 0, 'n'},
                                       {"unit-kind", required_argument, 0, 'k'}, {"name", required_argument, 0, 'a'},
                                       {"national-id", required_argument, 0, 'i'}, {"title", required_argument, 0, 't'},
                                       {"cert", required_argument, 0, 'c'},     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'u': ucode = optarg; break;
    case 'n': uname = optarg; break;
    case 'k': ukind = optarg; break;
    case 'a': name = optarg; break;
    case 'i': nid = optarg; break;
    case 't': title = optarg; break;
    case 'c': certfile = optarg; break;
    default: return 2;
    }
  }
  if (!ucode || !uname || !name || !nid || !certfile) {
    fprintf(stderr, "usage: bligate-accounts bootstrap-admin --unit-code C --unit-name N [--unit-kind K] --name N "
                    "--national-id ID [--title T] --cert FILE\n");
    return 2;
  }
  if (!bg_twid_valid(nid)) {
    fprintf(stderr, "--national-id is not a valid ID number\n");
    return 2;
  }
  acct.pki = acct_pki_new(bg_cfg_str("BLIGATE_TRUST_CA_FILE", NULL), bg_cfg_str("BLIGATE_CRL_FILE", NULL));
  FILE *f = fopen(certfile, "r");
  X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  struct acct_cert_info ci;
  char detail[160];
  if (!cert || !acct_cert_info(cert, &ci)) {
    fprintf(stderr, "cannot read the certificate %s\n", certfile);
    return 1;
  }
  enum acct_cert_err ce = acct_pki_verify(acct.pki, cert, bg_now(), detail, sizeof detail);
  if (ce != ACCT_CERT_OK) {
    fprintf(stderr, "certificate refused: %s (%s)\n", bg_problem_code(acct_cert_problem(ce)), detail);
    return 1;
  }
  if (strcmp(ci.cn, name) != 0 || strcmp(ci.id_last4, nid + 6) != 0) {
    fprintf(stderr, "certificate refused: its holder name or ID digits differ from --name/--national-id\n");
    return 1;
  }
  struct bg_db *db = open_db(1);
  struct bg_dbc *c = bg_db_acquire(db, 5000);
  int rc = 1;
  PGresult *res = NULL;
  if (!c || !bg_dbc_begin(c))
    goto done;
  res = bg_dbc_exec(c, "admin_exists", 0, NULL, NULL);
  if (!res)
    goto done;
  if (PQntuples(res) > 0) {
    fprintf(stderr, "a permission administrator exists already; hand the role over through the API\n");
    goto done;
  }
  PQclear(res);
  char now_s[BG_TIME_LEN], uid[BG_UUID_LEN], aid[BG_UUID_LEN], cid[BG_UUID_LEN], nb[BG_TIME_LEN], na[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  const char *pu[] = {ucode};
  if (!(res = bg_dbc_exec(c, "unit_by_code", 1, pu, NULL)))
    goto done;
  if (PQntuples(res) == 1) {
    snprintf(uid, sizeof uid, "%s", PQgetvalue(res, 0, 0));
  } else {
    bg_uuid_v4(uid);
    const char *pi[] = {uid, ucode, uname, ukind, NULL, now_s};
    PQclear(res);
    if (!(res = bg_dbc_exec(c, "unit_insert", 6, pi, NULL)))
      goto done;
  }
  PQclear(res);
  bg_uuid_v4(aid);
  const char *pa[] = {aid, name, nid, uid, title, "[\"permission_admin\",\"it_staff\"]", NULL, NULL, NULL, now_s};
  if (!(res = bg_dbc_exec(c, "account_insert", 10, pa, NULL)))
    goto done;
  PQclear(res);
  bg_uuid_v4(cid);
  bg_time_fmt(ci.not_before, nb);
  bg_time_fmt(ci.not_after, na);
  char *pem = acct_cert_pem(cert);
  const char *pc[] = {cid, aid, ci.fingerprint, ci.serial, ci.issuer, ci.cn, nb, na, pem, now_s};
  res = bg_dbc_exec(c, "cert_insert", 10, pc, NULL);
  free(pem);
  if (!res)
    goto done;
  json_t *ev = bg_event_new(NULL, "account.bootstrapped", "account", aid, "success");
  json_object_set_new(json_object_get(ev, "details"), "unit_id", json_string(uid));
  json_object_set_new(json_object_get(ev, "details"), "roles", json_pack("[s,s]", "permission_admin", "it_staff"));
  bg_event_set_actor(ev, NULL, "operator (bootstrap-admin)", NULL, NULL);
  if (!bg_outbox_add(c, ev) || !bg_dbc_commit(c))
    goto done;
  printf("{\"account_id\":\"%s\",\"unit_id\":\"%s\"}\n", aid, uid);
  rc = 0;
done:
  if (rc && c && c->in_tx)
    bg_dbc_rollback(c);
  if (rc)
    fprintf(stderr, "bootstrap-admin failed\n");
  PQclear(res);
  bg_db_release(c);
  bg_db_free(db);
  X509_free(cert);
  return rc;
}

int main(int argc, char **argv)
{
  const char *lvl = bg_cfg_str("BLIGATE_LOG_LEVEL", "info");
  bg_log_init("accounts", !strcmp(lvl, "debug") ? BG_LOG_DEBUG : !strcmp(lvl, "warn") ? BG_LOG_WARN
                                                             : !strcmp(lvl, "error") ? BG_LOG_ERROR : BG_LOG_INFO);
  json_object_seed(0);
  if (argc > 1 && !strcmp(argv[1], "migrate"))
    return cmd_migrate();
  if (argc > 1 && !strcmp(argv[1], "add-client"))
    return cmd_add_client(argc - 1, argv + 1);
  if (argc > 1 && !strcmp(argv[1], "bootstrap-admin"))
    return cmd_bootstrap_admin(argc - 1, argv + 1);
  if (argc > 1) {
    fprintf(stderr, "usage: bligate-accounts [migrate | add-client ... | bootstrap-admin ...]\n");
    return 2;
  }
  load_config();
  load_keys();
  acct.pki = acct_pki_new(bg_cfg_str("BLIGATE_TRUST_CA_FILE", NULL), bg_cfg_str("BLIGATE_CRL_FILE", NULL));
  acct.db = open_db((int)bg_cfg_long("BLIGATE_DB_POOL", 8, 1, 256));
  /* the keyed digest of Idempotency-Key records (a body may hold a national ID) */
  if (*bg_cfg_str("BLIGATE_ID_HMAC_KEY_FILE", ""))
    bg_id_hmac_init_from_env();
  if (!acct_ic_init(bg_cfg_str("BLIGATE_DB_URL", NULL))) {
    fprintf(stderr, "cannot set up the database pool\n");
    return 1;
  }
  bg_httpc_global_init();
  struct bg_server_cfg cfg = {
    .service = "accounts",
    .addr = bg_cfg_str("BLIGATE_LISTEN_ADDR", "127.0.0.1"),
    .port = (unsigned)bg_cfg_long("BLIGATE_LISTEN_PORT", 0, 1, 65535),
    .routes = acct_routes,
    .nroutes = acct_nroutes,
    .max_body = (size_t)bg_cfg_long("BLIGATE_MAX_BODY", 1 << 20, 1024, 64 << 20),
    .max_conns = (unsigned)bg_cfg_long("BLIGATE_MAX_CONNECTIONS", 512, 4, 65536),
    .keys = acct.keys,
    .issuer = acct.issuer,
    .audience = acct.audience,
    .auth_hook = acct_session_hook,
    .ready = ready,
    .test_clock = bg_cfg_bool("BLIGATE_TEST_CLOCK", false),
    .expired_leeway_s = (unsigned)acct.idle_ttl,
    .idem_db = acct.db,
  };
  if (!getenv("BLIGATE_LISTEN_PORT")) {
    fprintf(stderr, "configuration error: BLIGATE_LISTEN_PORT is required\n");
    return 2;
  }
  struct bg_server *srv = bg_server_start(&cfg);
  if (!srv)
    return 1;
  bg_server_add_metrics(srv, metrics);
  /* The outbox goes to the audit log (issue 5); read after the server is up, since accounts
   * issues the shipper's own client token. Audit may start later: the shipper backs off. */
  struct bg_svc *svc = bg_svc_from_env();
  struct bg_shipper *shipper = bg_shipper_start_env("accounts", "accounts", svc);
  if (!shipper) {
    bg_error("cannot start the outbox shipper");
    return 1;
  }
  bg_server_add_metrics(srv, bg_shipper_metrics);
  struct bg_job *purge = acct_sessions_purge_start();
  bg_server_add_metrics(srv, acct_sessions_purge_metrics);
  bg_server_wait(srv);
  bg_job_stop(purge);
  bg_shipper_stop(shipper);
  bg_svc_free(svc);
  bg_server_stop(srv);
  bg_db_free(acct.db);
  acct_pki_free(acct.pki);
  bg_keyset_free(acct.keys);
  EVP_PKEY_free(acct.jwt_key);
  bg_info("stopped");
  return 0;
}
