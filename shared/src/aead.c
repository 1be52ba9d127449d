/* AES-256-GCM with a key ring (aead.h). */
#include "bligate/aead.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool kid_ok(const char *s, size_t n)
{
  if (n == 0 || n >= BG_AEAD_KID_LEN)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_' || s[i] == '-'))
      return false;
  return true;
}

bool bg_keyring_load(struct bg_keyring *kr, const char *path, char *why, size_t whylen)
{
  memset(kr, 0, sizeof *kr);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, whylen, "cannot read %s", path);
    return false;
  }
  char line[256];
  int lineno = 0;
  bool ok = true;
  while (ok && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    char *sp = strchr(line, ' ');
    size_t klen = sp ? (size_t)(sp - line) : 0;
    const char *hex = sp ? sp + 1 : "";
    if (!sp || !kid_ok(line, klen) || strlen(hex) != 64) {
      snprintf(why, whylen, "line %d: want \"<key id> <64 hex digits>\"", lineno);
      ok = false;
    } else if (kr->n == BG_AEAD_MAX_KEYS) {
      snprintf(why, whylen, "more than %d keys", BG_AEAD_MAX_KEYS);
      ok = false;
    } else {
      for (size_t i = 0; i < kr->n && ok; i++)
        if (!strncmp(kr->keys[i].kid, line, klen) && kr->keys[i].kid[klen] == '\0') {
          snprintf(why, whylen, "line %d: key id repeated", lineno);
          ok = false;
        }
      for (size_t i = 0; i < 32 && ok; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
          snprintf(why, whylen, "line %d: the key is not hex", lineno);
          ok = false;
        } else {
          kr->keys[kr->n].key[i] = (unsigned char)(hi * 16 + lo);
        }
      }
      if (ok) {
        memcpy(kr->keys[kr->n].kid, line, klen);
        kr->n++;
      }
    }
    OPENSSL_cleanse(line, sizeof line);
  }
  fclose(f);
  if (ok && kr->n == 0) {
    snprintf(why, whylen, "%s holds no key", path);
    ok = false;
  }
  if (!ok)
    bg_keyring_wipe(kr);
  return ok;
}

void bg_keyring_wipe(struct bg_keyring *kr) { OPENSSL_cleanse(kr, sizeof *kr); }

bool bg_aead_seal(const struct bg_keyring *kr, const void *aad, size_t aadlen, const void *pt, size_t ptlen,
                  unsigned char *out, const char **kid)
{
  if (kr->n == 0 || ptlen > (size_t)1 << 30 || aadlen > (size_t)1 << 20 || !bg_random(out, 12))
    return false;
  EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0;
  bool ok = cx && EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, kr->keys[0].key, out) == 1 &&
            EVP_EncryptUpdate(cx, NULL, &len, aad, (int)aadlen) == 1 &&
            EVP_EncryptUpdate(cx, out + 12, &len, pt, (int)ptlen) == 1 &&
            EVP_EncryptFinal_ex(cx, out + 12 + len, &fin) == 1 &&
            EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + ptlen) == 1;
  EVP_CIPHER_CTX_free(cx);
  *kid = kr->keys[0].kid;
  return ok && (size_t)len + (size_t)fin == ptlen;
}

bool bg_aead_open(const struct bg_keyring *kr, const char *kid, const void *aad, size_t aadlen,
                  const unsigned char *sealed, size_t len, unsigned char *out)
{
  if (len < BG_AEAD_OVERHEAD || len - BG_AEAD_OVERHEAD > (size_t)1 << 30 || aadlen > (size_t)1 << 20)
    return false;
  const unsigned char *key = NULL;
  for (size_t i = 0; i < kr->n && !key; i++)
    if (!strcmp(kr->keys[i].kid, kid))
      key = kr->keys[i].key;
  if (!key)
    return false;
  size_t ctlen = len - BG_AEAD_OVERHEAD;
  EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
  int n = 0, fin = 0;
  bool ok = cx && EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, sealed) == 1 &&
            EVP_DecryptUpdate(cx, NULL, &n, aad, (int)aadlen) == 1 &&
            EVP_DecryptUpdate(cx, out, &n, sealed + 12, (int)ctlen) == 1 &&
            EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(sealed + 12 + ctlen)) == 1 &&
            EVP_DecryptFinal_ex(cx, out + n, &fin) == 1;
  EVP_CIPHER_CTX_free(cx);
  if (!ok)
    OPENSSL_cleanse(out, ctlen);
  return ok;
}
