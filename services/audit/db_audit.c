/* The audit service's SQL (prepared once per connection) and the log's one writer: appends
 * under log_state's row lock, so indices are gap-free whatever the number of replicas. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include "canon.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const struct bg_db_stmt aud_stmts[] = {
  {"aud_lock", "SELECT tree_size, encode(frontier, 'hex') FROM log_state WHERE id = 1 FOR UPDATE"},
  {"aud_state", "SELECT tree_size, encode(root_hash, 'hex') FROM log_state WHERE id = 1"},
  /* the perfect subtrees an append completes, three parallel arrays (hash as hex) */
  {"aud_nodes", "INSERT INTO nodes (level, idx, hash) SELECT l, i, decode(h, 'hex')"
                " FROM unnest($1::smallint[], $2::bigint[], $3::text[]) AS t(l, i, h)"},
  /* each block's earliest and latest event time (0011_event_blocks.sql; read by AUD_EVENTS_FILTERS) */
  {"aud_blocks", "INSERT INTO event_blocks AS b (block, min_time, max_time)"
                 " SELECT i / 4096, min(t), max(t) FROM unnest($1::bigint[], $2::timestamptz[]) AS x(i, t) GROUP BY i / 4096"
                 " ON CONFLICT (block) DO UPDATE SET min_time = least(b.min_time, excluded.min_time),"
                 " max_time = greatest(b.max_time, excluded.max_time)"},
  {"aud_update_state", "UPDATE log_state SET tree_size = $1, root_hash = decode($2, 'hex'), frontier = decode($3, 'hex')"
                       " WHERE id = 1"},
  {"aud_sth_latest", "SELECT tree_size, encode(root_hash, 'hex'), " TS("timestamp") ", key_id, signature"
                     " FROM tree_heads ORDER BY tree_size DESC LIMIT 1"},
  {"aud_sth_insert", "INSERT INTO tree_heads (tree_size, root_hash, timestamp, key_id, signature)"
                     " VALUES ($1, decode($2, 'hex'), $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING"},
  {"aud_sth_upto", "SELECT tree_size, encode(root_hash, 'hex'), signature, " TS("timestamp") ", key_id"
                   " FROM tree_heads WHERE tree_size <= $1"
                   " ORDER BY tree_size"},
  /* read with binary results: idx int8, leaf_hash raw, canonical as bytes */
  {"aud_verify_range", "SELECT idx, leaf_hash, canonical FROM events WHERE idx >= $1 AND idx < $2 ORDER BY idx"},
  /* the same, and whether the columns the searches, the oversight and the webhooks select on
   * are what the hashed text says (copy_row's derivation, again here from the text): a hash
   * covers the text only, and a superuser past the append-only triggers could take an event out
   * of a citizen's subject-access report by its columns alone */
  {"aud_verify_range_cols",
   "SELECT e.idx, e.leaf_hash, e.canonical,"
   " e.type IS NOT DISTINCT FROM j->>'type' AND e.time = (j->>'time')::timestamptz"
   " AND e.source IS NOT DISTINCT FROM j->>'source'"
   " AND e.actor_id IS NOT DISTINCT FROM coalesce(j->'actor'->>'account_id', j->'actor'->>'client_id')"
   " AND e.object_kind IS NOT DISTINCT FROM j->'object'->>'kind' AND e.object_id IS NOT DISTINCT FROM j->'object'->>'id'"
   " AND e.subject_hmacs = ARRAY(SELECT h FROM (SELECT j->'subject'->>'id_hmac' AS h, 0::bigint AS n"
   "  UNION ALL SELECT s->>'id_hmac', o FROM jsonb_array_elements(CASE jsonb_typeof(j->'subjects')"
   "  WHEN 'array' THEN j->'subjects' ELSE '[]' END) WITH ORDINALITY AS t(s, o)) x WHERE h IS NOT NULL ORDER BY n)"
   " FROM events e, LATERAL (SELECT e.canonical::jsonb AS j) k WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx"},
};
const size_t aud_nstmts = sizeof aud_stmts / sizeof aud_stmts[0];

bool aud_bytea32(const char *s, unsigned char out[AUD_HASH_LEN])
{
  if (s && s[0] == '\\' && s[1] == 'x')
    s += 2;
  return aud_hash_unhex(s, out);
}

void aud_entry_clear(struct aud_entry *e)
{
  free(e->canonical);
  e->canonical = NULL;
}

bool aud_entry_prepare(struct aud_entry *e, const char *source, const char **why)
{
  json_object_set_new(e->ev, "source", json_string(source));
  e->event_id = json_string_value(json_object_get(e->ev, "id"));
  e->canonical = aud_canon(e->ev, &e->len, why);
  if (!e->canonical)
    return false;
  aud_leaf_hash(e->canonical, e->len, e->leaf);
  e->status = AUD_APPENDED;
  e->index = -1;
  return true;
}

/* Which of a batch's ids are on the log already. Not a prepared statement: a generic plan made
 * while the log was small (a hash join over a scan of events) stayed cached as the log grew,
 * until the next ANALYZE, and every append read the whole log under the writer's lock. Sent as
 * SQL text with its parameter, it is planned for the ids at hand against the log's current
 * size: an index lookup per id. One table and "= ANY" rather than a join with unnest(): planned
 * in ~0.08 ms instead of ~0.2, under the writer's lock. */
#define AUD_KNOWN "SELECT event_id::text, idx, encode(leaf_hash, 'hex') FROM events WHERE event_id = ANY($1::uuid[])"

/* Perfect subtree hashes for a proof: leaves from events, the levels above from nodes. Planned
 * for each proof, as AUD_KNOWN is and for the same reason. */
#define AUD_HASHES                                                                                                 \
  "SELECT 0, e.idx, encode(e.leaf_hash, 'hex') FROM unnest($3::bigint[]) AS l(i) JOIN events e ON e.idx = l.i"    \
  " UNION ALL SELECT n.level, n.idx, encode(n.hash, 'hex') FROM nodes n"                                          \
  " JOIN unnest($1::smallint[], $2::bigint[]) AS q(l, i) ON n.level = q.l AND n.idx = q.i"

/* The log's search (GET /v1/audit/events): a range of indices, optionally filtered, in index
 * order. Not prepared either: a prepared statement may settle, after five executions on a
 * connection, on a generic plan, which cannot know which filters are set and walks the log in
 * index order testing each event. Whether it does depends on the planner's estimates: on a log
 * of 300,000 events from 500 actors, a PREPAREd search for an actor with no events did, and took
 * 122 ms, against 0.14 ms planned with the filter at hand (events_actor); bench/audit's log of a
 * million did not (5 ms either way). Planning costs 0.2-2 ms; an auditor's search can afford
 * it, a scan of a growing log cannot. A time window also bounds the indices, through the blocks
 * of 4,096 whose time span meets it (0011_event_blocks.sql): the planner, taking time and
 * index for unrelated, would otherwise read a recent window's predecessors first. */
#define AUD_NO_IDX "9223372036854775807" /* past every index: no block meets the window */
#define AUD_EVENTS_FILTERS                                                                                         \
  " AND ($3::text IS NULL OR type = $3) AND ($4::text IS NULL OR actor_id = $4)"                                   \
  " AND ($5::text IS NULL OR object_kind = $5) AND ($6::text IS NULL OR object_id = $6)"                           \
  " AND ($7::timestamptz IS NULL OR time >= $7) AND ($8::timestamptz IS NULL OR time < $8)"                        \
  " AND ($7::timestamptz IS NULL OR idx >= (SELECT COALESCE(min(b.block) * 4096, " AUD_NO_IDX ")"                  \
  "  FROM event_blocks b WHERE b.max_time >= $7))"                                                                 \
  " AND ($8::timestamptz IS NULL OR idx < (SELECT COALESCE(max(b.block) * 4096 + 4096, 0)"                         \
  "  FROM event_blocks b WHERE b.min_time < $8))"
#define AUD_EVENTS                                                                                                 \
  "SELECT idx, encode(leaf_hash, 'hex'), canonical FROM events WHERE idx >= $1 AND idx < $2" AUD_EVENTS_FILTERS    \
  " AND ($9::text IS NULL OR subject_hmacs @> ARRAY[$9::text]) ORDER BY idx LIMIT $10"
/* by subject: the condition of the partial index events_subject, so it is used */
#define AUD_EVENTS_SUBJECT                                                                                         \
  "SELECT idx, encode(leaf_hash, 'hex'), canonical FROM events WHERE subject_hmacs @> ARRAY[$9::text]"             \
  " AND subject_hmacs <> '{}' AND idx >= $1 AND idx < $2" AUD_EVENTS_FILTERS " ORDER BY idx LIMIT $10"

PGresult *aud_events_select(struct bg_dbc *c, bool by_subject, const char *const params[10])
{
  return by_subject ? bg_dbc_exec_sql(c, "aud_events_subject", AUD_EVENTS_SUBJECT, 10, params)
                    : bg_dbc_exec_sql(c, "aud_events", AUD_EVENTS, 10, params);
}

/* Growable text for array literals. */
struct sbuf {
  char *p;
  size_t len, cap;
  bool ok;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
  if (!b->ok)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->ok = false;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* One field of COPY's text format: backslash, tab, newline and carriage return escaped;
 * NULL as \N. */
static void sb_copy_field(struct sbuf *b, const char *s, bool last)
{
  if (!s) {
    sb_add(b, "\\N");
  } else {
    const char *run = s;
    for (const char *p = s; *p; p++) {
      const char *esc = *p == '\\' ? "\\\\" : *p == '\t' ? "\\t" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : NULL;
      if (!esc)
        continue;
      sb_addn(b, run, (size_t)(p - run));
      sb_add(b, esc);
      run = p + 1;
    }
    sb_add(b, run);
  }
  sb_add(b, last ? "\n" : "\t");
}

#define COPY_EVENTS                                                                                            \
  "COPY events (idx, event_id, leaf_hash, canonical, type, time, source, actor_id, object_kind, object_id,"     \
  " subject_hmacs, received_at) FROM STDIN"

/* One row of COPY_EVENTS. The events are appended with COPY rather than a prepared INSERT: at
 * 10,000 events a second, parsing the rows out of one JSON parameter cost PostgreSQL about
 * twice what COPY's text format does. */
static void copy_row(struct sbuf *b, const struct aud_entry *e, const char *now_s)
{
  char idx[24], hex[2 * AUD_HASH_LEN + 4];
  snprintf(idx, sizeof idx, "%" PRId64, e->index);
  hex[0] = '\\';
  hex[1] = 'x';
  aud_hash_hex(e->leaf, hex + 2); /* bytea hex input \x..., its backslash escaped by the writer */
  const json_t *actor = json_object_get(e->ev, "actor"), *obj = json_object_get(e->ev, "object");
  const char *actor_id = json_string_value(json_object_get(actor, "account_id"));
  if (!actor_id)
    actor_id = json_string_value(json_object_get(actor, "client_id"));
  /* the subjects' HMACs (64 hex digits each, checked at intake) as an array literal */
  struct sbuf h = {.ok = true};
  sb_add(&h, "{");
  const char *one = json_string_value(json_object_get(json_object_get(e->ev, "subject"), "id_hmac"));
  if (one)
    sb_add(&h, one);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(e->ev, "subjects"), i, v)
  {
    const char *x = json_string_value(json_object_get(v, "id_hmac"));
    if (!x)
      continue;
    if (h.len > 1)
      sb_add(&h, ",");
    sb_add(&h, x);
  }
  sb_add(&h, "}");
  if (!h.ok)
    b->ok = false;
  sb_copy_field(b, idx, false);
  sb_copy_field(b, e->event_id, false);
  sb_copy_field(b, hex, false);
  sb_copy_field(b, e->canonical, false);
  sb_copy_field(b, json_string_value(json_object_get(e->ev, "type")), false);
  sb_copy_field(b, json_string_value(json_object_get(e->ev, "time")), false);
  sb_copy_field(b, json_string_value(json_object_get(e->ev, "source")), false);
  sb_copy_field(b, actor_id, false);
  sb_copy_field(b, json_string_value(json_object_get(obj, "kind")), false);
  sb_copy_field(b, json_string_value(json_object_get(obj, "id")), false);
  sb_copy_field(b, h.p, false);
  sb_copy_field(b, now_s, true);
  free(h.p);
}

/* Runs a COPY ... FROM STDIN with the rows in b on c (inside the caller's transaction). COPY
 * cannot be prepared; the statement is a constant. */
static bool copy_in(struct bg_dbc *c, const char *sql, const struct sbuf *b)
{
  PGresult *res = PQexec(c->pg, sql);
  bool ok = PQresultStatus(res) == PGRES_COPY_IN;
  PQclear(res);
  if (ok)
    ok = PQputCopyData(c->pg, b->p, (int)b->len) == 1;
  if (PQputCopyEnd(c->pg, ok ? NULL : "aborted") != 1)
    ok = false;
  while ((res = PQgetResult(c->pg))) {
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      if (ok)
        bg_error("append failed: %s", PQresultErrorMessage(res));
      ok = false;
    }
    PQclear(res);
  }
  if (!ok && PQstatus(c->pg) != CONNECTION_OK)
    c->broken = true;
  return ok;
}

/* Each perfect subtree an append completes, into three array literals for aud_nodes. */
struct node_arrays {
  struct sbuf level, idx, hash;
  size_t n;
};

static void collect_node(void *ctx, unsigned level, uint64_t index, const unsigned char h[AUD_HASH_LEN])
{
  struct node_arrays *a = ctx;
  char num[24], hex[2 * AUD_HASH_LEN + 1];
  const char *sep = a->n++ ? "," : "{";
  snprintf(num, sizeof num, "%u", level);
  sb_add(&a->level, sep);
  sb_add(&a->level, num);
  snprintf(num, sizeof num, "%" PRIu64, index);
  sb_add(&a->idx, sep);
  sb_add(&a->idx, num);
  aud_hash_hex(h, hex);
  sb_add(&a->hash, sep);
  sb_add(&a->hash, hex);
}

/* The append, on c; false on a failure or a conflict (the caller rolls back). With own_tx it
 * opens and commits its own transaction, the BEGIN sent with the first statements and the
 * COMMIT with the last: four round trips in all (lock and lookup, COPY's two, the nodes and
 * state), where one by one they were nine. */
static bool append(struct bg_dbc *c, struct aud_entry *e, size_t n, bool *conflict, bool own_tx)
{
  *conflict = false;
  struct sbuf ids = {.ok = true};
  struct node_arrays nodes = {.level.ok = true, .idx.ok = true, .hash.ok = true};
  struct sbuf records = {.ok = true};
  struct sbuf bidx = {.ok = true}, btime = {.ok = true}; /* aud_blocks' two arrays */
  bool ok = false;
  struct bg_pipe first[3] = {{.sql = "BEGIN"}, {.stmt = "aud_lock"}, {.sql = AUD_KNOWN, .nparams = 1}};
  struct bg_pipe *lock = &first[1], *known = &first[2];

  /* Which ids are on the log already (and with which bytes)? Asked right after the lock is
   * taken, so no other writer's append can come between. */
  sb_add(&ids, "{");
  for (size_t i = 0; i < n; i++) {
    if (i)
      sb_add(&ids, ",");
    sb_add(&ids, e[i].event_id);
  }
  sb_add(&ids, "}");
  if (!ids.ok)
    goto out;
  const char *pk[] = {ids.p};
  known->params = pk;
  /* The single writer: everything below happens while this row is locked. */
  if (!bg_dbc_pipeline(c, own_tx ? first : first + 1, own_tx ? 3 : 2) || PQntuples(lock->res) != 1)
    goto out;
  struct aud_frontier f;
  long long size_ll = strtoll(PQgetvalue(lock->res, 0, 0), NULL, 10);
  const char *fhex = PQgetvalue(lock->res, 0, 1);
  size_t hexlen = strlen(fhex), flen = hexlen / 2;
  unsigned char fbytes[AUD_MAX_LEVELS * AUD_HASH_LEN];
  if (size_ll < 0 || flen > sizeof fbytes || hexlen % (2 * AUD_HASH_LEN))
    goto out;
  for (size_t i = 0; i < flen / AUD_HASH_LEN; i++) {
    char one[2 * AUD_HASH_LEN + 1];
    memcpy(one, fhex + 2 * AUD_HASH_LEN * i, 2 * AUD_HASH_LEN);
    one[2 * AUD_HASH_LEN] = '\0';
    if (!aud_hash_unhex(one, fbytes + AUD_HASH_LEN * i))
      goto out;
  }
  if (!aud_frontier_load(&f, (uint64_t)size_ll, fbytes, flen)) {
    bg_error("log_state.frontier does not fit tree_size %lld", size_ll);
    goto out;
  }

  PGresult *res = known->res;
  for (size_t i = 0; i < n; i++) {
    e[i].status = AUD_APPENDED;
    e[i].dup_of = -1;
    for (int row = 0; row < PQntuples(res); row++) {
      if (strcasecmp(PQgetvalue(res, row, 0), e[i].event_id) != 0) /* a uuid's text is lower case */
        continue;
      unsigned char stored[AUD_HASH_LEN];
      bool same = aud_hash_unhex(PQgetvalue(res, row, 2), stored) && !memcmp(stored, e[i].leaf, AUD_HASH_LEN);
      e[i].status = same ? AUD_DUPLICATE : AUD_CONFLICT;
      e[i].index = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    }
    /* the same id twice in one batch */
    for (size_t j = 0; e[i].status == AUD_APPENDED && j < i; j++) {
      if (strcasecmp(e[j].event_id, e[i].event_id) != 0)
        continue;
      e[i].status = !memcmp(e[j].leaf, e[i].leaf, AUD_HASH_LEN) ? AUD_DUPLICATE : AUD_CONFLICT;
      e[i].dup_of = (long)j;
    }
    if (e[i].status == AUD_CONFLICT)
      *conflict = true;
  }
  if (*conflict)
    goto out;

  size_t added = 0;
  char now_s[BG_TIME_LEN];
  bg_time_fmt(bg_now(), now_s);
  for (size_t i = 0; i < n; i++) {
    if (e[i].status != AUD_APPENDED)
      continue;
    e[i].index = (int64_t)f.size;
    aud_frontier_append(&f, e[i].leaf, collect_node, &nodes);
    copy_row(&records, &e[i], now_s);
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, e[i].index);
    sb_add(&bidx, added ? "," : "{");
    sb_add(&bidx, num);
    const char *t = json_string_value(json_object_get(e[i].ev, "time"));
    if (!t)
      btime.ok = false;
    sb_add(&btime, added ? ",\"" : "{\""); /* an RFC 3339 time (checked at intake): nothing to escape */
    sb_add(&btime, t ? t : "");
    sb_add(&btime, "\"");
    added++;
  }
  for (size_t i = 0; i < n; i++)
    if (e[i].dup_of >= 0)
      e[i].index = e[e[i].dup_of].index;
  struct bg_pipe last[4];
  size_t nlast = 0;
  char *front_hex = NULL;
  char root_hex[2 * AUD_HASH_LEN + 1], size_s[24];
  const char *pn[3], *ps[3], *pb[2];
  if (added) {
    if (!records.ok || !copy_in(c, COPY_EVENTS, &records))
      goto out;
    sb_add(&bidx, "}");
    sb_add(&btime, "}");
    if (!bidx.ok || !btime.ok)
      goto out;
    sb_add(&nodes.level, "}");
    sb_add(&nodes.idx, "}");
    sb_add(&nodes.hash, "}");
    if (!nodes.level.ok || !nodes.idx.ok || !nodes.hash.ok)
      goto out;
    unsigned char root[AUD_HASH_LEN], fb[AUD_MAX_LEVELS * AUD_HASH_LEN];
    aud_frontier_root(&f, root);
    aud_hash_hex(root, root_hex);
    size_t fl = aud_frontier_bytes(&f, fb, sizeof fb);
    if (!(front_hex = malloc(2 * fl + 1)))
      goto out;
    bg_hex(fb, fl, front_hex);
    snprintf(size_s, sizeof size_s, "%" PRIu64, f.size);
    pn[0] = nodes.level.p, pn[1] = nodes.idx.p, pn[2] = nodes.hash.p;
    ps[0] = size_s, ps[1] = root_hex, ps[2] = front_hex;
    if (nodes.n)
      last[nlast++] = (struct bg_pipe){.stmt = "aud_nodes", .nparams = 3, .params = pn};
    pb[0] = bidx.p, pb[1] = btime.p;
    last[nlast++] = (struct bg_pipe){.stmt = "aud_blocks", .nparams = 2, .params = pb};
    last[nlast++] = (struct bg_pipe){.stmt = "aud_update_state", .nparams = 3, .params = ps};
  }
  if (own_tx)
    last[nlast++] = (struct bg_pipe){.sql = "COMMIT"};
  ok = !nlast || bg_dbc_pipeline(c, last, nlast);
  for (size_t i = 0; i < nlast; i++)
    PQclear(last[i].res);
  free(front_hex);
out:
  for (size_t i = 0; i < 3; i++)
    PQclear(first[i].res);
  free(ids.p);
  free(nodes.level.p);
  free(nodes.idx.p);
  free(nodes.hash.p);
  free(records.p);
  free(bidx.p);
  free(btime.p);
  return ok;
}

bool aud_append_in_tx(struct bg_dbc *c, struct aud_entry *e, size_t n, bool *conflict)
{
  return append(c, e, n, conflict, false);
}

bool aud_append(struct bg_dbc *c, struct aud_entry *e, size_t n, bool *conflict)
{
  bool ok = append(c, e, n, conflict, true);
  if (!ok && c->in_tx)
    bg_dbc_rollback(c);
  return ok;
}

bool aud_append_own(json_t *ev, const char *request_id)
{
  struct aud_entry e = {.ev = ev};
  const char *why = NULL;
  bool ok = false, conflict = false;
  struct bg_dbc *c = NULL;
  if (!aud_entry_prepare(&e, "audit", &why)) {
    bg_log(BG_LOG_ERROR, request_id, "own event has no canonical form: %s", why ? why : "?");
    goto out;
  }
  if (!(c = bg_db_acquire(aud.db, 5000)))
    goto out;
  ok = aud_append(c, &e, 1, &conflict);
out:
  bg_db_release(c);
  aud_entry_clear(&e);
  json_decref(ev);
  return ok;
}

bool aud_state(struct bg_dbc *c, uint64_t *size, unsigned char root[AUD_HASH_LEN])
{
  PGresult *res = bg_dbc_exec(c, "aud_state", 0, NULL, NULL);
  bool ok = res && PQntuples(res) == 1 && aud_hash_unhex(PQgetvalue(res, 0, 1), root);
  if (ok)
    *size = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return ok;
}

/* Proofs in two passes: the first asks the proof algorithm which perfect subtrees it needs
 * (answering with zeros), one query fetches them all, the second builds the proof. */
#define MAX_WANTED 4096
struct wanted {
  int n;
  unsigned level[MAX_WANTED];
  uint64_t index[MAX_WANTED];
  unsigned char h[MAX_WANTED][AUD_HASH_LEN];
  bool have[MAX_WANTED];
  bool overflow;
};

static bool want_node(void *ctx, unsigned level, uint64_t index, unsigned char out[AUD_HASH_LEN])
{
  struct wanted *w = ctx;
  memset(out, 0, AUD_HASH_LEN);
  for (int i = 0; i < w->n; i++)
    if (w->level[i] == level && w->index[i] == index)
      return true;
  if (w->n >= MAX_WANTED) {
    w->overflow = true;
    return false;
  }
  w->level[w->n] = level;
  w->index[w->n] = index;
  w->have[w->n] = false;
  w->n++;
  return true;
}

static bool have_node(void *ctx, unsigned level, uint64_t index, unsigned char out[AUD_HASH_LEN])
{
  struct wanted *w = ctx;
  for (int i = 0; i < w->n; i++)
    if (w->level[i] == level && w->index[i] == index && w->have[i]) {
      memcpy(out, w->h[i], AUD_HASH_LEN);
      return true;
    }
  return false;
}

static bool fetch_wanted(struct bg_dbc *c, struct wanted *w)
{
  struct sbuf lv = {.ok = true}, ix = {.ok = true}, leaves = {.ok = true};
  sb_add(&lv, "{");
  sb_add(&ix, "{");
  sb_add(&leaves, "{");
  int nl = 0, nn = 0;
  for (int i = 0; i < w->n; i++) {
    char num[32];
    if (w->level[i] == 0) {
      snprintf(num, sizeof num, "%s%" PRIu64, nl++ ? "," : "", w->index[i]);
      sb_add(&leaves, num);
    } else {
      const char *sep = nn++ ? "," : "";
      snprintf(num, sizeof num, "%s%u", sep, w->level[i]);
      sb_add(&lv, num);
      snprintf(num, sizeof num, "%s%" PRIu64, sep, w->index[i]);
      sb_add(&ix, num);
    }
  }
  sb_add(&lv, "}");
  sb_add(&ix, "}");
  sb_add(&leaves, "}");
  bool ok = false;
  if (lv.ok && ix.ok && leaves.ok) {
    const char *p[] = {lv.p, ix.p, leaves.p};
    PGresult *res = bg_dbc_exec_sql(c, "aud_hashes", AUD_HASHES, 3, p);
    if (res) {
      ok = true;
      for (int row = 0; row < PQntuples(res); row++) {
        unsigned level = (unsigned)strtoul(PQgetvalue(res, row, 0), NULL, 10);
        uint64_t index = strtoull(PQgetvalue(res, row, 1), NULL, 10);
        for (int i = 0; i < w->n; i++)
          if (w->level[i] == level && w->index[i] == index)
            w->have[i] = aud_hash_unhex(PQgetvalue(res, row, 2), w->h[i]);
      }
    }
    PQclear(res);
  }
  free(lv.p);
  free(ix.p);
  free(leaves.p);
  return ok;
}

int aud_db_inclusion(struct bg_dbc *c, uint64_t index, uint64_t size, unsigned char out[][AUD_HASH_LEN],
                     unsigned char leaf[AUD_HASH_LEN], unsigned char root[AUD_HASH_LEN])
{
  struct wanted *w = calloc(1, sizeof *w);
  int n = -1;
  if (!w)
    return -1;
  /* pass 1 asks for the leaf and the root's parts too, so one query serves all three */
  if (aud_inclusion_proof(want_node, w, index, size, out, AUD_MAX_PROOF) < 0 || !want_node(w, 0, index, leaf) ||
      !aud_tree_root(want_node, w, size, root) || w->overflow || !fetch_wanted(c, w))
    goto out;
  if (!have_node(w, 0, index, leaf) || !aud_tree_root(have_node, w, size, root))
    goto out;
  n = aud_inclusion_proof(have_node, w, index, size, out, AUD_MAX_PROOF);
out:
  free(w);
  return n;
}

int aud_db_consistency(struct bg_dbc *c, uint64_t first, uint64_t second, unsigned char out[][AUD_HASH_LEN],
                       unsigned char r1[AUD_HASH_LEN], unsigned char r2[AUD_HASH_LEN])
{
  struct wanted *w = calloc(1, sizeof *w);
  int n = -1;
  if (!w)
    return -1;
  if (aud_consistency_proof(want_node, w, first, second, out, AUD_MAX_PROOF) < 0 ||
      !aud_tree_root(want_node, w, first, r1) || !aud_tree_root(want_node, w, second, r2) || w->overflow ||
      !fetch_wanted(c, w))
    goto out;
  if (!aud_tree_root(have_node, w, first, r1) || !aud_tree_root(have_node, w, second, r2))
    goto out;
  n = aud_consistency_proof(have_node, w, first, second, out, AUD_MAX_PROOF);
out:
  free(w);
  return n;
}
