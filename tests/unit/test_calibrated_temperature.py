"""A site model's temperature is chosen on its held-back samples so that its answers at the service's
threshold (alone, or confirmed by the generic reader as the workers serve them) are precise enough while
answering the most of them."""

from __future__ import annotations

import numpy as np

from tests.fixed_site_model import fixed_model, frame
from trainer.site_training import TEMPERATURES, calibrated_temperature
from worker.site_model import SiteModelReader, SiteReading

THRESHOLD = 0.96


def _output(first: str, second: str, probability: float) -> np.ndarray:
    """Two frames, each sure of one digit with `probability` and of the other digit otherwise."""
    return np.stack([frame(**{f"_{first}": probability, f"_{second}": 1 - probability}),
                     frame(**{f"_{second}": probability, f"_{first}": 1 - probability})]).astype(np.float64)


READER = SiteModelReader(*fixed_model([frame(_1=1.0), frame(_2=1.0)], "12"))
RIGHT = [_output("1", "2", 0.9)] * 9  # read "12" at 0.81, and labelled so
WRONG = [_output("1", "2", 0.8)]      # read "12" at 0.64, labelled "21"
LABELS = ["12"] * 9 + ["21"]
SILENT = [SiteReading("", 0.0)] * 10  # a generic reader that never answers


def test_the_temperature_answers_the_right_ones_and_refuses_the_wrong_one() -> None:
    temperature = calibrated_temperature(READER, RIGHT + WRONG, SILENT, LABELS, THRESHOLD, 0.99)
    # Sharper than 0.565 lifts 0.9 per digit over 0.98 (0.96 a string); sharper than 0.356, 0.8 too.
    assert 0.356 < temperature < 0.565
    confidences = [READER.decode(output, temperature=temperature).confidence for output in RIGHT + WRONG]
    assert min(confidences[:9]) >= THRESHOLD > confidences[9]


def test_all_right_answers_everything_and_sure_mistakes_get_the_most_cautious() -> None:
    assert calibrated_temperature(READER, RIGHT, SILENT[:9], ["12"] * 9, THRESHOLD, 0.99) == TEMPERATURES[0]
    certain = [_output("1", "2", 1.0)] * 3  # wrong at any temperature
    assert calibrated_temperature(READER, certain, SILENT[:3], ["21"] * 3, THRESHOLD, 0.99) == TEMPERATURES[-1]


def test_a_mistake_the_generic_reader_confirms_makes_the_model_more_cautious() -> None:
    agreeing = SILENT[:9] + [SiteReading("12", 0.9)]  # the generic reader errs as the model does
    temperature = calibrated_temperature(READER, RIGHT + WRONG, agreeing, LABELS, THRESHOLD, 0.99)
    # Wherever the right ones are answered alone, the wrong one reads over 0.6 and 0.9 confirms it.
    assert temperature > 0.565
    wrong = READER.decode(WRONG[0], temperature=temperature).confidence
    assert 1 - (1 - wrong) * (1 - 0.9) < THRESHOLD


def test_the_generic_readers_own_mistakes_do_not_count_against_the_model() -> None:
    elsewhere = [SiteReading("99", 0.99)] * 10  # answered instead of every unsure reading, wrongly
    temperature = calibrated_temperature(READER, RIGHT + WRONG, elsewhere, LABELS, THRESHOLD, 0.99)
    assert 0.356 < temperature < 0.565


def test_too_few_answers_prove_no_precision() -> None:
    assert calibrated_temperature(READER, RIGHT, SILENT[:9], ["12"] * 9, THRESHOLD, 0.99,
                                  min_answers=9) == TEMPERATURES[0]
    temperature = calibrated_temperature(READER, RIGHT, SILENT[:9], ["12"] * 9, THRESHOLD, 0.99, min_answers=10)
    assert READER.decode(RIGHT[0], temperature=temperature).confidence < THRESHOLD


def test_the_generic_readers_sure_answers_the_model_agrees_with_do_not_count_against_it() -> None:
    agreeing = SILENT[:9] + [SiteReading("12", 0.97)]  # sure of the wrong one on its own
    temperature = calibrated_temperature(READER, RIGHT + WRONG, agreeing, LABELS, THRESHOLD, 0.99)
    assert 0.356 < temperature < 0.565


def test_a_handful_answered_at_a_middle_temperature_does_not_hide_a_sharper_one_that_passes() -> None:
    sure = [_output("1", "2", 0.99)] * 3     # answered up to temperature 1 and beyond
    unsure = [_output("1", "2", 0.75)] * 7   # answered only at the sharpest temperatures
    temperature = calibrated_temperature(READER, sure + unsure, SILENT, ["12"] * 10, THRESHOLD, 0.99,
                                         min_answers=10)
    assert min(READER.decode(output, temperature=temperature).confidence for output in unsure) >= THRESHOLD


def test_a_case_mistake_the_generic_reader_confirms_ignoring_case_counts_against_the_model() -> None:
    reader = SiteModelReader(*fixed_model([frame(a=1.0), frame(A=1.0)], "aA"))
    outputs = [_output("a", "A", 0.9)] * 9 + [_output("a", "A", 0.8)]  # all read "aA"
    labels = ["aA"] * 9 + ["Aa"]
    # Sure of "AA" (its case a guess): it confirms the model's "aA", so the mistake is answered.
    generic = SILENT[:9] + [SiteReading("AA", 0.99)]
    assert calibrated_temperature(reader, outputs, generic, labels, THRESHOLD, 0.99) == TEMPERATURES[-1]
