/* The audit log's Merkle tree (services/audit/merkle.c) against the RFC 6962 / Certificate
 * Transparency test vectors, and every proof for many tree sizes against a straightforward
 * recomputation written here independently; the canonical event form (canon.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "canon.h"
#include "merkle.h"

typedef unsigned char hash_t[AUD_HASH_LEN];

static void unhex(const char *s, hash_t out) { assert_true(aud_hash_unhex(s, out)); }

/* ---- the CT reference data (RFC 6962 test vectors, as published with the CT code) ---- */

static const struct {
  size_t len;
  const unsigned char b[16];
} ct_data[8] = {
  {0, {0}},
  {1, {0x00}},
  {1, {0x10}},
  {2, {0x20, 0x21}},
  {2, {0x30, 0x31}},
  {4, {0x40, 0x41, 0x42, 0x43}},
  {8, {0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57}},
  {16, {0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f}},
};

static const char *const ct_roots[9] = {
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vec {
  uint64_t a, b; /* inclusion: index, size; consistency: first, second */
  int n;
  const char *proof[4];
};

static const struct vec ct_inclusion[] = {
  {0, 1, 0, {NULL}},
  {0, 8, 3,
   {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
  {5, 8, 3,
   {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  {2, 3, 1, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
  {1, 5, 3,
   {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct vec ct_consistency[] = {
  {1, 1, 0, {NULL}},
  {1, 8, 3,
   {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
  {6, 8, 3,
   {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  {2, 5, 2,
   {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  {2, 8, 2,
   {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
};

/* ---- an independent, straightforward tree over an array of leaf hashes ---- */

#define MAXN 72
static hash_t leaves[MAXN];

static void naive_root(const hash_t *l, uint64_t n, hash_t out)
{
  if (n == 0) {
    SHA256((const unsigned char *)"", 0, out);
    return;
  }
  if (n == 1) {
    memcpy(out, l[0], AUD_HASH_LEN);
    return;
  }
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  unsigned char buf[65];
  buf[0] = 1;
  naive_root(l, k, buf + 1);
  naive_root(l + k, n - k, buf + 33);
  SHA256(buf, sizeof buf, out);
}

static void naive_path(const hash_t *l, uint64_t m, uint64_t n, hash_t *out, int *cnt)
{
  if (n <= 1)
    return;
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  if (m < k) {
    naive_path(l, m, k, out, cnt);
    naive_root(l + k, n - k, out[(*cnt)++]);
  } else {
    naive_path(l + k, m - k, n - k, out, cnt);
    naive_root(l, k, out[(*cnt)++]);
  }
}

static void naive_subproof(const hash_t *l, uint64_t m, uint64_t n, int whole, hash_t *out, int *cnt)
{
  if (m == n) {
    if (!whole)
      naive_root(l, n, out[(*cnt)++]);
    return;
  }
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  if (m <= k) {
    naive_subproof(l, m, k, whole, out, cnt);
    naive_root(l + k, n - k, out[(*cnt)++]);
  } else {
    naive_subproof(l + k, m - k, n - k, 0, out, cnt);
    naive_root(l, k, out[(*cnt)++]);
  }
}

/* The getter the proofs use: perfect subtree (level, index) of the leaves above. Counts calls
 * that ask for a subtree that is not perfect or not inside the array. */
static int bad_requests;
static uint64_t getter_limit = MAXN;

static bool get_node(void *ctx, unsigned level, uint64_t index, unsigned char out[AUD_HASH_LEN])
{
  uint64_t begin = index << level, n = (uint64_t)1 << level;
  if (begin + n > getter_limit) {
    bad_requests++;
    return false;
  }
  naive_root(leaves + begin, n, out);
  return true;
}

static void ct_leaves(void)
{
  for (int i = 0; i < 8; i++)
    aud_leaf_hash(ct_data[i].b, ct_data[i].len, leaves[i]);
  getter_limit = 8;
}

static void many_leaves(void)
{
  for (int i = 0; i < MAXN; i++) {
    unsigned char d[2] = {(unsigned char)i, (unsigned char)(i * 7)};
    aud_leaf_hash(d, sizeof d, leaves[i]);
  }
  getter_limit = MAXN;
}

/* ---- tests ---- */

static void test_hashing_primitives(void **state)
{
  hash_t h, want;
  aud_empty_root(h);
  unhex(ct_roots[0], want);
  assert_memory_equal(h, want, 32);
  aud_leaf_hash("", 0, h); /* SHA-256(0x00) */
  unhex(ct_roots[1], want);
  assert_memory_equal(h, want, 32);
  assert_int_equal(aud_split(2), 1);
  assert_int_equal(aud_split(3), 2);
  assert_int_equal(aud_split(5), 4);
  assert_int_equal(aud_split(8), 4);
  assert_int_equal(aud_split(9), 8);
  assert_int_equal(aud_split(1000), 512);
}

static void test_ct_roots(void **state)
{
  ct_leaves();
  struct aud_frontier f;
  aud_frontier_init(&f);
  for (uint64_t n = 0; n <= 8; n++) {
    hash_t want, got;
    unhex(ct_roots[n], want);
    aud_frontier_root(&f, got);
    assert_memory_equal(got, want, 32);
    assert_true(aud_tree_root(get_node, NULL, n, got));
    assert_memory_equal(got, want, 32);
    if (n < 8)
      aud_frontier_append(&f, leaves[n], NULL, NULL);
  }
}

static void test_ct_inclusion_vectors(void **state)
{
  ct_leaves();
  for (size_t v = 0; v < sizeof ct_inclusion / sizeof ct_inclusion[0]; v++) {
    const struct vec *t = &ct_inclusion[v];
    hash_t want[4], got[AUD_MAX_PROOF], root;
    for (int i = 0; i < t->n; i++)
      unhex(t->proof[i], want[i]);
    int n = aud_inclusion_proof(get_node, NULL, t->a, t->b, got, AUD_MAX_PROOF);
    assert_int_equal(n, t->n);
    if (n)
      assert_memory_equal(got, want, (size_t)n * 32);
    unhex(ct_roots[t->b], root);
    assert_true(aud_verify_inclusion(t->a, t->b, leaves[t->a], (const hash_t *)want, t->n, root));
  }
}

static void test_ct_consistency_vectors(void **state)
{
  ct_leaves();
  for (size_t v = 0; v < sizeof ct_consistency / sizeof ct_consistency[0]; v++) {
    const struct vec *t = &ct_consistency[v];
    hash_t want[4], got[AUD_MAX_PROOF], r1, r2;
    for (int i = 0; i < t->n; i++)
      unhex(t->proof[i], want[i]);
    int n = aud_consistency_proof(get_node, NULL, t->a, t->b, got, AUD_MAX_PROOF);
    assert_int_equal(n, t->n);
    if (n)
      assert_memory_equal(got, want, (size_t)n * 32);
    unhex(ct_roots[t->a], r1);
    unhex(ct_roots[t->b], r2);
    assert_true(aud_verify_consistency(t->a, t->b, r1, r2, (const hash_t *)want, t->n));
  }
}

static void test_inclusion_all_sizes(void **state)
{
  many_leaves();
  bad_requests = 0;
  for (uint64_t n = 1; n <= MAXN; n++) {
    hash_t root;
    naive_root(leaves, n, root);
    for (uint64_t m = 0; m < n; m++) {
      hash_t want[AUD_MAX_PROOF], got[AUD_MAX_PROOF + 1];
      int wn = 0;
      naive_path(leaves, m, n, want, &wn);
      int gn = aud_inclusion_proof(get_node, NULL, m, n, got, AUD_MAX_PROOF);
      assert_int_equal(gn, wn);
      if (gn)
        assert_memory_equal(got, want, (size_t)gn * 32);
      assert_true(aud_verify_inclusion(m, n, leaves[m], (const hash_t *)got, gn, root));
      /* wrong index, wrong size, wrong leaf, wrong root, changed, shortened and lengthened proofs */
      if (n > 1) {
        assert_false(aud_verify_inclusion((m + 1) % n, n, leaves[m], (const hash_t *)got, gn, root));
        assert_false(aud_verify_inclusion(m, n, leaves[(m + 1) % n], (const hash_t *)got, gn, root));
      }
      assert_false(aud_verify_inclusion(n, n, leaves[m], (const hash_t *)got, gn, root));
      hash_t other;
      memcpy(other, root, 32);
      other[0] ^= 1;
      assert_false(aud_verify_inclusion(m, n, leaves[m], (const hash_t *)got, gn, other));
      if (gn) {
        got[gn - 1][7] ^= 0x10;
        assert_false(aud_verify_inclusion(m, n, leaves[m], (const hash_t *)got, gn, root));
        got[gn - 1][7] ^= 0x10;
        assert_false(aud_verify_inclusion(m, n, leaves[m], (const hash_t *)got, gn - 1, root));
      }
      memset(got[gn], 0xab, 32);
      assert_false(aud_verify_inclusion(m, n, leaves[m], (const hash_t *)got, gn + 1, root));
    }
  }
  assert_int_equal(bad_requests, 0);
}

static void test_consistency_all_sizes(void **state)
{
  many_leaves();
  bad_requests = 0;
  for (uint64_t n = 1; n <= MAXN; n++) {
    hash_t r2;
    naive_root(leaves, n, r2);
    for (uint64_t m = 1; m <= n; m++) {
      hash_t r1, want[AUD_MAX_PROOF], got[AUD_MAX_PROOF + 1];
      naive_root(leaves, m, r1);
      int wn = 0;
      if (m < n)
        naive_subproof(leaves, m, n, 1, want, &wn);
      int gn = aud_consistency_proof(get_node, NULL, m, n, got, AUD_MAX_PROOF);
      assert_int_equal(gn, wn);
      if (gn)
        assert_memory_equal(got, want, (size_t)gn * 32);
      assert_true(aud_verify_consistency(m, n, r1, r2, (const hash_t *)got, gn));
      /* the other roots, a changed element, a shorter or longer proof: all refused */
      hash_t bad1, bad2;
      memcpy(bad1, r1, 32);
      bad1[31] ^= 1;
      memcpy(bad2, r2, 32);
      bad2[0] ^= 0x80;
      assert_false(aud_verify_consistency(m, n, bad1, r2, (const hash_t *)got, gn));
      assert_false(aud_verify_consistency(m, n, r1, bad2, (const hash_t *)got, gn));
      if (gn) {
        got[0][3] ^= 0x80;
        assert_false(aud_verify_consistency(m, n, r1, r2, (const hash_t *)got, gn));
        got[0][3] ^= 0x80;
        assert_false(aud_verify_consistency(m, n, r1, r2, (const hash_t *)got, gn - 1));
      }
      memset(got[gn], 0xcd, 32);
      assert_false(aud_verify_consistency(m, n, r1, r2, (const hash_t *)got, gn + 1));
      if (m < n) /* the sizes swapped: first > second */
        assert_false(aud_verify_consistency(n, m, r2, r1, (const hash_t *)got, gn));
    }
  }
  assert_int_equal(bad_requests, 0);
}

static void test_refusals(void **state)
{
  ct_leaves();
  hash_t p[AUD_MAX_PROOF], root, r6;
  unhex(ct_roots[8], root);
  unhex(ct_roots[6], r6);
  /* size 0 and index beyond the tree */
  assert_int_equal(aud_inclusion_proof(get_node, NULL, 0, 0, p, AUD_MAX_PROOF), -1);
  assert_int_equal(aud_inclusion_proof(get_node, NULL, 8, 8, p, AUD_MAX_PROOF), -1);
  assert_false(aud_verify_inclusion(0, 0, leaves[0], (const hash_t *)p, 0, root));
  /* first 0, first > second */
  assert_int_equal(aud_consistency_proof(get_node, NULL, 0, 8, p, AUD_MAX_PROOF), -1);
  assert_int_equal(aud_consistency_proof(get_node, NULL, 8, 6, p, AUD_MAX_PROOF), -1);
  int n = aud_consistency_proof(get_node, NULL, 6, 8, p, AUD_MAX_PROOF);
  assert_int_equal(n, 3);
  assert_false(aud_verify_consistency(0, 8, root, root, (const hash_t *)p, 0));
  assert_false(aud_verify_consistency(8, 6, root, r6, (const hash_t *)p, n));
  /* equal sizes: only an empty proof and equal roots */
  assert_true(aud_verify_consistency(8, 8, root, root, (const hash_t *)p, 0));
  assert_false(aud_verify_consistency(8, 8, root, root, (const hash_t *)p, 1));
  assert_false(aud_verify_consistency(8, 8, root, r6, (const hash_t *)p, 0));
  /* a proof with no elements between different sizes */
  assert_false(aud_verify_consistency(6, 8, r6, root, (const hash_t *)p, 0));
  /* the output array too small for the proof */
  assert_int_equal(aud_inclusion_proof(get_node, NULL, 5, 8, p, 2), -1);
  /* a hash that cannot be had */
  getter_limit = 4;
  assert_int_equal(aud_inclusion_proof(get_node, NULL, 0, 8, p, AUD_MAX_PROOF), -1);
  getter_limit = 8;
}

struct emitted {
  int n;
  unsigned level[MAXN];
  uint64_t index[MAXN];
  hash_t h[MAXN];
};

static void record(void *ctx, unsigned level, uint64_t index, const unsigned char h[AUD_HASH_LEN])
{
  struct emitted *e = ctx;
  e->level[e->n] = level;
  e->index[e->n] = index;
  memcpy(e->h[e->n], h, 32);
  e->n++;
}

static void test_frontier(void **state)
{
  many_leaves();
  struct aud_frontier f, g;
  struct emitted e = {0};
  aud_frontier_init(&f);
  for (uint64_t i = 0; i < 64; i++) {
    aud_frontier_append(&f, leaves[i], record, &e);
    hash_t want, got;
    naive_root(leaves, i + 1, want);
    aud_frontier_root(&f, got);
    assert_memory_equal(got, want, 32);
    /* a frontier saved and restored goes on identically */
    unsigned char buf[AUD_MAX_LEVELS * 32];
    size_t len = aud_frontier_bytes(&f, buf, sizeof buf);
    assert_int_equal(len, (size_t)__builtin_popcountll(i + 1) * 32);
    assert_true(aud_frontier_load(&g, i + 1, buf, len));
    aud_frontier_root(&g, got);
    assert_memory_equal(got, want, 32);
    assert_false(aud_frontier_load(&g, i + 2 == 0 ? 1 : i + 1, buf, len + 32));
  }
  /* 64 leaves complete 32 + 16 + 8 + 4 + 2 + 1 perfect subtrees above the leaves */
  assert_int_equal(e.n, 63);
  for (int k = 0; k < e.n; k++) {
    hash_t want;
    naive_root(leaves + (e.index[k] << e.level[k]), (uint64_t)1 << e.level[k], want);
    assert_memory_equal(e.h[k], want, 32);
  }
}

static void test_canonical_json(void **state)
{
  json_error_t err;
  json_t *j = json_loads("{\"b\":1,\"a\":{\"z\":[true,false,null,-3],\"\xc3\xa9\":\"caf\xc3\xa9\"},"
                         "\"A\":\"q\\\"\\\\\\n\\t\\u0001/\"}",
                         0, &err);
  assert_non_null(j);
  size_t len;
  char *c = aud_canon(j, &len, NULL);
  assert_non_null(c);
  assert_string_equal(c, "{\"A\":\"q\\\"\\\\\\n\\t\\u0001/\",\"a\":{\"z\":[true,false,null,-3],"
                         "\"\xc3\xa9\":\"caf\xc3\xa9\"},\"b\":1}");
  assert_int_equal(len, strlen(c));
  free(c);
  json_decref(j);
  /* floating-point numbers have no canonical form: refused */
  j = json_pack("{s:f}", "x", 1.5);
  const char *why = NULL;
  assert_null(aud_canon(j, &len, &why));
  assert_non_null(why);
  json_decref(j);
  /* the same content in another member order gives the same bytes */
  json_t *a = json_loads("{\"x\":{\"q\":1,\"p\":2},\"w\":[]}", 0, &err);
  json_t *b = json_loads("{\"w\":[],\"x\":{\"p\":2,\"q\":1}}", 0, &err);
  char *ca = aud_canon(a, NULL, NULL), *cb = aud_canon(b, NULL, NULL);
  assert_string_equal(ca, cb);
  assert_string_equal(ca, "{\"w\":[],\"x\":{\"p\":2,\"q\":1}}");
  free(ca);
  free(cb);
  json_decref(a);
  json_decref(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hashing_primitives),   cmocka_unit_test(test_ct_roots),
    cmocka_unit_test(test_ct_inclusion_vectors), cmocka_unit_test(test_ct_consistency_vectors),
    cmocka_unit_test(test_inclusion_all_sizes),  cmocka_unit_test(test_consistency_all_sizes),
    cmocka_unit_test(test_refusals),             cmocka_unit_test(test_frontier),
    cmocka_unit_test(test_canonical_json),
  };
  return cmocka_run_group_tests_name("merkle", tests, NULL, NULL);
}
