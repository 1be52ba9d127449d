/* The audit log's Merkle tree (merkle.h): RFC 9162 hashing, appends through the right edge,
 * proofs over stored subtree hashes and their verification. */
#include "merkle.h"
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

/* One context per thread: leaf hashing is the hot path of intake and verification. Freed when
 * the thread ends (a thread per connection: a bare _Thread_local leaked one per connection). */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *ctx) { EVP_MD_CTX_free(ctx); }
static void ctx_key_init(void) { pthread_key_create(&ctx_key, ctx_free); }

void aud_leaf_hash(const void *data, size_t len, unsigned char out[AUD_HASH_LEN])
{
  static const unsigned char prefix = 0x00;
  pthread_once(&ctx_once, ctx_key_init);
  EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
  if (!ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(ctx_key, ctx) != 0) {
    EVP_MD_CTX_free(ctx);
    ctx = NULL;
  }
  unsigned int n = 0;
  if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) || !EVP_DigestUpdate(ctx, &prefix, 1) ||
      (len && !EVP_DigestUpdate(ctx, data, len)) || !EVP_DigestFinal_ex(ctx, out, &n))
    memset(out, 0, AUD_HASH_LEN); /* cannot match any real hash: verification fails closed */
}

void aud_node_hash(const unsigned char left[AUD_HASH_LEN], const unsigned char right[AUD_HASH_LEN],
                   unsigned char out[AUD_HASH_LEN])
{
  unsigned char buf[1 + 2 * AUD_HASH_LEN];
  buf[0] = 0x01;
  memcpy(buf + 1, left, AUD_HASH_LEN);
  memcpy(buf + 1 + AUD_HASH_LEN, right, AUD_HASH_LEN);
  SHA256(buf, sizeof buf, out);
}

void aud_empty_root(unsigned char out[AUD_HASH_LEN]) { SHA256((const unsigned char *)"", 0, out); }

uint64_t aud_split(uint64_t n)
{
  uint64_t k = 1;
  while (k << 1 < n)
    k <<= 1;
  return k;
}

static int popcount64(uint64_t v) { return __builtin_popcountll(v); }

void aud_frontier_init(struct aud_frontier *f)
{
  f->size = 0;
  f->n = 0;
}

bool aud_frontier_load(struct aud_frontier *f, uint64_t size, const unsigned char *hashes, size_t len)
{
  int n = popcount64(size);
  if (len != (size_t)n * AUD_HASH_LEN)
    return false;
  f->size = size;
  f->n = n;
  if (len)
    memcpy(f->h, hashes, len);
  return true;
}

size_t aud_frontier_bytes(const struct aud_frontier *f, unsigned char *out, size_t cap)
{
  size_t len = (size_t)f->n * AUD_HASH_LEN;
  if (len > cap)
    return 0;
  if (len)
    memcpy(out, f->h, len);
  return len;
}

void aud_frontier_append(struct aud_frontier *f, const unsigned char leaf[AUD_HASH_LEN], aud_emit_fn emit, void *ctx)
{
  uint64_t pos = f->size;
  memcpy(f->h[f->n++], leaf, AUD_HASH_LEN);
  /* Each trailing 1 bit of the old size is a perfect subtree the new leaf completes. */
  unsigned level = 0;
  for (uint64_t s = pos; s & 1; s >>= 1) {
    aud_node_hash(f->h[f->n - 2], f->h[f->n - 1], f->h[f->n - 2]);
    f->n--;
    level++;
    if (emit)
      emit(ctx, level, ((pos + 1) >> level) - 1, f->h[f->n - 1]);
  }
  f->size = pos + 1;
}

void aud_frontier_root(const struct aud_frontier *f, unsigned char out[AUD_HASH_LEN])
{
  if (f->n == 0) {
    aud_empty_root(out);
    return;
  }
  unsigned char r[AUD_HASH_LEN];
  memcpy(r, f->h[f->n - 1], AUD_HASH_LEN);
  for (int i = f->n - 2; i >= 0; i--)
    aud_node_hash(f->h[i], r, r);
  memcpy(out, r, AUD_HASH_LEN);
}

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

bool aud_range_root(aud_get_fn get, void *ctx, uint64_t begin, uint64_t end, unsigned char out[AUD_HASH_LEN])
{
  if (begin >= end)
    return false;
  uint64_t n = end - begin;
  if (is_pow2(n) && begin % n == 0) {
    unsigned level = (unsigned)__builtin_ctzll(n);
    return get(ctx, level, begin >> level, out);
  }
  if (n == 1)
    return get(ctx, 0, begin, out);
  uint64_t k = aud_split(n);
  unsigned char l[AUD_HASH_LEN], r[AUD_HASH_LEN];
  if (!aud_range_root(get, ctx, begin, begin + k, l) || !aud_range_root(get, ctx, begin + k, end, r))
    return false;
  aud_node_hash(l, r, out);
  return true;
}

bool aud_tree_root(aud_get_fn get, void *ctx, uint64_t size, unsigned char out[AUD_HASH_LEN])
{
  if (size == 0) {
    aud_empty_root(out);
    return true;
  }
  return aud_range_root(get, ctx, 0, size, out);
}

struct proof_out {
  unsigned char (*h)[AUD_HASH_LEN];
  int n, max;
  bool ok;
};

static void push_range(aud_get_fn get, void *ctx, struct proof_out *o, uint64_t begin, uint64_t end)
{
  if (!o->ok)
    return;
  if (o->n >= o->max || !aud_range_root(get, ctx, begin, end, o->h[o->n])) {
    o->ok = false;
    return;
  }
  o->n++;
}

/* PATH(m, D[begin:end]) of RFC 6962 §2.1.1, m absolute. */
static void path(aud_get_fn get, void *ctx, struct proof_out *o, uint64_t m, uint64_t begin, uint64_t end)
{
  if (end - begin <= 1)
    return;
  uint64_t k = aud_split(end - begin);
  if (m < begin + k) {
    path(get, ctx, o, m, begin, begin + k);
    push_range(get, ctx, o, begin + k, end);
  } else {
    path(get, ctx, o, m, begin + k, end);
    push_range(get, ctx, o, begin, begin + k);
  }
}

int aud_inclusion_proof(aud_get_fn get, void *ctx, uint64_t index, uint64_t size, unsigned char out[][AUD_HASH_LEN],
                        int max)
{
  if (size == 0 || index >= size)
    return -1;
  struct proof_out o = {.h = out, .max = max, .ok = true};
  path(get, ctx, &o, index, 0, size);
  return o.ok ? o.n : -1;
}

/* SUBPROOF(m, D[begin:end], b) of RFC 6962 §2.1.2, m relative to begin. */
static void subproof(aud_get_fn get, void *ctx, struct proof_out *o, uint64_t m, uint64_t begin, uint64_t end,
                     bool whole)
{
  uint64_t n = end - begin;
  if (m == n) {
    if (!whole)
      push_range(get, ctx, o, begin, end);
    return;
  }
  uint64_t k = aud_split(n);
  if (m <= k) {
    subproof(get, ctx, o, m, begin, begin + k, whole);
    push_range(get, ctx, o, begin + k, end);
  } else {
    subproof(get, ctx, o, m - k, begin + k, end, false);
    push_range(get, ctx, o, begin, begin + k);
  }
}

int aud_consistency_proof(aud_get_fn get, void *ctx, uint64_t first, uint64_t second, unsigned char out[][AUD_HASH_LEN],
                          int max)
{
  if (first == 0 || first > second)
    return -1;
  struct proof_out o = {.h = out, .max = max, .ok = true};
  if (first < second)
    subproof(get, ctx, &o, first, 0, second, true);
  return o.ok ? o.n : -1;
}

static bool hash_eq(const unsigned char a[AUD_HASH_LEN], const unsigned char b[AUD_HASH_LEN])
{
  unsigned char d = 0;
  for (int i = 0; i < AUD_HASH_LEN; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}

bool aud_verify_inclusion(uint64_t index, uint64_t size, const unsigned char leaf[AUD_HASH_LEN],
                          const unsigned char proof[][AUD_HASH_LEN], int nproof, const unsigned char root[AUD_HASH_LEN])
{
  if (size == 0 || index >= size || nproof < 0 || nproof > AUD_MAX_PROOF)
    return false;
  uint64_t fn = index, sn = size - 1;
  unsigned char r[AUD_HASH_LEN];
  memcpy(r, leaf, AUD_HASH_LEN);
  for (int i = 0; i < nproof; i++) {
    if (sn == 0)
      return false; /* too long */
    if ((fn & 1) || fn == sn) {
      aud_node_hash(proof[i], r, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      aud_node_hash(r, proof[i], r);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && hash_eq(r, root); /* sn != 0: too short */
}

bool aud_verify_consistency(uint64_t first, uint64_t second, const unsigned char first_root[AUD_HASH_LEN],
                            const unsigned char second_root[AUD_HASH_LEN], const unsigned char proof[][AUD_HASH_LEN],
                            int nproof)
{
  if (first == 0 || first > second || nproof < 0 || nproof > AUD_MAX_PROOF)
    return false;
  if (first == second)
    return nproof == 0 && hash_eq(first_root, second_root);
  if (nproof == 0)
    return false;
  /* When the first tree is a perfect subtree of the second its root is the proof's implicit
   * first element. */
  int i = 0;
  const unsigned char *start = proof[0];
  if (is_pow2(first)) {
    start = first_root;
  } else {
    i = 1;
  }
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  unsigned char fr[AUD_HASH_LEN], sr[AUD_HASH_LEN];
  memcpy(fr, start, AUD_HASH_LEN);
  memcpy(sr, start, AUD_HASH_LEN);
  for (; i < nproof; i++) {
    if (sn == 0)
      return false;
    if ((fn & 1) || fn == sn) {
      aud_node_hash(proof[i], fr, fr);
      aud_node_hash(proof[i], sr, sr);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      aud_node_hash(sr, proof[i], sr);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && hash_eq(fr, first_root) && hash_eq(sr, second_root);
}

void aud_hash_hex(const unsigned char h[AUD_HASH_LEN], char out[2 * AUD_HASH_LEN + 1])
{
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < AUD_HASH_LEN; i++) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  out[2 * AUD_HASH_LEN] = '\0';
}

static int nibble(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool aud_hash_unhex(const char *s, unsigned char out[AUD_HASH_LEN])
{
  if (!s || strlen(s) != 2 * AUD_HASH_LEN)
    return false;
  for (int i = 0; i < AUD_HASH_LEN; i++) {
    int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return true;
}
