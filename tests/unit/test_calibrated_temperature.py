"""A site model's temperature is chosen on its held-back samples so that its answers at the service's
threshold are precise enough while answering the most of them."""

from __future__ import annotations

import numpy as np

from tests.fixed_site_model import fixed_model, frame
from trainer.site_training import TEMPERATURES, calibrated_temperature
from worker.site_model import SiteModelReader

THRESHOLD = 0.96


def _output(first: str, second: str, probability: float) -> np.ndarray:
    """Two frames, each sure of one digit with `probability` and of the other digit otherwise."""
    return np.stack([frame(**{f"_{first}": probability, f"_{second}": 1 - probability}),
                     frame(**{f"_{second}": probability, f"_{first}": 1 - probability})]).astype(np.float64)


READER = SiteModelReader(*fixed_model([frame(_1=1.0), frame(_2=1.0)], "12"))
RIGHT = [_output("1", "2", 0.9)] * 9  # read "12" at 0.81, and labelled so
WRONG = [_output("1", "2", 0.8)]      # read "12" at 0.64, labelled "21"


def test_the_temperature_answers_the_right_ones_and_refuses_the_wrong_one() -> None:
    temperature = calibrated_temperature(READER, RIGHT + WRONG, ["12"] * 9 + ["21"], THRESHOLD, 0.99)
    # Sharper than 0.565 lifts 0.9 per digit over 0.98 (0.96 a string); sharper than 0.356, 0.8 too.
    assert 0.356 < temperature < 0.565
    confidences = [READER.decode(output, temperature=temperature).confidence for output in RIGHT + WRONG]
    assert min(confidences[:9]) >= THRESHOLD > confidences[9]


def test_all_right_answers_everything_and_sure_mistakes_get_the_most_cautious() -> None:
    assert calibrated_temperature(READER, RIGHT, ["12"] * 9, THRESHOLD, 0.99) == TEMPERATURES[0]
    certain = [_output("1", "2", 1.0)] * 3  # wrong at any temperature
    assert calibrated_temperature(READER, certain, ["21"] * 3, THRESHOLD, 0.99) == TEMPERATURES[-1]
