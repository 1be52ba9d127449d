/* POST /v1/audit/verifications: recompute the tree from the stored events — every leaf hash
 * from its canonical bytes, every index in sequence, the root at every signed tree head and
 * each head's signature — and report the first mismatch. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/json.h"
#include "bligate/log.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VCHUNK 10000

static uint64_t be64(const char *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | (unsigned char)p[i];
  return v;
}

static bool send_range(struct bg_dbc *c, uint64_t from, uint64_t to, bool cols)
{
  char a[24], z[24];
  snprintf(a, sizeof a, "%" PRIu64, from);
  snprintf(z, sizeof z, "%" PRIu64, to);
  const char *p[] = {a, z};
  return PQsendQueryPrepared(c->pg, cols ? "aud_verify_range_cols" : "aud_verify_range", 2, p, NULL, NULL, 1) == 1;
}

/* The result of the query in flight (NULL on failure); drains the connection. */
static PGresult *recv_range(struct bg_dbc *c)
{
  PGresult *res = PQgetResult(c->pg), *more;
  while ((more = PQgetResult(c->pg)))
    PQclear(more);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    bg_error("verification read failed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
  }
  return res;
}

struct verify_body {
  long tree_size;
  int search_columns;
};

struct mismatch {
  bool found;
  uint64_t index;
  const char *reason;
};

static void mark(struct mismatch *m, uint64_t index, const char *reason)
{
  if (m->found)
    return;
  m->found = true;
  m->index = index;
  m->reason = reason;
}

void aud_h_verify(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("tree_size", BG_F_INT, false, struct verify_body, tree_size, .imin = 0, .imax = INT64_MAX),
    BG_FIELD("search_columns", BG_F_BOOL, false, struct verify_body, search_columns),
    BG_FIELD_END};
  if (!aud_is_reader(r)) {
    if (aud_record_read(r, "audit.verification.run", "denied", NULL, NULL))
      bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator, IT staff, the Ethics Office and the "
                                          "Director read the audit log");
    return;
  }
  struct verify_body b = {.tree_size = -1, .search_columns = -1};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  /* the search columns are checked on request: parsing every event's text again costs
   * PostgreSQL about as much as hashing them all costs here */
  bool cols = b.search_columns == 1;
  if (!aud_record_read(r, "audit.verification.run", "success",
                       json_pack("{s:I, s:b}", "tree_size", (json_int_t)b.tree_size, "search_columns", cols), NULL))
    return;
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  int64_t t0 = bg_mono_us();
  PGresult *heads = NULL, *res = NULL;
  uint64_t cur;
  unsigned char state_root[AUD_HASH_LEN];
  if (!aud_state(c, &cur, state_root)) {
    bg_db_failed(r, c);
    goto out;
  }
  uint64_t target = b.tree_size < 0 ? cur : (uint64_t)b.tree_size;
  if (target > cur) {
    bg_reply_problem(r, BG_P_AUD_TREE_SIZE, "the log has %" PRIu64 " events", cur);
    goto out;
  }
  char tsz[24];
  snprintf(tsz, sizeof tsz, "%" PRIu64, target);
  const char *ph[] = {tsz};
  if (!(heads = bg_dbc_exec(c, "aud_sth_upto", 1, ph, NULL))) {
    bg_db_failed(r, c);
    goto out;
  }
  int nheads = PQntuples(heads), hi = 0, heads_checked = 0;
  struct mismatch mm = {0};
  struct aud_frontier f;
  aud_frontier_init(&f);
  unsigned char root[AUD_HASH_LEN];
  /* a tree head of size 0 covers the empty tree */
  while (hi < nheads && strtoull(PQgetvalue(heads, hi, 0), NULL, 10) == 0) {
    unsigned char want[AUD_HASH_LEN];
    aud_frontier_root(&f, root);
    if (!aud_bytea32(PQgetvalue(heads, hi, 1), want) || memcmp(want, root, AUD_HASH_LEN))
      mark(&mm, 0, "tree-head-root");
    else if (!aud_sth_verify(PQgetvalue(heads, hi, 2), 0, root, PQgetvalue(heads, hi, 3), PQgetvalue(heads, hi, 4)))
      mark(&mm, 0, "tree-head-signature");
    heads_checked++;
    hi++;
  }
  /* Chunk k+1 is fetched (binary results) while chunk k is hashed: PostgreSQL and this thread
   * work at the same time, on two cores. */
  uint64_t next = 0, start = 0;
  bool inflight = target > 0 && send_range(c, 0, target < VCHUNK ? target : VCHUNK, cols);
  if (target > 0 && !inflight) {
    bg_db_failed(r, c);
    goto out;
  }
  while (start < target) {
    uint64_t end = target - start < VCHUNK ? target : start + VCHUNK;
    res = recv_range(c);
    inflight = false;
    if (!res) {
      bg_db_failed(r, c);
      goto out;
    }
    if (mm.found)
      break;
    if (end < target) {
      if (!(inflight = send_range(c, end, target - end < VCHUNK ? target : end + VCHUNK, cols))) {
        bg_db_failed(r, c);
        goto out;
      }
    }
    int n = PQntuples(res);
    for (int i = 0; i < n && !mm.found; i++) {
      uint64_t idx = be64(PQgetvalue(res, i, 0));
      if (idx != next) {
        mark(&mm, next, "missing-event");
        break;
      }
      unsigned char leaf[AUD_HASH_LEN];
      aud_leaf_hash(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2), leaf);
      if (PQgetlength(res, i, 1) != AUD_HASH_LEN || memcmp(PQgetvalue(res, i, 1), leaf, AUD_HASH_LEN)) {
        mark(&mm, idx, "leaf-hash");
        break;
      }
      if (cols && (PQgetlength(res, i, 3) != 1 || PQgetvalue(res, i, 3)[0] != 1)) { /* binary bool */
        mark(&mm, idx, "search-columns");
        break;
      }
      aud_frontier_append(&f, leaf, NULL, NULL);
      next++;
      while (hi < nheads && strtoull(PQgetvalue(heads, hi, 0), NULL, 10) == f.size) {
        unsigned char want[AUD_HASH_LEN];
        aud_frontier_root(&f, root);
        if (!aud_bytea32(PQgetvalue(heads, hi, 1), want) || memcmp(want, root, AUD_HASH_LEN))
          mark(&mm, f.size, "tree-head-root");
        else if (!aud_sth_verify(PQgetvalue(heads, hi, 2), f.size, root, PQgetvalue(heads, hi, 3),
                                 PQgetvalue(heads, hi, 4)))
          mark(&mm, f.size, "tree-head-signature");
        heads_checked++;
        hi++;
      }
    }
    if (!mm.found && next != end)
      mark(&mm, next, "missing-event");
    PQclear(res);
    res = NULL;
    start = end;
  }
  if (inflight) { /* a mismatch stopped the loop: the next chunk is still coming */
    PQclear(recv_range(c));
  }
  aud_frontier_root(&f, root);
  if (!mm.found && target == cur && memcmp(root, state_root, AUD_HASH_LEN))
    mark(&mm, cur, "state-root");
  char rh[2 * AUD_HASH_LEN + 1];
  aud_hash_hex(root, rh);
  json_t *first = mm.found ? json_pack("{s:I, s:s}", "index", (json_int_t)mm.index, "reason", mm.reason) : json_null();
  bg_reply_json(r, 200, json_pack("{s:b, s:I, s:s, s:I, s:i, s:o, s:I}", "verified", !mm.found, "tree_size",
                                  (json_int_t)target, "root_hash", rh, "events_checked", (json_int_t)f.size,
                                  "tree_heads_checked", heads_checked, "first_mismatch", first, "duration_ms",
                                  (json_int_t)((bg_mono_us() - t0) / 1000)));
out:
  PQclear(heads);
  PQclear(res);
  bg_db_release(c);
}
