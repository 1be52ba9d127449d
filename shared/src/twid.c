/* Taiwan ID validation (PITFALLS.md "Taiwan ID numbers"). */
#include "bligate/twid.h"
#include <string.h>

/* Letter values A10 B11 ... Z33, irregular for I, O, W, X, Y, Z. */
static const int letter_value[26] = {10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
                                     22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33};

enum bg_twid_kind bg_twid_check(const char *s)
{
  if (!s || strlen(s) != 10 || s[0] < 'A' || s[0] > 'Z')
    return BG_TWID_INVALID;
  for (int i = 2; i < 10; i++)
    if (s[i] < '0' || s[i] > '9')
      return BG_TWID_INVALID;
  enum bg_twid_kind kind;
  int second;
  if (s[1] == '1' || s[1] == '2') {
    kind = BG_TWID_NATIONAL;
    second = s[1] - '0';
  } else if (s[1] == '8' || s[1] == '9') {
    kind = BG_TWID_RESIDENT_NEW;
    second = s[1] - '0';
  } else if (s[1] >= 'A' && s[1] <= 'D') {
    /* old resident certificates: the second letter counts as its letter value mod 10 */
    kind = BG_TWID_RESIDENT_OLD;
    second = letter_value[s[1] - 'A'] % 10;
  } else {
    return BG_TWID_INVALID;
  }
  int v = letter_value[s[0] - 'A'];
  int sum = (v / 10) + (v % 10) * 9 + second * 8;
  static const int w[] = {7, 6, 5, 4, 3, 2, 1};
  for (int i = 0; i < 7; i++)
    sum += (s[2 + i] - '0') * w[i];
  sum += s[9] - '0';
  return sum % 10 == 0 ? kind : BG_TWID_INVALID;
}

void bg_twid_mask(const char *id, char out[11])
{
  size_t n = id ? strlen(id) : 0;
  if (n != 10) {
    memcpy(out, "**********", 11);
    return;
  }
  memcpy(out, id, 3);
  memcpy(out + 3, "****", 4);
  memcpy(out + 7, id + 7, 3);
  out[10] = '\0';
}

static bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

bool bg_twid_in_text(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  for (size_t i = 0; i + 10 <= n; i++) {
    bool upper = s[i] >= 'A' && s[i] <= 'Z', lower = s[i] >= 'a' && s[i] <= 'z';
    if (!upper && !lower)
      continue;
    /* Written in lower case ("個案a123456789") it is the number all the same; but lower-case
     * hex (digests, HMACs, UUIDs) holds such a run now and then, always inside a longer run of
     * letters and digits: a lower-case one counts when it stands alone. */
    if (lower && ((i > 0 && ascii_alnum(s[i - 1])) || (i + 10 < n && ascii_alnum(s[i + 10]))))
      continue;
    char w[11];
    memcpy(w, s + i, 10);
    w[0] = ascii_upper(w[0]);
    w[1] = ascii_upper(w[1]); /* an old resident certificate's second letter */
    w[10] = '\0';
    if (bg_twid_valid(w))
      return true;
  }
  return false;
}
