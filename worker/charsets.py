"""What a reading searches: the classes of characters a model's output is narrowed to.

A class is one or more characters whose probabilities are summed (a letter's upper and lower case when
the comparison ignores case, or the signs that all mean "times"); its first character is what answers.
ddddocr's models output about 8,000 characters: their columns for the ones we read are pinned here so
that workers never import ddddocr (it loads OpenCV); tests/unit/test_model_columns.py checks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.charsets import ALNUM, DIGITS

# Every character a request may ask for, then the signs of arithmetic ("×" also stands for x and *).
READABLE = ALNUM
SIGNS = "+-*×=?"
PINNED = READABLE + SIGNS
# ddddocr 1.6.1's CharsetManager: the output column of each character of PINNED (column 0 is the blank).
CHARACTER_COLUMNS = {
    "common_old": (
        6749, 4410, 78, 7721, 5806, 6977, 5961, 409, 6979, 2879, 4771, 2203, 761, 687, 2525, 357, 4488, 5554,
        1614, 1583, 4666, 6672, 747, 6216, 5418, 3930, 6601, 7262, 6386, 5046, 7284, 5734, 4810, 5225, 821,
        3963, 7198, 1066, 1107, 5726, 6257, 1638, 8119, 8196, 2041, 6185, 3072, 2089, 4617, 4050, 6939, 5027,
        7405, 806, 3466, 7723, 2663, 1769, 7136, 6736, 6612, 4730, 6178, 462, 4569, 5378, 5260, 5807,
    ),
    "common": (
        4733, 4018, 2851, 309, 3606, 5223, 13, 6794, 4919, 4725, 5461, 1204, 7961, 3128, 2547, 311, 598, 1965,
        6554, 7216, 2113, 210, 7844, 901, 3157, 2341, 1849, 5629, 5855, 897, 7712, 6887, 2185, 521, 297, 2621,
        7266, 4393, 1151, 6810, 5428, 55, 5690, 7412, 782, 4730, 5737, 2457, 320, 1503, 4429, 209, 7576, 2376,
        2714, 4102, 4588, 1073, 306, 689, 7877, 3073, 6470, 3332, 7502, 6732, 235, 1581,
    ),
}


@dataclass(frozen=True)
class Alphabet:
    """The classes a reading chooses from, in output order after the blank."""

    classes: tuple[str, ...]

    @property
    def symbols(self) -> str:
        """Each class's answering character: the text of label i is symbols[i - 1]."""
        return "".join(members[0] for members in self.classes)

    def labels(self, text: str) -> list[int]:
        return [self.symbols.index(c) + 1 for c in text]

    def is_digits(self) -> bool:
        return self.symbols == DIGITS

    def case_guesses(self, text: str) -> int:
        """Letters of `text` whose other case is a class of its own too: the generic reader's models
        barely tell the two apart (:data:`CASE_GUESS`)."""
        symbols = self.symbols
        return sum(char in symbols and char.swapcase() in symbols and char.isalpha() for char in text)

    def keeps_case(self) -> bool:
        """Whether an answer tells upper from lower case (no class holds a letter's two cases)."""
        return all(len(members) == 1 for members in self.classes)

    def columns(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """For a ddddocr model: the columns to keep (blank first) and, for each, its class (0 = blank)."""
        pinned = CHARACTER_COLUMNS[model]
        columns, owners = [0], [0]
        for index, members in enumerate(self.classes, start=1):
            for member in members:
                columns.append(pinned[PINNED.index(member)])
                owners.append(index)
        return np.array(columns), np.array(owners)


# The chance that the generic reader has a letter's case right when the characters asked for hold both:
# a coin flip. Its sure answers with case kept were mostly wrong on the corpus' letter styles that draw
# both cases (docs/site-learning.md, "Letters with case kept"): its probabilities of case are no evidence.
CASE_GUESS = 0.5


def alphabet(characters: str, case: bool) -> Alphabet:
    """The classes of `characters` (in their order): with `case` False, a letter's other case joins its
    class, so a model torn between "O" and "o" is not torn at all (each answers in the case given first)."""
    classes: list[str] = []
    seen: set[str] = set()
    for char in characters:
        if char in seen:
            continue
        members = char if case or not char.isalpha() else char + char.swapcase()
        seen.update(members)
        classes.append(members)
    return Alphabet(tuple(classes))


DIGIT_ALPHABET = alphabet(DIGITS, case=True)
