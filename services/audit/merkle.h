/* The audit log's Merkle tree (RFC 9162 §2.1, the RFC 6962 tree): leaf and node hashing, the
 * compact right edge used to append, proofs built from stored subtree hashes, and proof
 * verification. Pure: no HTTP, no database; the CLI's offline verifier links it too. */
#ifndef AUD_MERKLE_H
#define AUD_MERKLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUD_HASH_LEN 32
/* A tree of 2^63 leaves needs 63 levels; proofs are at most twice that long. */
#define AUD_MAX_LEVELS 64
#define AUD_MAX_PROOF 130

/* SHA-256(0x00 || data) */
void aud_leaf_hash(const void *data, size_t len, unsigned char out[AUD_HASH_LEN]);
/* SHA-256(0x01 || left || right); out may alias either input. */
void aud_node_hash(const unsigned char left[AUD_HASH_LEN], const unsigned char right[AUD_HASH_LEN],
                   unsigned char out[AUD_HASH_LEN]);
/* The root of the empty tree: SHA-256 of no bytes. */
void aud_empty_root(unsigned char out[AUD_HASH_LEN]);
/* The largest power of two strictly below n (n >= 2): where the RFC splits a tree of n leaves. */
uint64_t aud_split(uint64_t n);

/* The right edge of a tree of `size` leaves: the roots of its perfect subtrees, largest (leftmost)
 * first, one per set bit of size. Enough to append and to compute the root without any leaf. */
struct aud_frontier {
  uint64_t size;
  int n;
  unsigned char h[AUD_MAX_LEVELS][AUD_HASH_LEN];
};

/* Called for each perfect subtree an append completes (level >= 1; level 0 is the leaf itself):
 * the subtree covers leaves [index << level, (index + 1) << level). */
typedef void (*aud_emit_fn)(void *ctx, unsigned level, uint64_t index, const unsigned char hash[AUD_HASH_LEN]);

void aud_frontier_init(struct aud_frontier *f);
/* Restores a frontier from its serialised hashes (popcount(size) * 32 bytes); false if the length
 * does not fit the size. */
bool aud_frontier_load(struct aud_frontier *f, uint64_t size, const unsigned char *hashes, size_t len);
/* The serialised form: f->n * 32 bytes, written to out. */
size_t aud_frontier_bytes(const struct aud_frontier *f, unsigned char *out, size_t cap);
void aud_frontier_append(struct aud_frontier *f, const unsigned char leaf[AUD_HASH_LEN], aud_emit_fn emit, void *ctx);
void aud_frontier_root(const struct aud_frontier *f, unsigned char out[AUD_HASH_LEN]);

/* Where proofs get the hash of a perfect subtree (level 0: a leaf hash). false: not available. */
typedef bool (*aud_get_fn)(void *ctx, unsigned level, uint64_t index, unsigned char out[AUD_HASH_LEN]);

/* MTH(D[begin:end]) for 0 <= begin < end, asking only for perfect subtrees. */
bool aud_range_root(aud_get_fn get, void *ctx, uint64_t begin, uint64_t end, unsigned char out[AUD_HASH_LEN]);
/* The root of the first `size` leaves (size 0: the empty root). */
bool aud_tree_root(aud_get_fn get, void *ctx, uint64_t size, unsigned char out[AUD_HASH_LEN]);
/* Inclusion proof of leaf `index` in the tree of `size` leaves, deepest sibling first.
 * Returns the number of hashes written, or -1 (index >= size, or a hash unavailable). */
int aud_inclusion_proof(aud_get_fn get, void *ctx, uint64_t index, uint64_t size,
                        unsigned char out[][AUD_HASH_LEN], int max);
/* Consistency proof between the trees of `first` and `second` leaves (0 < first <= second).
 * Returns the number of hashes, or -1. */
int aud_consistency_proof(aud_get_fn get, void *ctx, uint64_t first, uint64_t second,
                          unsigned char out[][AUD_HASH_LEN], int max);

/* RFC 9162 §2.1.3.2. Rejects size 0, index >= size and any proof of the wrong length. */
bool aud_verify_inclusion(uint64_t index, uint64_t size, const unsigned char leaf[AUD_HASH_LEN],
                          const unsigned char proof[][AUD_HASH_LEN], int nproof, const unsigned char root[AUD_HASH_LEN]);
/* RFC 9162 §2.1.4.2. Rejects first == 0, first > second and proofs of the wrong length; equal
 * sizes verify only with an empty proof and equal roots. */
bool aud_verify_consistency(uint64_t first, uint64_t second, const unsigned char first_root[AUD_HASH_LEN],
                            const unsigned char second_root[AUD_HASH_LEN], const unsigned char proof[][AUD_HASH_LEN],
                            int nproof);

/* Hex helpers for hashes (lower case). */
void aud_hash_hex(const unsigned char h[AUD_HASH_LEN], char out[2 * AUD_HASH_LEN + 1]);
bool aud_hash_unhex(const char *s, unsigned char out[AUD_HASH_LEN]);

#endif
