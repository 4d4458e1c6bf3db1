"""How a reader did on a site's held-back samples, and when a new model replaces what the site reads with.

A site holds back a few dozen samples, so one or two more read right is what chance gives: a model
promoted on that can read the site's new captchas worse than what it replaced. So "more right" must be
more than chance explains: a sign test on the samples only one of the two reads right. Likewise a model
that answers more must not be less precise by more than chance explains (one mistake in fifty answers is
no worse than none in thirty). A site's labels keep case, but requests may ignore it: a model that reads
case better must not read the letters worse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.site_model import SiteReading

# The most a tie (each sample read right by only one of the two equally likely to be either's) may
# explain a new model's lead and the lead still count.
CHANCE = 0.05


@dataclass
class Measured:
    """A reader's figures at the service's confidence threshold, which samples it read right (with
    case kept, and ignoring it), and whether each of its answers at the threshold was right."""

    accuracy: float
    answered: float
    precision: float | None
    right: tuple[bool, ...] = field(default=(), repr=False)
    right_ignoring_case: tuple[bool, ...] = field(default=(), repr=False)
    answers: tuple[bool, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, readings: Sequence[SiteReading], labels: list[str], threshold: float) -> Measured:
        right = tuple(reading.text == label for reading, label in zip(readings, labels))
        sure = [ok for ok, reading in zip(right, readings) if reading.confidence >= threshold]
        caseless = tuple(read.text.casefold() == label.casefold() for read, label in zip(readings, labels))
        return cls(round(sum(right) / len(labels), 4), round(len(sure) / len(labels), 4),
                   round(sum(sure) / len(sure), 4) if sure else None, right, caseless, tuple(sure))

    def figures(self) -> dict[str, Any]:
        """What a site's status shows."""
        return {"accuracy": self.accuracy, "answered": self.answered, "precision": self.precision}

    def beats(self, other: Measured) -> bool:
        """More of the same held-back samples read right than `other`, by more than chance explains; or
        at least as many, and more of them answered, not less precisely than chance explains (a site the
        generic reader already reads well gains answers, not accuracy)."""
        wins, losses = _duel(self.right, other.right)
        if _leads(wins, losses):
            return True
        return (wins >= losses and any(self.right) and self.answered > other.answered
                and mistakes_by_chance(self.answers, other.answers) > CHANCE)

    def replaces(self, other: Measured) -> bool:
        """Beats `other` (with case kept, as the labels are), and `other` does not read more of the
        samples right ignoring case (as a request with ``case: false`` is answered) by more than chance
        explains."""
        return self.beats(other) and not _leads(*_duel(other.right_ignoring_case, self.right_ignoring_case))


def _duel(mine: tuple[bool, ...], theirs: tuple[bool, ...]) -> tuple[int, int]:
    """(samples only `mine` reads right, samples only `theirs` reads right)."""
    pairs = list(zip(mine, theirs, strict=True))
    return sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)


def _leads(wins: int, losses: int) -> bool:
    """More wins than losses, by more than chance explains."""
    return wins > losses and by_chance(wins, losses) <= CHANCE


def mistakes_by_chance(mine: tuple[bool, ...], theirs: tuple[bool, ...]) -> float:
    """How often, were both readers' answers equally precise, at least as many of all the wrong answers
    would fall among `mine` as did (a one-sided Fisher exact test on (right, wrong) of each reader's
    answers): near 1 when `mine` hold no more than their share of the mistakes."""
    answers, wrong = len(mine) + len(theirs), mine.count(False) + theirs.count(False)
    drawn = math.comb(answers, len(mine))
    return sum(math.comb(wrong, k) * math.comb(answers - wrong, len(mine) - k)
               for k in range(mine.count(False), min(wrong, len(mine)) + 1)) / drawn


def by_chance(wins: int, losses: int) -> float:
    """How often a fair coin, tossed once for each sample only one reader reads right, gives at least
    `wins` to the new one (a one-sided sign test)."""
    tosses = wins + losses
    return sum(math.comb(tosses, k) for k in range(wins, tosses + 1)) / 2 ** tosses
