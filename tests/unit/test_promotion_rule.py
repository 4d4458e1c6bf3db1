"""When a newly trained site model replaces what the site reads with: more held-back samples right than
chance explains, or at least as many right and more of them answered, not less precisely than chance
explains."""

from __future__ import annotations

import pytest

from trainer.promotion import CHANCE, Measured, by_chance, mistakes_by_chance
from worker.site_model import SiteReading

HELD_BACK = 60


def measured(right: int, answered: float, precision: float | None) -> Measured:
    """A reader that read the first `right` of the held-back samples right, and answered `answered` of
    them at `precision`."""
    count = round(answered * HELD_BACK)
    wrong = round(count * (1 - (precision or 0.0)))
    return Measured(right / HELD_BACK, answered, precision, (True,) * right + (False,) * (HELD_BACK - right),
                    answers=(True,) * (count - wrong) + (False,) * wrong)


@pytest.mark.parametrize("new, now, promoted", [
    (measured(60, 0.50, 0.98), measured(50, 0.80, 1.00), True),   # ten more right wins
    (measured(52, 0.50, 1.00), measured(50, 0.50, 1.00), False),  # two more right is chance
    (measured(52, 0.60, 1.00), measured(50, 0.50, 1.00), True),   # ... so it must answer more
    (measured(50, 0.90, 1.00), measured(52, 0.50, 1.00), False),  # fewer right loses, however sure
    (measured(60, 1.00, 1.00), measured(60, 0.88, 1.00), True),   # as many right, more answered
    (measured(60, 1.00, 0.90), measured(60, 0.88, 1.00), False),  # ... but less precise (6 wrong in 60)
    (measured(60, 0.88, 1.00), measured(60, 0.88, 1.00), False),  # no better: keep what works
    (measured(0, 0.50, 0.00), measured(0, 0.00, None), False),    # nothing right is no model
])  # fmt: skip
def test_a_new_model_beats_what_the_site_has_only_when_it_reads_more_or_answers_more(
        new: Measured, now: Measured, promoted: bool) -> None:
    assert new.beats(now) is promoted


def test_the_lead_is_weighed_on_the_samples_only_one_reader_reads_right() -> None:
    same_count_other_samples = Measured(0.5, 0.5, 1.0, (False,) * 30 + (True,) * 30)
    assert not measured(35, 0.5, 1.0).beats(same_count_other_samples)  # 35 wins against 30 losses
    assert by_chance(5, 0) == 1 / 32 <= CHANCE < by_chance(4, 0) == 1 / 16
    assert by_chance(0, 0) == 1.0 and by_chance(1, 1) == 0.75


def test_one_mistake_more_among_many_more_answers_is_not_less_precise() -> None:
    """A site's trainer saw this: the model read 55 of 56 held-back samples right and answered them all,
    the generic reader read 51 right and answered 37 of them, every one right."""
    labels = [f"{i:04d}" for i in range(56)]
    model = [SiteReading(label if i else "9999", 0.99) for i, label in enumerate(labels)]
    generic = [SiteReading(label if i < 51 else "9999", 0.99 if i < 37 else 0.5)
               for i, label in enumerate(labels)]
    new, now = Measured.of(model, labels, 0.96), Measured.of(generic, labels, 0.96)
    assert (new.answered, new.precision, now.answered, now.precision) == (1.0, 0.9821, 0.6607, 1.0)
    assert by_chance(4, 0) > CHANCE  # four more right is no lead ...
    assert mistakes_by_chance(new.answers, now.answers) == pytest.approx(56 / 93)  # nor one mistake a loss
    assert new.replaces(now)
    six_wrong = (True,) * 50 + (False,) * 6
    assert mistakes_by_chance(six_wrong, now.answers) < CHANCE
    assert mistakes_by_chance(now.answers, new.answers) == 1.0


def test_the_figures_a_status_shows_leave_out_the_per_sample_record() -> None:
    assert measured(45, 0.5, 0.9).figures() == {"accuracy": 0.75, "answered": 0.5, "precision": 0.9}


def test_a_model_that_reads_case_better_but_the_letters_worse_does_not_replace_the_reader() -> None:
    labels = ["aBcD"] * 40 + ["eFgH"] * 20
    # The generic reader gets the letters of 50 right but guesses their case; the model gets 30 exactly.
    generic = [SiteReading("abcd", 0.5)] * 40 + [SiteReading("efgh", 0.5)] * 10 + [SiteReading("xxxx", 0.5)] * 10
    model = [SiteReading("aBcD", 0.5)] * 30 + [SiteReading("zzzz", 0.5)] * 30
    new, now = Measured.of(model, labels, 0.96), Measured.of(generic, labels, 0.96)
    assert new.beats(now) and not new.replaces(now)  # 30 right against 0 with case; 30 against 50 without
    level = Measured.of([SiteReading("aBcD", 0.5)] * 40 + [SiteReading("eFgH", 0.5)] * 10
                        + [SiteReading("yyyy", 0.5)] * 10, labels, 0.96)
    assert level.replaces(now)  # 50 against 50 ignoring case: the case it learned decides
