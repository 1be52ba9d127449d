/* Proves bg_twid_check accepts exactly the Taiwan IDs whose check digit is right (checked against an
 * independent implementation of PITFALLS.md's rule), reports their kind, and bg_twid_mask hides the middle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "bligate/twid.h"

static void valid_ids_and_kinds(void **state)
{
  assert_int_equal(bg_twid_check("A123456789"), BG_TWID_NATIONAL);
  assert_int_equal(bg_twid_check("A223456781"), BG_TWID_NATIONAL);
  assert_int_equal(bg_twid_check("B123456780"), BG_TWID_NATIONAL);
  assert_int_equal(bg_twid_check("A800000014"), BG_TWID_RESIDENT_NEW);
  assert_int_equal(bg_twid_check("A900000016"), BG_TWID_RESIDENT_NEW);
  assert_int_equal(bg_twid_check("AC01234567"), BG_TWID_RESIDENT_OLD);
  assert_true(bg_twid_valid("A123456789"));
  assert_true(bg_twid_valid("AC01234567"));
}

static void invalid_ids(void **state)
{
  static const char *const bad[] = {
    "A123456788",  /* wrong check digit */
    "A323456789",  /* second digit 3 is no kind */
    "A800000015",  /* resident, wrong check digit */
    "a123456789",  /* lower case is rejected by design, not folded */
    "A12345678",   /* short */
    "A1234567890", /* long */
    "",
    "A12345678X",  /* non-digit check digit */
    "1123456789",  /* no letter */
    "AE01234567",  /* old resident second letter must be A-D */
    "Ac01234567",  /* lower-case second letter */
    "A1234 6789",
    "A123456789 ",
    " A123456789",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (bg_twid_check(bad[i]) != BG_TWID_INVALID)
      fail_msg("accepted invalid ID \"%s\"", bad[i]);
    assert_false(bg_twid_valid(bad[i]));
  }
  assert_int_equal(bg_twid_check(NULL), BG_TWID_INVALID);
  assert_false(bg_twid_valid(NULL));
  /* an embedded NUL shortens the string: "A12345678" + NUL + "9" is 9 characters */
  assert_int_equal(bg_twid_check("A12345678\0" "9"), BG_TWID_INVALID);
}

static void mask(void **state)
{
  char out[11];
  bg_twid_mask("A123456789", out);
  assert_string_equal(out, "A12****789");
  bg_twid_mask("AC01234567", out);
  assert_string_equal(out, "AC0****567");

  static const char *const bad[] = {"", "A12345678", "A1234567890", "short"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(out, 'x', sizeof out);
    bg_twid_mask(bad[i], out);
    assert_string_equal(out, "**********");
  }
  memset(out, 'x', sizeof out);
  bg_twid_mask(NULL, out);
  assert_string_equal(out, "**********");
}

/* ---- an independent implementation, written from PITFALLS.md "Taiwan ID numbers" ---- */

/* "A10 B11 ... Z33" as in the document, parsed rather than copied into a table. */
static const char letter_doc[] = "A10 B11 C12 D13 E14 F15 G16 H17 I34 J18 K19 L20 M21 N22 O35 P23 Q24 R25 S26 "
                                 "T27 U28 V29 W32 X30 Y31 Z33";

static int ref_letter_value(char c)
{
  for (const char *p = letter_doc; *p; p += 4)
    if (p[0] == c)
      return (p[1] - '0') * 10 + (p[2] - '0');
  return -1;
}

/* The expected kind of a 10-character candidate, by the document's rule. */
static enum bg_twid_kind ref_check(const char id[10])
{
  int lv = ref_letter_value(id[0]);
  if (lv < 0)
    return BG_TWID_INVALID;
  enum bg_twid_kind kind;
  int second;
  if (id[1] == '1' || id[1] == '2') {
    kind = BG_TWID_NATIONAL;
    second = id[1] - '0';
  } else if (id[1] == '8' || id[1] == '9') {
    kind = BG_TWID_RESIDENT_NEW;
    second = id[1] - '0';
  } else if (id[1] >= 'A' && id[1] <= 'D') {
    kind = BG_TWID_RESIDENT_OLD;
    second = ref_letter_value(id[1]) % 10;
  } else {
    return BG_TWID_INVALID;
  }
  /* digits: tens, units of the letter, then the nine characters after it */
  int d[11] = {lv / 10, lv % 10, second};
  for (int i = 2; i < 10; i++) {
    if (id[i] < '0' || id[i] > '9')
      return BG_TWID_INVALID;
    d[i + 1] = id[i] - '0';
  }
  static const int weight[11] = {1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1};
  int sum = 0;
  for (int i = 0; i < 11; i++)
    sum += d[i] * weight[i];
  return sum % 10 == 0 ? kind : BG_TWID_INVALID;
}

static void reference_agrees_on_the_documented_examples(void **state)
{
  /* the reference itself must reproduce the document's examples, or the loop below proves nothing */
  assert_int_equal(ref_check("A123456789"), BG_TWID_NATIONAL);
  assert_int_equal(ref_check("A223456781"), BG_TWID_NATIONAL);
  assert_int_equal(ref_check("B123456780"), BG_TWID_NATIONAL);
  assert_int_equal(ref_check("A800000014"), BG_TWID_RESIDENT_NEW);
  assert_int_equal(ref_check("A900000016"), BG_TWID_RESIDENT_NEW);
  assert_int_equal(ref_check("AC01234567"), BG_TWID_RESIDENT_OLD);
  assert_int_equal(ref_check("A123456788"), BG_TWID_INVALID);
  assert_int_equal(ref_check("A323456789"), BG_TWID_INVALID);
  assert_int_equal(ref_check("A800000015"), BG_TWID_INVALID);
}

static void every_letter_every_check_digit(void **state)
{
  static const char seconds[] = "1289ABCD";
  static const char *const bodies[] = {"0000000", "1234567", "9876543", "5050505", "9999999"};
  int valid_seen = 0;
  for (char letter = 'A'; letter <= 'Z'; letter++)
    for (const char *sc = seconds; *sc; sc++)
      for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        int valid_here = 0;
        for (char last = '0'; last <= '9'; last++) {
          char id[11];
          snprintf(id, sizeof id, "%c%c%s%c", letter, *sc, bodies[b], last);
          enum bg_twid_kind want = ref_check(id), got = bg_twid_check(id);
          if (want != got)
            fail_msg("%s: expected kind %d, got %d", id, want, got);
          valid_here += want != BG_TWID_INVALID;
        }
        /* exactly one check digit completes each body */
        assert_int_equal(valid_here, 1);
        valid_seen++;
      }
  assert_int_equal(valid_seen, 26 * 8 * 5);
}

/* Whatever the last digit, a first character outside A-Z or a second character outside 1289ABCD is
 * never valid (covers every byte, including lower case and high-bit bytes). */
static void every_other_first_and_second_character_refused(void **state)
{
  for (int c = 1; c < 256; c++) {
    for (char last = '0'; last <= '9'; last++) {
      char id[11];
      if (!(c >= 'A' && c <= 'Z')) {
        snprintf(id, sizeof id, "%c12345678%c", c, last);
        if (bg_twid_check(id) != BG_TWID_INVALID)
          fail_msg("first byte 0x%02x accepted", c);
      }
      if (!strchr("1289ABCD", c)) {
        snprintf(id, sizeof id, "A%c2345678%c", c, last);
        if (bg_twid_check(id) != BG_TWID_INVALID)
          fail_msg("second byte 0x%02x accepted", c);
      }
    }
  }
}

/* bg_twid_in_text: an ID number in free text, in either case; lower-case hex is not taken for
 * one (A123456789 checks out; a123456789 is it in lower case). */
static void numbers_in_text(void **state)
{
  (void)state;
  assert_true(bg_twid_in_text("A123456789"));
  assert_true(bg_twid_in_text("case xA123456789y"));          /* upper case: anywhere */
  assert_true(bg_twid_in_text("a123456789"));
  assert_true(bg_twid_in_text("\xe5\x80\x8b\xe6\xa1\x88" "a123456789")); /* "個案a123456789" */
  assert_true(bg_twid_in_text("ref: a123456789, see"));
  assert_true(bg_twid_in_text("x-a123456789-y"));
  assert_false(bg_twid_in_text("a123456780"));                /* the check digit is wrong */
  assert_false(bg_twid_in_text("fa123456789"));               /* inside a longer run: hex */
  assert_false(bg_twid_in_text("a1234567890"));
  assert_false(bg_twid_in_text("3f1ca123456789e0d7b5c2aa9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6"));
  assert_false(bg_twid_in_text("00000000-0000-4000-8000-0a1234567890"));
  assert_false(bg_twid_in_text(NULL));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(valid_ids_and_kinds),
    cmocka_unit_test(invalid_ids),
    cmocka_unit_test(mask),
    cmocka_unit_test(reference_agrees_on_the_documented_examples),
    cmocka_unit_test(every_letter_every_check_digit),
    cmocka_unit_test(every_other_first_and_second_character_refused),
    cmocka_unit_test(numbers_in_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
