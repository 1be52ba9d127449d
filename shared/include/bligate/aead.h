/* Data at rest: AES-256-GCM with a key ring, so keys can be rotated without re-encrypting.
 * A sealed value is nonce (12 random bytes) | ciphertext | tag (16), opened with the key named
 * by its key id and the same associated data it was sealed with (a value moved to another row
 * or item does not open). */
#ifndef BLIGATE_AEAD_H
#define BLIGATE_AEAD_H
#include <stdbool.h>
#include <stddef.h>

#define BG_AEAD_MAX_KEYS 16
#define BG_AEAD_KID_LEN 33
#define BG_AEAD_OVERHEAD (12 + 16)

struct bg_keyring {
  struct {
    char kid[BG_AEAD_KID_LEN];
    unsigned char key[32];
  } keys[BG_AEAD_MAX_KEYS];
  size_t n; /* keys[0] seals; every key opens */
};

/* Reads a key file: one key per line, "<key id> <64 hex digits>", the first line the current
 * key; blank lines and lines starting with # are skipped. Key ids are [A-Za-z0-9_-]{1,32}.
 * false with a reason in why (never the key material). */
bool bg_keyring_load(struct bg_keyring *kr, const char *path, char *why, size_t whylen);
void bg_keyring_wipe(struct bg_keyring *kr);

/* Seals pt with the current key into out (ptlen + BG_AEAD_OVERHEAD bytes); *kid names it. */
bool bg_aead_seal(const struct bg_keyring *kr, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                  unsigned char *out, const char **kid);
/* Opens a sealed value into out (len - BG_AEAD_OVERHEAD bytes); false when the key id is
 * unknown or the value or its associated data was altered. */
bool bg_aead_open(const struct bg_keyring *kr, const char *kid, const void *aad, size_t aadlen,
                  const unsigned char *sealed, size_t len, unsigned char *out);

#endif
