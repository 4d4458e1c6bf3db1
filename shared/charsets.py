"""The characters captchas are drawn from, by name: what requests ask for and what models read."""

from __future__ import annotations

import string

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
LETTERS = UPPER + LOWER
# Our letter model's output columns after the blank, in this order (its ONNX metadata says so too).
ALNUM = DIGITS + UPPER + LOWER
