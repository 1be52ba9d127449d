"""Taiwan identity numbers (PITFALLS.md "Taiwan ID numbers"), the same rules as
shared/src/twid.c.

Forms accepted by valid_national_id():
  national ID            ^[A-Z][12][0-9]{8}$   (A123456789)
  resident, new (2021-)  ^[A-Z][89][0-9]{8}$   (A800000014)
  resident, old          ^[A-Z][A-D][0-9]{8}$  (AC01234567; the second letter counts as its
                                                letter value mod 10)
Lower case is rejected, not folded, so a stored ID has exactly one spelling.
"""

import re

# Letter values A10 B11 ... H17 I34 J18 ... N22 O35 P23 ... V29 W32 X30 Y31 Z33.
LETTER_VALUES = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}

_SHAPE = re.compile(r"^[A-Z]([12]|[89]|[A-D])[0-9]{8}$")


def _checksum_sum(letter, second_value, eight_digits):
    """Weighted sum over everything: letter (tens x1, units x9), second position x8,
    the next seven digits x7..x1, and the final check digit x1."""
    v = LETTER_VALUES[letter]
    total = v // 10 + (v % 10) * 9 + second_value * 8
    for weight, ch in zip((7, 6, 5, 4, 3, 2, 1), eight_digits[:7]):
        total += int(ch) * weight
    return total + int(eight_digits[7])


def id_kind(s):
    """Return "national", "resident_new", "resident_old", or None when s is not valid."""
    if not isinstance(s, str) or not _SHAPE.match(s):
        return None
    second = s[1]
    if second in "12":
        kind, value = "national", int(second)
    elif second in "89":
        kind, value = "resident_new", int(second)
    else:
        kind, value = "resident_old", LETTER_VALUES[second] % 10
    if _checksum_sum(s[0], value, s[2:]) % 10 != 0:
        return None
    return kind


def valid_national_id(s, allow_resident=True):
    """True when s is a valid Taiwan national ID number (or, unless allow_resident is
    False, a valid resident certificate number in either format). Upper case only."""
    kind = id_kind(s)
    if kind is None:
        return False
    return allow_resident or kind == "national"


def make_national_id(letter, gender_digit, seven_digits):
    """Build a valid ID from its first nine characters by computing the check digit.

    letter: A-Z; gender_digit: 1 or 2 (national), 8 or 9 (new resident), or A-D (old
    resident); seven_digits: a string (or int, zero-padded) of seven digits.
    make_national_id("A", 1, "2345678") == "A123456789".
    """
    letter = str(letter)
    second = str(gender_digit)
    if isinstance(seven_digits, int):
        seven_digits = "%07d" % seven_digits
    if letter not in LETTER_VALUES:
        raise ValueError("first character must be an upper-case letter A-Z")
    if not (len(second) == 1 and second in "1289ABCD"):
        raise ValueError("second character must be 1, 2, 8, 9 or A-D")
    if not (len(seven_digits) == 7 and seven_digits.isdigit()):
        raise ValueError("seven_digits must be exactly seven digits")
    value = LETTER_VALUES[second] % 10 if second.isalpha() else int(second)
    partial = _checksum_sum(letter, value, seven_digits + "0")
    check = (10 - partial % 10) % 10
    result = letter + second + seven_digits + str(check)
    assert id_kind(result) is not None
    return result


def mask_national_id(s):
    """"A123456789" -> "A12****789" (first three and last three kept), as the services do."""
    if not isinstance(s, str) or len(s) != 10:
        return "*" * 10
    return s[:3] + "****" + s[7:]
