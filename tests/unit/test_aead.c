/* Proves the data-at-rest AEAD (aead.h): a sealed value opens with the right key and associated
 * data only, any flipped bit is refused, rotation keeps old values readable, the nonce differs
 * every time, the ciphertext matches an independent AES-256-GCM decryption (OpenSSL's EVP
 * directly), and bad key files are refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bligate/aead.h"

static const char K1[] = "0001020304050607080910111213141516171819202122232425262728293031";
static const char K2[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

static char *key_file(const char *text)
{
  static char path[64];
  snprintf(path, sizeof path, "/tmp/bligate-aead-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

static void load(struct bg_keyring *kr, const char *text)
{
  char why[128] = "";
  char *p = key_file(text);
  bool ok = bg_keyring_load(kr, p, why, sizeof why);
  unlink(p);
  assert_true(ok);
}

static void seal_open_round_trip(void **state)
{
  (void)state;
  struct bg_keyring kr;
  char text[256];
  snprintf(text, sizeof text, "# result keys\n\nk1 %s\n", K1);
  load(&kr, text);
  assert_int_equal(kr.n, 1);
  const char *pt = "{\"record\":{\"employer\":\"高雄市政府社會局\"}}", *ad = "q-1|C0101";
  size_t n = strlen(pt);
  unsigned char sealed[256], sealed2[256], out[256];
  const char *kid;
  assert_true(bg_aead_seal(&kr, ad, strlen(ad), pt, n, sealed, &kid));
  assert_string_equal(kid, "k1");
  assert_true(bg_aead_open(&kr, "k1", ad, strlen(ad), sealed, n + BG_AEAD_OVERHEAD, out));
  assert_memory_equal(out, pt, n);
  /* a fresh nonce every time: the same plaintext never seals the same */
  assert_true(bg_aead_seal(&kr, ad, strlen(ad), pt, n, sealed2, &kid));
  assert_memory_not_equal(sealed, sealed2, 12);
  /* the plaintext is nowhere in the sealed bytes */
  assert_null(memmem(sealed, n + BG_AEAD_OVERHEAD, "employer", 8));

  /* independent check: OpenSSL's AES-256-GCM with the same key, nonce and associated data */
  unsigned char key[32];
  for (int i = 0; i < 32; i++)
    sscanf(K1 + 2 * i, "%2hhx", &key[i]);
  EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0;
  unsigned char ref[256];
  assert_int_equal(EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, sealed), 1);
  assert_int_equal(EVP_DecryptUpdate(cx, NULL, &len, (const unsigned char *)ad, (int)strlen(ad)), 1);
  assert_int_equal(EVP_DecryptUpdate(cx, ref, &len, sealed + 12, (int)n), 1);
  assert_int_equal(EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, 16, sealed + 12 + n), 1);
  assert_int_equal(EVP_DecryptFinal_ex(cx, ref + len, &fin), 1);
  EVP_CIPHER_CTX_free(cx);
  assert_memory_equal(ref, pt, n);

  /* refused: other associated data (another record or item), any flipped bit, an unknown key id,
   * a truncated value */
  assert_false(bg_aead_open(&kr, "k1", "q-2|C0101", 9, sealed, n + BG_AEAD_OVERHEAD, out));
  for (size_t i = 0; i < n + BG_AEAD_OVERHEAD; i += 7) {
    sealed[i] ^= 0x01;
    assert_false(bg_aead_open(&kr, "k1", ad, strlen(ad), sealed, n + BG_AEAD_OVERHEAD, out));
    sealed[i] ^= 0x01;
  }
  assert_false(bg_aead_open(&kr, "k9", ad, strlen(ad), sealed, n + BG_AEAD_OVERHEAD, out));
  assert_false(bg_aead_open(&kr, "k1", ad, strlen(ad), sealed, 20, out));
  bg_keyring_wipe(&kr);
}

static void rotation_keeps_old_values_readable(void **state)
{
  (void)state;
  struct bg_keyring old, rotated;
  char text[256];
  snprintf(text, sizeof text, "k1 %s\n", K1);
  load(&old, text);
  unsigned char sealed[64], out[64];
  const char *kid;
  assert_true(bg_aead_seal(&old, "a", 1, "secret", 6, sealed, &kid));
  snprintf(text, sizeof text, "k2 %s\nk1 %s\n", K2, K1);
  load(&rotated, text);
  assert_int_equal(rotated.n, 2);
  assert_true(bg_aead_open(&rotated, "k1", "a", 1, sealed, 6 + BG_AEAD_OVERHEAD, out));
  assert_memory_equal(out, "secret", 6);
  unsigned char fresh[64];
  assert_true(bg_aead_seal(&rotated, "a", 1, "secret", 6, fresh, &kid));
  assert_string_equal(kid, "k2");
  assert_false(bg_aead_open(&old, "k2", "a", 1, fresh, 6 + BG_AEAD_OVERHEAD, out));
}

static void bad_key_files_are_refused(void **state)
{
  (void)state;
  char bad_kid[128], bad_hex[128];
  snprintf(bad_kid, sizeof bad_kid, "k/1 %s\n", K1);
  snprintf(bad_hex, sizeof bad_hex, "k1 zz%.62s\n", K1);
  const char *bad[] = {"", "# only a comment\n", "k1\n", "k1 0011\n", bad_kid, bad_hex};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct bg_keyring kr;
    char why[128] = "";
    char *p = key_file(bad[i]);
    assert_false(bg_keyring_load(&kr, p, why, sizeof why));
    unlink(p);
    assert_true(why[0] != '\0');
    assert_null(strstr(why, K1)); /* the reason never holds key material */
    assert_int_equal(kr.n, 0);
  }
  /* a repeated key id, and a missing file */
  struct bg_keyring kr;
  char why[128], text[256];
  snprintf(text, sizeof text, "k1 %s\nk1 %s\n", K1, K2);
  char *p = key_file(text);
  assert_false(bg_keyring_load(&kr, p, why, sizeof why));
  unlink(p);
  assert_false(bg_keyring_load(&kr, "/nonexistent/keys", why, sizeof why));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(seal_open_round_trip),
    cmocka_unit_test(rotation_keeps_old_values_readable),
    cmocka_unit_test(bad_key_files_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
