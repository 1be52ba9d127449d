/* Taiwan identity numbers: national ID and both resident-certificate formats.
 * Upper case only: lower case is rejected, not folded, so a stored ID has one spelling. */
#ifndef BLIGATE_TWID_H
#define BLIGATE_TWID_H
#include <stdbool.h>

enum bg_twid_kind {
  BG_TWID_INVALID = 0,
  BG_TWID_NATIONAL,     /* A123456789: second digit 1 or 2 */
  BG_TWID_RESIDENT_NEW, /* A800000014: second digit 8 or 9 (from 2021) */
  BG_TWID_RESIDENT_OLD, /* AC01234567: second letter A-D */
};

enum bg_twid_kind bg_twid_check(const char *s);
static inline bool bg_twid_valid(const char *s) { return bg_twid_check(s) != BG_TWID_INVALID; }
/* Whether s holds an identity number anywhere (ten characters that check out): free text and
 * identifiers that reach logs and the audit log must not. In upper case anywhere; in lower
 * case where it stands alone (not inside a longer run of ASCII letters and digits, as in a hex
 * digest, which would otherwise hold one now and then). */
bool bg_twid_in_text(const char *s);
/* "A12****789": first three and last three kept. out must hold 11 bytes. */
void bg_twid_mask(const char *id, char out[11]);

#endif
