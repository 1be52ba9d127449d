/* POST /v1/audit/verifications: recompute the tree from the stored events — every leaf hash
 * from its canonical bytes, every index in sequence, the root at every signed tree head and
 * each head's signature — and report the first mismatch. */
#include "aud.h"
#include "bligate/clock.h"
#include "bligate/json.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VCHUNK 10000

struct verify_body {
  long tree_size;
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
    BG_FIELD_END};
  if (!aud_is_reader(r)) {
    if (aud_record_read(r, "audit.verification.run", "denied", NULL, NULL))
      bg_reply_problem(r, BG_P_FORBIDDEN, "only the permission administrator, IT staff, the Ethics Office and the "
                                          "Director read the audit log");
    return;
  }
  struct verify_body b = {.tree_size = -1};
  if (!bg_json_parse(r, r->json, spec, &b))
    return;
  if (!aud_record_read(r, "audit.verification.run", "success",
                       json_pack("{s:I}", "tree_size", (json_int_t)b.tree_size), NULL))
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
    else if (!aud_sth_verify(PQgetvalue(heads, hi, 2), 0, root))
      mark(&mm, 0, "tree-head-signature");
    heads_checked++;
    hi++;
  }
  uint64_t next = 0;
  while (!mm.found && next < target) {
    char a[24], z[24], l[16];
    snprintf(a, sizeof a, "%" PRIu64, next);
    snprintf(z, sizeof z, "%" PRIu64, target);
    snprintf(l, sizeof l, "%d", VCHUNK);
    const char *p[] = {a, z, l};
    if (!(res = bg_dbc_exec(c, "aud_verify_chunk", 3, p, NULL))) {
      bg_db_failed(r, c);
      goto out;
    }
    int n = PQntuples(res);
    if (n == 0) {
      mark(&mm, next, "missing-event");
      break;
    }
    for (int i = 0; i < n && !mm.found; i++) {
      uint64_t idx = strtoull(PQgetvalue(res, i, 0), NULL, 10);
      if (idx != next) {
        mark(&mm, next, "missing-event");
        break;
      }
      unsigned char stored[AUD_HASH_LEN], leaf[AUD_HASH_LEN];
      aud_leaf_hash(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2), leaf);
      if (!aud_bytea32(PQgetvalue(res, i, 1), stored) || memcmp(stored, leaf, AUD_HASH_LEN)) {
        mark(&mm, idx, "leaf-hash");
        break;
      }
      aud_frontier_append(&f, leaf, NULL, NULL);
      next++;
      while (hi < nheads && strtoull(PQgetvalue(heads, hi, 0), NULL, 10) == f.size) {
        unsigned char want[AUD_HASH_LEN];
        aud_frontier_root(&f, root);
        if (!aud_bytea32(PQgetvalue(heads, hi, 1), want) || memcmp(want, root, AUD_HASH_LEN))
          mark(&mm, f.size, "tree-head-root");
        else if (!aud_sth_verify(PQgetvalue(heads, hi, 2), f.size, root))
          mark(&mm, f.size, "tree-head-signature");
        heads_checked++;
        hi++;
      }
    }
    PQclear(res);
    res = NULL;
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
