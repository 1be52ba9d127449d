/* PostgreSQL: a checkout pool of connections, statements prepared once per connection,
 * checksummed migrations. A PGconn is used by one thread at a time. */
#ifndef BLIGATE_DB_H
#define BLIGATE_DB_H
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct bg_db_stmt {
  const char *name;
  const char *sql;
};

struct bg_migration {
  const char *name; /* "0001_init.sql" */
  const char *sql;
};

struct bg_db;
struct bg_dbc {
  PGconn *pg;
  struct bg_db *db;
  bool in_tx;
  bool broken;
  bool outbox_written; /* this transaction wrote outbox rows (bg_dbc_outbox_written) */
};

/* schema: search_path set on every connection. stmts: prepared on every connection. */
struct bg_db *bg_db_new(const char *conninfo, const char *schema, int size,
                        const struct bg_db_stmt *stmts, size_t nstmts);
void bg_db_free(struct bg_db *db);
/* Waits up to timeout_ms for a free connection; NULL when none or the database is down. */
struct bg_dbc *bg_db_acquire(struct bg_db *db, int timeout_ms);
void bg_db_release(struct bg_dbc *c);
/* true when a connection can be acquired and answers. */
bool bg_db_ping(struct bg_db *db);

/* What went wrong in a failed statement, for mapping constraint violations to problems. */
struct bg_dberr {
  char sqlstate[6];
  char constraint[64];
};

/* Executes a prepared statement (text params; NULL = SQL NULL). Returns the result or NULL on
 * error (logged unless a constraint violation; details in *err if given). */
PGresult *bg_dbc_exec(struct bg_dbc *c, const char *stmt, int nparams, const char *const *params,
                      struct bg_dberr *err);
/* SQL text planned for its parameters on every call, for a statement whose cached generic
 * plan could go wrong as a table grows (an array of ids joined to a large table: a plan made
 * while the table was small scans it). name is for the log. */
PGresult *bg_dbc_exec_sql(struct bg_dbc *c, const char *name, const char *sql, int nparams,
                          const char *const *params);
/* Runs a prepared statement that returns no rows we need; true on success. */
bool bg_dbc_run(struct bg_dbc *c, const char *stmt, int nparams, const char *const *params, struct bg_dberr *err);
/* Convenience: the result's status is OK (command or tuples). */
bool bg_dbc_ok(PGresult *res);
bool bg_dbc_begin(struct bg_dbc *c);
bool bg_dbc_commit(struct bg_dbc *c);
void bg_dbc_rollback(struct bg_dbc *c);

/* Several statements in one round trip (libpq's pipeline mode): each step is a prepared
 * statement (stmt, with its text params) or SQL text (sql, with its params if any: BEGIN,
 * COMMIT, or a statement that must be planned for its actual parameters every time).
 * The server runs them in order and stops at the first failure; the later steps are skipped.
 * A BEGIN step opens the transaction as bg_dbc_begin does and a COMMIT step ends it as
 * bg_dbc_commit does (outbox hook included). True when every step succeeded; each step's res
 * is its result or NULL (the caller clears them). A failure after BEGIN leaves the
 * transaction open for the caller's rollback. */
struct bg_pipe {
  const char *stmt;
  const char *sql;
  int nparams;
  const char *const *params;
  PGresult *res;
};
bool bg_dbc_pipeline(struct bg_dbc *c, struct bg_pipe *steps, size_t n);

/* The outbox shipper's wake-up (shipper.h), so that events are shipped soon after they are
 * committed without a NOTIFY per transaction: fn runs after a commit that wrote outbox rows.
 * bg_outbox_add (events.h) marks its connection itself; a statement that inserts into the
 * outbox on its own is followed by bg_dbc_outbox_written. Outside a transaction (the
 * statement committed by itself) fn runs at once. */
void bg_db_set_outbox_hook(void (*fn)(void));
void bg_dbc_outbox_written(struct bg_dbc *c);

/* Applies pending migrations in order, each in one transaction, recording name and SHA-256 in
 * <schema>.schema_migrations; refuses (false) if an applied migration's checksum changed.
 * Serialised across replicas by an advisory lock. */
bool bg_db_migrate(const char *owner_conninfo, const char *schema, const struct bg_migration *m,
                   size_t n);

/* For handlers: acquire a connection or reply 503 database-unavailable (NULL). */
struct bg_request;
struct bg_dbc *bg_db_for(struct bg_request *r, struct bg_db *db);
/* After a failed statement or commit: roll back and reply 503 (connection lost) or 500. */
void bg_db_failed(struct bg_request *r, struct bg_dbc *c);
/* One statement outside a transaction, for a handler that only reads: acquire, execute,
 * release. NULL after replying (503 without a connection, 503 or 500 when it failed). */
PGresult *bg_db_fetch(struct bg_request *r, struct bg_db *db, const char *stmt, int nparams,
                      const char *const *params);

/* Keyset pagination cursor: opaque base64url of "<created_at>|<uuid>". */
char *bg_cursor_make(const char *created_at, const char *id);
bool bg_cursor_parse(const char *cursor, char *ts, size_t tslen, char *id, size_t idlen);

/* A list request's ?limit= and ?cursor=: after_ts/after_id are NULL without a cursor (SQL NULL
 * parameters), lim is limit + 1 as text (fetch one more to know whether a next page exists).
 * Replies bad-query-parameter or bad-cursor and returns false on a bad one. */
struct bg_page_req {
  int limit;
  char lim[16];
  char ts[40], id[40];
  const char *after_ts, *after_id;
};
bool bg_req_page(struct bg_request *r, struct bg_page_req *p);
/* A list reply {items, next_cursor}: res was fetched with LIMIT limit+1; rows up to limit are
 * turned into items by row_json; the cursor comes from the last item's ts_col and id_col. */
#include <jansson.h>
json_t *bg_page(PGresult *res, int limit, int ts_col, int id_col, json_t *(*row_json)(PGresult *, int, void *),
                void *arg);

/* SQLSTATE helpers */
#define BG_SQL_UNIQUE "23505"
#define BG_SQL_SERIALIZATION "40001"
#define BG_SQL_DEADLOCK "40P01"

#endif
