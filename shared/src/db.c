/* PostgreSQL pool, prepared statements and migrations (db.h). */
#include "bligate/db.h"
#include "bligate/clock.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bg_db {
  char *conninfo;
  char schema[64];
  const struct bg_db_stmt *stmts;
  size_t nstmts;
  int size;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct bg_dbc *conns;
  bool *busy;
};

static void (*outbox_hook)(void);

void bg_db_set_outbox_hook(void (*fn)(void)) { outbox_hook = fn; }

void bg_dbc_outbox_written(struct bg_dbc *c)
{
  if (c->in_tx)
    c->outbox_written = true;
  else if (outbox_hook)
    outbox_hook();
}

static bool prepare_all(struct bg_dbc *c)
{
  char sql[128];
  /* search_path pins unqualified names to the service's own schema; the role can touch no other. */
  if (!bg_fmt(sql, sizeof sql, "SET search_path TO \"%s\"", c->db->schema))
    return false;
  PGresult *res = PQexec(c->pg, sql);
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  for (size_t i = 0; ok && i < c->db->nstmts; i++) {
    res = PQprepare(c->pg, c->db->stmts[i].name, c->db->stmts[i].sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      bg_error("prepare %s failed: %s", c->db->stmts[i].name, PQresultErrorMessage(res));
      ok = false;
    }
    PQclear(res);
  }
  return ok;
}

static bool connect_one(struct bg_dbc *c)
{
  if (c->pg)
    PQfinish(c->pg);
  c->pg = PQconnectdb(c->db->conninfo);
  c->in_tx = false;
  c->broken = false;
  c->outbox_written = false;
  if (PQstatus(c->pg) != CONNECTION_OK) {
    bg_warn("database connection failed: %s", PQerrorMessage(c->pg));
    PQfinish(c->pg);
    c->pg = NULL;
    return false;
  }
  if (!prepare_all(c)) {
    PQfinish(c->pg);
    c->pg = NULL;
    return false;
  }
  return true;
}

struct bg_db *bg_db_new(const char *conninfo, const char *schema, int size, const struct bg_db_stmt *stmts,
                        size_t nstmts)
{
  struct bg_db *db = calloc(1, sizeof *db);
  if (!db || strlen(schema) >= sizeof db->schema)
    goto fail;
  db->conninfo = strdup(conninfo);
  memcpy(db->schema, schema, strlen(schema) + 1);
  db->stmts = stmts;
  db->nstmts = nstmts;
  db->size = size;
  db->conns = calloc((size_t)size, sizeof *db->conns);
  db->busy = calloc((size_t)size, sizeof *db->busy);
  if (!db->conninfo || !db->conns || !db->busy)
    goto fail;
  pthread_mutex_init(&db->mu, NULL);
  pthread_cond_init(&db->cv, NULL);
  for (int i = 0; i < size; i++)
    db->conns[i].db = db;
  /* Connect lazily: a service starts (and says "not ready") while the database is down. */
  return db;
fail:
  if (db) {
    free(db->conninfo);
    free(db->conns);
    free(db->busy);
    free(db);
  }
  return NULL;
}

void bg_db_free(struct bg_db *db)
{
  if (!db)
    return;
  for (int i = 0; i < db->size; i++)
    if (db->conns[i].pg)
      PQfinish(db->conns[i].pg);
  pthread_mutex_destroy(&db->mu);
  pthread_cond_destroy(&db->cv);
  free(db->conninfo);
  free(db->conns);
  free(db->busy);
  free(db);
}

struct bg_dbc *bg_db_acquire(struct bg_db *db, int timeout_ms)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  struct bg_dbc *c = NULL;
  pthread_mutex_lock(&db->mu);
  for (;;) {
    /* prefer a connected one */
    for (int pass = 0; pass < 2 && !c; pass++)
      for (int i = 0; i < db->size; i++)
        if (!db->busy[i] && (pass == 1 || db->conns[i].pg)) {
          db->busy[i] = true;
          c = &db->conns[i];
          break;
        }
    if (c)
      break;
    if (pthread_cond_timedwait(&db->cv, &db->mu, &until) == ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock(&db->mu);
  if (!c)
    return NULL;
  if (!c->pg || c->broken || PQstatus(c->pg) != CONNECTION_OK) {
    if (!connect_one(c)) {
      bg_db_release(c);
      return NULL;
    }
  }
  return c;
}

void bg_db_release(struct bg_dbc *c)
{
  if (!c)
    return;
  if (c->in_tx) /* a handler that forgot to finish: never leak a transaction to the next user */
    bg_dbc_rollback(c);
  struct bg_db *db = c->db;
  pthread_mutex_lock(&db->mu);
  db->busy[c - db->conns] = false;
  pthread_cond_signal(&db->cv);
  pthread_mutex_unlock(&db->mu);
}

bool bg_db_ping(struct bg_db *db)
{
  struct bg_dbc *c = bg_db_acquire(db, 500);
  if (!c)
    return false;
  PGresult *res = PQexec(c->pg, "SELECT 1");
  bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
  if (!ok)
    c->broken = true;
  PQclear(res);
  bg_db_release(c);
  return ok;
}

bool bg_dbc_ok(PGresult *res)
{
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A statement's result, or NULL after logging the error (unless a constraint violation, which
 * the caller maps) with the details in *err. */
static PGresult *checked(struct bg_dbc *c, const char *what, PGresult *res, struct bg_dberr *err)
{
  if (err)
    memset(err, 0, sizeof *err);
  if (bg_dbc_ok(res))
    return res;
  const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
  if (err && st)
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", st);
  if (err && cons)
    snprintf(err->constraint, sizeof err->constraint, "%s", cons);
  /* Constraint violations are expected outcomes the caller maps; log the rest. */
  if (!st || strncmp(st, "23", 2) != 0)
    bg_error("statement %s failed: %s", what, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
  if (PQstatus(c->pg) != CONNECTION_OK)
    c->broken = true;
  PQclear(res);
  return NULL;
}

PGresult *bg_dbc_exec(struct bg_dbc *c, const char *stmt, int nparams, const char *const *params, struct bg_dberr *err)
{
  PGresult *res = checked(c, stmt, PQexecPrepared(c->pg, stmt, nparams, params, NULL, NULL, 0), err);
  /* events.h's BG_OUTBOX_STMT: the shipper is told once the row is committed */
  if (res && stmt[0] == 'b' && strcmp(stmt, "bg_outbox_add") == 0)
    bg_dbc_outbox_written(c);
  return res;
}

PGresult *bg_dbc_exec_sql(struct bg_dbc *c, const char *name, const char *sql, int nparams,
                          const char *const *params)
{
  return checked(c, name, PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0), NULL);
}

bool bg_dbc_run(struct bg_dbc *c, const char *stmt, int nparams, const char *const *params, struct bg_dberr *err)
{
  PGresult *res = bg_dbc_exec(c, stmt, nparams, params, err);
  PQclear(res);
  return res != NULL;
}

static bool simple(struct bg_dbc *c, const char *sql)
{
  PGresult *res = PQexec(c->pg, sql);
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) {
    bg_error("%s failed: %s", sql, PQresultErrorMessage(res));
    if (PQstatus(c->pg) != CONNECTION_OK)
      c->broken = true;
  }
  PQclear(res);
  return ok;
}

bool bg_dbc_begin(struct bg_dbc *c)
{
  c->in_tx = simple(c, "BEGIN");
  return c->in_tx;
}

bool bg_dbc_commit(struct bg_dbc *c)
{
  bool ok = simple(c, "COMMIT");
  c->in_tx = false;
  if (ok && c->outbox_written && outbox_hook)
    outbox_hook();
  c->outbox_written = false;
  return ok;
}

void bg_dbc_rollback(struct bg_dbc *c)
{
  simple(c, "ROLLBACK");
  c->in_tx = false;
  c->outbox_written = false;
}

bool bg_dbc_pipeline(struct bg_dbc *c, struct bg_pipe *steps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    steps[i].res = NULL;
  if (PQenterPipelineMode(c->pg) != 1) {
    bg_error("pipeline: %s", PQerrorMessage(c->pg));
    return false;
  }
  bool sent = true;
  for (size_t i = 0; sent && i < n; i++)
    sent = steps[i].stmt ? PQsendQueryPrepared(c->pg, steps[i].stmt, steps[i].nparams, steps[i].params, NULL, NULL,
                                               0) == 1
                         : PQsendQueryParams(c->pg, steps[i].sql, steps[i].nparams, NULL, steps[i].params, NULL,
                                             NULL, 0) == 1;
  if (!sent || PQpipelineSync(c->pg) != 1) {
    /* what was sent cannot be told apart from what was not: the connection is not reused */
    bg_error("pipeline: sending failed: %s", PQerrorMessage(c->pg));
    c->broken = true;
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    PGresult *res = PQgetResult(c->pg), *more;
    while (res && (more = PQgetResult(c->pg))) /* each step's results end with a NULL */
      PQclear(more);
    if (res && PQresultStatus(res) == PGRES_PIPELINE_ABORTED) { /* skipped after an earlier failure */
      PQclear(res);
      ok = false;
      continue;
    }
    if ((steps[i].res = checked(c, steps[i].stmt ? steps[i].stmt : steps[i].sql, res, NULL))) {
      if (!steps[i].stmt && !strcmp(steps[i].sql, "BEGIN"))
        c->in_tx = true;
      if (steps[i].stmt && !strcmp(steps[i].stmt, "bg_outbox_add"))
        bg_dbc_outbox_written(c);
      if (!steps[i].stmt && !strcmp(steps[i].sql, "COMMIT")) {
        c->in_tx = false;
        if (c->outbox_written && outbox_hook)
          outbox_hook();
        c->outbox_written = false;
      }
      continue;
    }
    ok = false;
  }
  PGresult *sync = PQgetResult(c->pg);
  if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
    c->broken = true;
  PQclear(sync);
  if (PQexitPipelineMode(c->pg) != 1)
    c->broken = true;
  if (PQstatus(c->pg) != CONNECTION_OK)
    c->broken = true;
  return ok && !c->broken;
}

/* ---- migrations ---- */

static PGresult *exec_params(PGconn *pg, const char *sql, int n, const char *const *params)
{
  return PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
}

bool bg_db_migrate(const char *owner_conninfo, const char *schema, const struct bg_migration *m, size_t n)
{
  PGconn *pg = PQconnectdb(owner_conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    bg_error("migrate: cannot connect: %s", PQerrorMessage(pg));
    PQfinish(pg);
    return false;
  }
  bool ok = false;
  char sql[512];
  PGresult *res = NULL;
  /* Serialised across replicas: the lock key is derived from the schema name. */
  if (!bg_fmt(sql, sizeof sql,
              "SELECT pg_advisory_lock(hashtext('bligate.migrate.%s')); SET search_path TO \"%s\";"
              "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, sha256 text NOT NULL,"
              " applied_at timestamptz NOT NULL DEFAULT now())",
              schema, schema))
    goto done;
  res = PQexec(pg, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    bg_error("migrate: %s", PQresultErrorMessage(res));
    goto done;
  }
  PQclear(res);
  res = NULL;
  for (size_t i = 0; i < n; i++) {
    char sum[65];
    bg_sha256_hex(m[i].sql, strlen(m[i].sql), sum);
    const char *p1[] = {m[i].name};
    res = exec_params(pg, "SELECT sha256 FROM schema_migrations WHERE name = $1", 1, p1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      bg_error("migrate: %s", PQresultErrorMessage(res));
      goto done;
    }
    if (PQntuples(res) == 1) {
      if (strcmp(PQgetvalue(res, 0, 0), sum) != 0) {
        bg_error("migrate: %s was changed after it was applied (checksum mismatch); refusing", m[i].name);
        goto done;
      }
      PQclear(res);
      res = NULL;
      continue;
    }
    PQclear(res);
    res = PQexec(pg, "BEGIN");
    PQclear(res);
    res = PQexec(pg, m[i].sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
      bg_error("migrate: %s failed: %s", m[i].name, PQresultErrorMessage(res));
      PQclear(res);
      res = PQexec(pg, "ROLLBACK");
      goto done;
    }
    PQclear(res);
    const char *p2[] = {m[i].name, sum};
    res = exec_params(pg, "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)", 2, p2);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      bg_error("migrate: recording %s failed: %s", m[i].name, PQresultErrorMessage(res));
      PQclear(res);
      res = PQexec(pg, "ROLLBACK");
      goto done;
    }
    PQclear(res);
    res = PQexec(pg, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      bg_error("migrate: commit of %s failed: %s", m[i].name, PQresultErrorMessage(res));
      goto done;
    }
    PQclear(res);
    res = NULL;
    bg_info("migrate: applied %s", m[i].name);
  }
  ok = true;
done:
  PQclear(res);
  PQfinish(pg);
  return ok;
}
