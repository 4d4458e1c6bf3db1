"""The synthetic captchas the digit model trains on cover the variety of real ones."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from training.fonts import SYMBOL_FONTS, fonts_for
from training.synth import captcha, random_text
from worker.normalise import flatten, luminance


def test_fonts_draw_digits_and_exclude_symbol_fonts() -> None:
    fonts = fonts_for()
    assert fonts and not any(SYMBOL_FONTS.search(path) for path in fonts)


def test_texts_are_mostly_four_digits_and_sometimes_three_to_six() -> None:
    rng = random.Random(0)
    lengths = Counter(len(random_text(rng)) for _ in range(2000))
    assert set(lengths) == {3, 4, 5, 6} and lengths[4] > 0.45 * 2000
    assert all(random_text(rng).isdigit() for _ in range(100))


def test_captchas_vary_in_size_polarity_and_transparency() -> None:
    rng = random.Random(1)
    images = [captcha(rng, random_text(rng)) for _ in range(150)]
    heights = [image.height for image in images]
    assert min(heights) < 26 and max(heights) > 90  # tiny ones too, as bitmap-font captchas are
    assert any(image.mode == "RGBA" for image in images) and any(image.mode == "RGB" for image in images)
    # Light-on-dark and dark-on-light both occur: the background (the median) is dark in some, light in
    # others.
    backgrounds = [float(np.median(luminance(flatten(image)))) for image in images]
    assert min(backgrounds) < 80 and max(backgrounds) > 180
