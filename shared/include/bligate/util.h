/* Small helpers: base64, hex, SHA-256, random, UUIDs, bounded strings. */
#ifndef BLIGATE_UTIL_H
#define BLIGATE_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_UUID_LEN 37 /* 36 + NUL */

bool bg_random(void *buf, size_t n);
void bg_uuid_v4(char out[BG_UUID_LEN]);
/* 16 bytes as a version-4 UUID's text (the version and variant bits set in b). */
void bg_uuid_v4_format(unsigned char b[16], char out[BG_UUID_LEN]);
bool bg_uuid_valid(const char *s);

/* Encoders return a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *bg_b64_encode(const void *data, size_t n);
char *bg_b64url_encode(const void *data, size_t n);
/* Decoders accept both alphabets, with or without padding, ignoring whitespace (PEM bodies).
 * Return malloc'd bytes (NUL-terminated for convenience) or NULL when malformed. */
unsigned char *bg_b64_decode(const char *s, size_t *out_len);
void bg_hex(const void *data, size_t n, char *out /* 2n+1 */);
void bg_sha256(const void *data, size_t n, unsigned char out[32]);
void bg_sha256_hex(const void *data, size_t n, char out[65]);

/* snprintf that reports truncation as failure. */
bool bg_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Constant-time equality of two byte strings (lengths are not secret). */
bool bg_ct_eq(const void *a, size_t alen, const void *b, size_t blen);
/* strtol with full-string and range checks. */
bool bg_parse_long(const char *s, long min, long max, long *out);

#endif
