/* The canonical JSON form of an audit event: the exact bytes whose leaf hash enters the log
 * (docs/audit-log.md). Pure; the CLI's offline verifier uses the same code. */
#ifndef AUD_CANON_H
#define AUD_CANON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* UTF-8, no whitespace, object members sorted by key (bytewise), strings escaped only where
 * JSON requires (\" \\ \b \f \n \r \t, other controls as \u00xx), integers in decimal, no
 * floating-point numbers. Returns a malloc'd NUL-terminated string and its length, or NULL
 * (with *why) when j holds something without a canonical form. */
char *aud_canon(const json_t *j, size_t *len, const char **why);

#endif
