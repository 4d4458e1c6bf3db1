"""A site model's temperature is chosen on its held-back samples so that its answers at the service's
threshold (alone, or confirmed by the generic reader as the workers serve them) are trustworthy (their
confidences claim the precision asked for, and the mistakes among them do not contradict it) while
answering the most of them."""

from __future__ import annotations

import math

import numpy as np

from tests.fixed_site_model import fixed_model, frame
from trainer.site_training import TEMPERATURES, at_least, calibrated_temperature, trustworthy
from worker.site_model import SiteModelReader, SiteReading

THRESHOLD = 0.96


def _output(first: str, second: str, probability: float) -> np.ndarray:
    """Two frames, each sure of one digit with `probability` and of the other digit otherwise."""
    return np.stack([frame(**{f"_{first}": probability, f"_{second}": 1 - probability}),
                     frame(**{f"_{second}": probability, f"_{first}": 1 - probability})]).astype(np.float64)


READER = SiteModelReader(*fixed_model([frame(_1=1.0), frame(_2=1.0)], "12"))
RIGHT = [_output("1", "2", 0.99)] * 9  # read "12" at 0.98, and labelled so
WRONG = [_output("1", "2", 0.9)]       # read "12" at 0.81, labelled "21"
# Sharper than 1.184 lifts 0.99 a digit over 0.96 a string, sharper than 0.868 over 0.99 (the precision
# the right ones' confidences must claim); sharper than 0.566 lifts 0.9 over 0.96.
WINDOW = (0.566, 0.868)
LABELS = ["12"] * 9 + ["21"]
SILENT = [SiteReading("", 0.0)] * 10  # a generic reader that never answers


def test_the_temperature_answers_the_right_ones_and_refuses_the_wrong_one() -> None:
    temperature = calibrated_temperature(READER, RIGHT + WRONG, SILENT, LABELS, THRESHOLD, 0.99)
    assert WINDOW[0] < temperature < WINDOW[1]
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
    assert temperature > 1.184
    wrong = READER.decode(WRONG[0], temperature=temperature).confidence
    assert 1 - (1 - wrong) * (1 - 0.9) < THRESHOLD


def test_the_generic_readers_own_mistakes_do_not_count_against_the_model() -> None:
    elsewhere = [SiteReading("99", 0.99)] * 10  # answered instead of every unsure reading, wrongly
    temperature = calibrated_temperature(READER, RIGHT + WRONG, elsewhere, LABELS, THRESHOLD, 0.99)
    assert WINDOW[0] < temperature < WINDOW[1]


def test_too_few_answers_prove_no_precision() -> None:
    assert calibrated_temperature(READER, RIGHT, SILENT[:9], ["12"] * 9, THRESHOLD, 0.99,
                                  min_answers=9) == TEMPERATURES[0]
    temperature = calibrated_temperature(READER, RIGHT, SILENT[:9], ["12"] * 9, THRESHOLD, 0.99, min_answers=10)
    assert READER.decode(RIGHT[0], temperature=temperature).confidence < THRESHOLD


def test_the_generic_readers_sure_answers_the_model_agrees_with_do_not_count_against_it() -> None:
    agreeing = SILENT[:9] + [SiteReading("12", 0.97)]  # sure of the wrong one on its own
    temperature = calibrated_temperature(READER, RIGHT + WRONG, agreeing, LABELS, THRESHOLD, 0.99)
    assert WINDOW[0] < temperature < WINDOW[1]


def test_a_handful_answered_at_a_middle_temperature_does_not_hide_a_sharper_one_that_passes() -> None:
    sure = [_output("1", "2", 0.99)] * 3     # answered up to temperature 1 and beyond
    unsure = [_output("1", "2", 0.85)] * 7   # answered only at the sharpest temperatures
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


def test_a_mistake_the_answers_confidences_expected_is_served_and_one_they_did_not_is_not() -> None:
    # Fifty answers at 0.99 expect half a mistake: one is plausible (98% counted, unprovable either way
    # on fifty), two are not; the same mistake among answers sure to 0.9999 shows them over-sure.
    assert trustworthy([(0.99, True)] * 49 + [(0.99, False)], 0.99)
    assert not trustworthy([(0.99, True)] * 48 + [(0.99, False)] * 2, 0.99)
    assert not trustworthy([(0.9999, True)] * 49 + [(0.9999, False)], 0.99)
    assert trustworthy([(0.9999, True)] * 50, 0.99)


def test_answers_whose_confidences_claim_less_than_the_precision_are_not_trusted_even_all_right() -> None:
    assert not trustworthy([(0.97, True)] * 50, 0.99)
    assert trustworthy([(0.97, True)] * 50, 0.97)


def test_the_poisson_tail() -> None:
    assert at_least(0, 0.0) == 1.0 and at_least(1, 0.0) == 0.0
    assert abs(at_least(1, 1.0) - (1 - math.exp(-1))) < 1e-12
    assert abs(at_least(2, 0.5) - (1 - math.exp(-0.5) * 1.5)) < 1e-12
