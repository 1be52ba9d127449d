/* The log's public face: its signing keys, the latest signed tree head, inclusion and
 * consistency proofs. Hashes only, no event content: anyone may ask, nothing is recorded. */
#include "aud.h"
#include "bligate/util.h"
#include <stdlib.h>

void aud_h_keys(struct bg_request *r) { bg_reply_json(r, 200, bg_keyset_to_jwks(aud.sign_keys)); }

void aud_h_sth_latest(struct bg_request *r)
{
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  PGresult *res = bg_dbc_exec(c, "aud_sth_latest", 0, NULL, NULL);
  if (!res)
    bg_db_failed(r, c);
  else if (PQntuples(res) == 0) /* only before the signer's first round */
    bg_reply_problem(r, BG_P_AUD_NO_TREE_HEAD, NULL);
  else {
    json_t *sth = aud_sth_json(res, 0);
    if (sth) /* else it does not match its signature (logged): nothing is served */
      bg_reply_json(r, 200, sth);
    else
      bg_reply_problem(r, BG_P_INTERNAL, NULL);
  }
  PQclear(res);
  bg_db_release(c);
}

static bool size_param(struct bg_request *r, const char *name, uint64_t *out)
{
  const char *s = bg_req_query(r, name);
  long v;
  if (!s) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, name, "required", "required: a non-negative integer");
    return false;
  }
  if (!bg_parse_long(s, 0, INT64_MAX, &v)) {
    bg_reply_field_error(r, BG_P_BAD_QUERY, name, "range", "must be a non-negative integer");
    return false;
  }
  *out = (uint64_t)v;
  return true;
}

static json_t *hex_array(unsigned char h[][AUD_HASH_LEN], int n)
{
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    char hex[2 * AUD_HASH_LEN + 1];
    aud_hash_hex(h[i], hex);
    json_array_append_new(a, json_string(hex));
  }
  return a;
}

/* The proof's tree must exist: tree_size no larger than the log. */
static bool within_log(struct bg_request *r, struct bg_dbc *c, uint64_t size)
{
  uint64_t cur;
  unsigned char root[AUD_HASH_LEN];
  if (!aud_state(c, &cur, root)) {
    bg_db_failed(r, c);
    return false;
  }
  if (size > cur) {
    bg_reply_problem(r, BG_P_AUD_TREE_SIZE, "the log has %llu events", (unsigned long long)cur);
    return false;
  }
  return true;
}

void aud_h_inclusion(struct bg_request *r)
{
  uint64_t index, size;
  if (!size_param(r, "index", &index) || !size_param(r, "tree_size", &size))
    return;
  if (size == 0 || index >= size) {
    bg_reply_problem(r, BG_P_AUD_PROOF_RANGE, "need 0 <= index < tree_size");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  unsigned char proof[AUD_MAX_PROOF][AUD_HASH_LEN], leaf[AUD_HASH_LEN], root[AUD_HASH_LEN];
  if (within_log(r, c, size)) {
    int n = aud_db_inclusion(c, index, size, proof, leaf, root);
    if (n < 0) {
      bg_db_failed(r, c);
    } else {
      char lh[2 * AUD_HASH_LEN + 1], rh[2 * AUD_HASH_LEN + 1];
      aud_hash_hex(leaf, lh);
      aud_hash_hex(root, rh);
      bg_reply_json(r, 200, json_pack("{s:I, s:I, s:s, s:s, s:o}", "index", (json_int_t)index, "tree_size",
                                      (json_int_t)size, "leaf_hash", lh, "root_hash", rh, "audit_path",
                                      hex_array(proof, n)));
    }
  }
  bg_db_release(c);
}

void aud_h_consistency(struct bg_request *r)
{
  uint64_t first, second;
  if (!size_param(r, "first", &first) || !size_param(r, "second", &second))
    return;
  if (first == 0 || first > second) {
    bg_reply_problem(r, BG_P_AUD_PROOF_RANGE, "need 0 < first <= second");
    return;
  }
  struct bg_dbc *c = bg_db_for(r, aud.db);
  if (!c)
    return;
  unsigned char proof[AUD_MAX_PROOF][AUD_HASH_LEN], r1[AUD_HASH_LEN], r2[AUD_HASH_LEN];
  if (within_log(r, c, second)) {
    int n = aud_db_consistency(c, first, second, proof, r1, r2);
    if (n < 0) {
      bg_db_failed(r, c);
    } else {
      char h1[2 * AUD_HASH_LEN + 1], h2[2 * AUD_HASH_LEN + 1];
      aud_hash_hex(r1, h1);
      aud_hash_hex(r2, h2);
      bg_reply_json(r, 200, json_pack("{s:I, s:I, s:s, s:s, s:o}", "first", (json_int_t)first, "second",
                                      (json_int_t)second, "first_root_hash", h1, "second_root_hash", h2,
                                      "consistency_path", hex_array(proof, n)));
    }
  }
  bg_db_release(c);
}
