/* Small helpers (util.h). */
#include "bligate/util.h"
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The kernel's CSPRNG (the one OpenSSL seeds from), not RAND_bytes: OpenSSL 3.0's RAND_bytes
 * takes a process-wide write lock (RAND_get_rand_method's) on every call, and with one thread per
 * connection the ids of every request and event queued on it — 3 % of the proxy's CPU in
 * bench/proxy/run, spent spinning and in futex wake-ups. */
bool bg_random(void *buf, size_t n)
{
  unsigned char *p = buf;
  while (n) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += got;
    n -= (size_t)got;
  }
  return true;
}

void bg_uuid_v4(char out[BG_UUID_LEN])
{
  unsigned char b[16];
  if (!bg_random(b, sizeof b))
    abort(); /* no randomness: nothing we issue could be trusted */
  bg_uuid_v4_format(b, out);
}

void bg_uuid_v4_format(unsigned char b[16], char out[BG_UUID_LEN])
{
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  static const char hx[] = "0123456789abcdef";
  int j = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[j++] = '-';
    out[j++] = hx[b[i] >> 4];
    out[j++] = hx[b[i] & 15];
  }
  out[j] = '\0';
}

bool bg_uuid_valid(const char *s)
{
  if (!s || strlen(s) != 36)
    return false;
  for (int i = 0; i < 36; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

static char *b64_enc(const void *data, size_t n, bool url)
{
  static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char urls[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *a = url ? urls : std;
  const unsigned char *p = data;
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out)
    return NULL;
  size_t j = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    out[j++] = a[v >> 18];
    out[j++] = a[(v >> 12) & 63];
    out[j++] = a[(v >> 6) & 63];
    out[j++] = a[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
    out[j++] = a[v >> 18];
    out[j++] = a[(v >> 12) & 63];
    if (i + 1 < n)
      out[j++] = a[(v >> 6) & 63];
    else if (!url)
      out[j++] = '=';
    if (!url)
      out[j++] = '=';
  }
  out[j] = '\0';
  return out;
}

char *bg_b64_encode(const void *data, size_t n) { return b64_enc(data, n, false); }
char *bg_b64url_encode(const void *data, size_t n) { return b64_enc(data, n, true); }

static int b64_val(char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

unsigned char *bg_b64_decode(const char *s, size_t *out_len)
{
  size_t n = strlen(s);
  unsigned char *out = malloc(n / 4 * 3 + 4);
  if (!out)
    return NULL;
  unsigned acc = 0;
  int bits = 0, pad = 0;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
      continue;
    if (c == '=') {
      pad++;
      continue;
    }
    int v = b64_val(c);
    if (v < 0 || pad) {
      free(out);
      return NULL;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* A lone trailing symbol cannot encode a byte; leftover bits must be zero and padding, if
   * any, must complete the last quantum: one encoding per byte string, so a signature cannot
   * be spelt two ways. */
  size_t symbols = j * 4 / 3 + (bits ? 1 : 0);
  if (bits >= 6 || pad > 2 || acc != 0 || (pad && (symbols + (size_t)pad) % 4 != 0)) {
    free(out);
    return NULL;
  }
  out[j] = '\0';
  *out_len = j;
  return out;
}

void bg_hex(const void *data, size_t n, char *out)
{
  static const char hx[] = "0123456789abcdef";
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[p[i] >> 4];
    out[2 * i + 1] = hx[p[i] & 15];
  }
  out[2 * n] = '\0';
}

void bg_sha256(const void *data, size_t n, unsigned char out[32]) { SHA256(data, n, out); }

void bg_sha256_hex(const void *data, size_t n, char out[65])
{
  unsigned char md[32];
  SHA256(data, n, md);
  bg_hex(md, 32, out);
}

bool bg_fmt(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n >= 0 && (size_t)n < size;
}

bool bg_ct_eq(const void *a, size_t alen, const void *b, size_t blen)
{
  return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

bool bg_parse_long(const char *s, long min, long max, long *out)
{
  /* digits with an optional minus: no spaces, no plus sign */
  if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
    return false;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}
