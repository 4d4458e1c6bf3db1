"""Several models' readings: the product-of-experts choice, and the confidence of their agreement."""

from __future__ import annotations

import numpy as np
import pytest

from worker.recognizer import agreed_answer, confirmed


def lattice(*positions: dict[str, float]) -> np.ndarray:
    """(T, 11) CTC probabilities: a sure blank, then one frame per position with the given digit
    probabilities (the rest on blank), then a sure blank. P(string) = the product of its digits' shares."""
    rows = [np.eye(11)[0]]
    for shares in positions:
        row = np.zeros(11)
        for digit, share in shares.items():
            row[int(digit) + 1] = share
        row[0] = 1.0 - row.sum()
        rows += [row, np.eye(11)[0]]
    return np.array(rows)


def test_a_string_one_model_rules_out_loses_to_one_both_find_plausible() -> None:
    sure = {"1": 1.0}
    first = lattice(sure, {"2": 1.0}, {"3": 0.9, "5": 0.1}, {"4": 1.0})     # best "1234" at 0.9
    second = lattice(sure, {"2": 1.0}, {"5": 0.5, "6": 0.499, "3": 0.001}, {"4": 1.0})  # best "1254" at 0.5
    text, score = agreed_answer([[first], [second]], 4)
    assert text == "1254"  # the most probable single reading would say "1234"
    assert score == pytest.approx((0.1 * 0.5) ** 0.5)


def test_one_model_keeps_the_most_probable_look() -> None:
    looks = [lattice({"7": 0.6, "1": 0.4}, {"0": 1.0}), lattice({"1": 0.8, "7": 0.2}, {"0": 1.0})]
    assert agreed_answer([looks], 2) == ("10", pytest.approx(0.8))


def test_nothing_fits_when_no_lattice_holds_enough_digits() -> None:
    assert agreed_answer([[lattice({"5": 1.0})]], 3) == ("", 0.0)


def test_agreement_of_models_trained_apart_is_the_chance_that_not_all_are_wrong() -> None:
    assert confirmed([0.8, 0.5]) == pytest.approx(1 - 0.2 * 0.5)
    assert confirmed([0.9]) == pytest.approx(0.9)
    assert confirmed([1.0000001, 0.3]) == 1.0  # renormalised outputs may overshoot 1 by rounding
