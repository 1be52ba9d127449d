/* Subjects' national IDs at rest: AES-256-GCM, the ciphertext bound to the ID's keyed HMAC
 * (as associated data), so a ciphertext moved to another row does not open. Stored as
 * "v1.<key id>.<base64url(nonce | ciphertext | tag)>".
 *
 * The key is BLIGATE_SUBJECT_KEY_FILE (32 bytes as 64 hex digits) when set; otherwise it is
 * derived from the national-ID HMAC key (BLIGATE_ID_HMAC_KEY_FILE) as
 * HMAC-SHA256(hmac key, "bligate/workflow/subject-id-encryption/v1"), a key no other service
 * derives or uses. */
#include "wf.h"
#include "bligate/config.h"
#include "bligate/util.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char key[32];
static char kid[9];

static bool unhex(const char *hex, unsigned char *out, size_t max, size_t *n)
{
  size_t len = strlen(hex);
  if (len % 2 || len / 2 > max || len == 0)
    return false;
  for (size_t i = 0; i < len / 2; i++) {
    unsigned v = 0;
    for (int k = 0; k < 2; k++) {
      char c = hex[2 * i + (size_t)k];
      unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
      if (d > 15)
        return false;
      v = v * 16 + d;
    }
    out[i] = (unsigned char)v;
  }
  *n = len / 2;
  return true;
}

static bool load_hex_file(const char *var, unsigned char *out, size_t max, size_t *n)
{
  size_t flen;
  char *hex = bg_cfg_file(var, &flen);
  hex[strcspn(hex, "\r\n")] = '\0';
  bool ok = unhex(hex, out, max, n);
  OPENSSL_cleanse(hex, flen);
  free(hex);
  return ok;
}

void wf_crypt_init(void)
{
  size_t n = 0;
  if (*bg_cfg_str("BLIGATE_SUBJECT_KEY_FILE", "")) {
    if (!load_hex_file("BLIGATE_SUBJECT_KEY_FILE", key, sizeof key, &n) || n != sizeof key) {
      fprintf(stderr, "configuration error: BLIGATE_SUBJECT_KEY_FILE must hold 32 bytes in hex\n");
      exit(2);
    }
  } else {
    unsigned char hk[64];
    static const char label[] = "bligate/workflow/subject-id-encryption/v1";
    unsigned int mdlen = 0;
    if (!load_hex_file("BLIGATE_ID_HMAC_KEY_FILE", hk, sizeof hk, &n) || n < 16 ||
        !HMAC(EVP_sha256(), hk, (int)n, (const unsigned char *)label, sizeof label - 1, key, &mdlen) ||
        mdlen != sizeof key) {
      fprintf(stderr, "configuration error: BLIGATE_ID_HMAC_KEY_FILE must hold 16 to 64 bytes in hex\n");
      exit(2);
    }
    OPENSSL_cleanse(hk, sizeof hk);
  }
  char h[65];
  bg_sha256_hex(key, sizeof key, h);
  memcpy(kid, h, 8);
  kid[8] = '\0';
}

char *wf_seal(const char *national_id, const char *id_hmac)
{
  unsigned char buf[12 + 64 + 16];
  size_t pn = strlen(national_id);
  if (pn > 64 || !bg_random(buf, 12))
    return NULL;
  EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0;
  bool ok = cx && EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
            EVP_EncryptUpdate(cx, NULL, &len, (const unsigned char *)id_hmac, (int)strlen(id_hmac)) == 1 &&
            EVP_EncryptUpdate(cx, buf + 12, &len, (const unsigned char *)national_id, (int)pn) == 1 &&
            EVP_EncryptFinal_ex(cx, buf + 12 + len, &fin) == 1 &&
            EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + len + fin) == 1;
  EVP_CIPHER_CTX_free(cx);
  char *b64 = ok ? bg_b64url_encode(buf, 12 + (size_t)len + (size_t)fin + 16) : NULL;
  OPENSSL_cleanse(buf, sizeof buf);
  if (!b64)
    return NULL;
  size_t outlen = strlen(b64) + 16;
  char *out = malloc(outlen);
  if (out && !bg_fmt(out, outlen, "v1.%s.%s", kid, b64)) {
    free(out);
    out = NULL;
  }
  free(b64);
  return out;
}

char *wf_open(const char *sealed, const char *id_hmac)
{
  if (strncmp(sealed, "v1.", 3) != 0 || strncmp(sealed + 3, kid, 8) != 0 || sealed[11] != '.')
    return NULL;
  size_t n;
  unsigned char *raw = bg_b64_decode(sealed + 12, &n);
  if (!raw || n < 12 + 16 + 1 || n > 12 + 64 + 16) {
    free(raw);
    return NULL;
  }
  size_t ctlen = n - 12 - 16;
  char *out = calloc(1, ctlen + 1);
  EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
  int len = 0, fin = 0;
  bool ok = out && cx && EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
            EVP_DecryptUpdate(cx, NULL, &len, (const unsigned char *)id_hmac, (int)strlen(id_hmac)) == 1 &&
            EVP_DecryptUpdate(cx, (unsigned char *)out, &len, raw + 12, (int)ctlen) == 1 &&
            EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, 16, raw + 12 + ctlen) == 1 &&
            EVP_DecryptFinal_ex(cx, (unsigned char *)out + len, &fin) == 1;
  EVP_CIPHER_CTX_free(cx);
  OPENSSL_cleanse(raw, n);
  free(raw);
  if (!ok && out) {
    OPENSSL_cleanse(out, ctlen);
    free(out);
    out = NULL;
  }
  return out;
}
