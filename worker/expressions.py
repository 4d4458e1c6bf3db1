"""Arithmetic captchas: the shapes of expression searched for, and the value of the one read.

An expression is operand, operator, operand, then optionally "=", "?" or "=?" (as in "3+5=?"). The
search holds only strings of those shapes (worker/ctc.py's per-position masks), so a reading never has
to be cleaned up into an expression afterwards; what cannot be read as one is refused.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from shared.charsets import DIGITS
from worker.charsets import Alphabet

OPERATORS = "+-×"
# "×" answers for every sign of multiplication the models know (x, X, *), merged before the search.
MATH_ALPHABET = Alphabet((*DIGITS, "+", "-", "×x*X", "=", "?"))
OPERAND_DIGITS = (1, 2)
ENDINGS = ("", "=", "?", "=?")
EXPRESSION = re.compile(r"^(\d+)([+\-×])(\d+)=?\??$")
INPUT_LENGTH = 5  # sizes the model input as for five characters, the length of a typical "a+b=?"


def _mask(pattern: str) -> np.ndarray:
    """(len(pattern), classes + 1) mask: "d" allows a digit, "o" an operator, other characters themselves."""
    symbols = MATH_ALPHABET.symbols
    mask = np.zeros((len(pattern), len(symbols) + 1), dtype=bool)
    for position, kind in enumerate(pattern):
        allowed = DIGITS if kind == "d" else OPERATORS if kind == "o" else kind
        mask[position, [symbols.index(c) + 1 for c in allowed]] = True
    return mask


SHAPES = tuple(
    _mask("d" * left + "o" + "d" * right + ending)
    for left, right, ending in itertools.product(OPERAND_DIGITS, OPERAND_DIGITS, ENDINGS)
)


def value(expression: str) -> int:
    """The integer an expression of the shapes above comes to (negative when it subtracts more)."""
    match = EXPRESSION.match(expression)
    if match is None:
        raise ValueError(f"not an arithmetic expression: {expression!r}")
    left, operator, right = int(match[1]), match[2], int(match[3])
    return left + right if operator == "+" else left - right if operator == "-" else left * right
