"""The characters captchas are drawn from, by name: what requests ask for and what models read."""

from __future__ import annotations

import string

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
LETTERS = UPPER + LOWER
# Our letter model's output columns after the blank, in this order (its ONNX metadata says so too).
ALNUM = DIGITS + UPPER + LOWER

# A request's `charset`: one of these names, or the allowed characters themselves. Lower case comes
# first so that a reading which ignores case answers in lower case ("upper" answers in upper case).
NAMED = {"digits": DIGITS, "letters": LOWER + UPPER, "alnum": DIGITS + LOWER + UPPER, "lower": LOWER,
         "upper": UPPER}  # fmt: skip
MAX_EXPLICIT = len(ALNUM)


def characters(charset: str) -> str:
    """The characters a `charset` allows: a name of :data:`NAMED`, else the string itself, which must
    hold only digits and ASCII letters (what the models are pinned to read)."""
    if charset in NAMED:
        return NAMED[charset]
    stray = sorted(set(charset) - set(ALNUM))
    if not charset or stray:
        raise ValueError(f"charset is one of {sorted(NAMED)} or a string of digits and ASCII letters"
                         + (f" (not {''.join(stray)!r})" if stray else ""))
    return charset
