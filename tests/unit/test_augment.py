"""The fine-tuning's augmentation changes a glyph's shape (slant, turn, height, stroke) but keeps it in
the picture, where the label says it is."""

from __future__ import annotations

import random

import numpy as np

from training.finetune import augment
from worker.normalise import MODEL_HEIGHT


def _glyph() -> np.ndarray:
    """A dark bar, like a '1', in the middle of a light strip as the workers' views show ink."""
    strip = np.ones((MODEL_HEIGHT, 96), dtype=np.float32)
    strip[16:48, 44:52] = 0.0
    return strip


def _ink(array: np.ndarray) -> np.ndarray:
    return array < 0.5


def test_augmented_glyphs_stay_in_the_picture_near_where_they_were() -> None:
    rng = random.Random(0)
    for _ in range(200):
        out = augment(_glyph(), rng)
        assert out.shape[0] == MODEL_HEIGHT and out.min() >= 0.0 and out.max() <= 1.0
        rows, cols = np.nonzero(_ink(out))
        assert 0.4 < rows.size / _ink(_glyph()).sum() < 2.5
        assert abs(rows.mean() - 32) <= 6 and abs(cols.mean() / out.shape[1] - 0.5) < 0.15


def test_augmented_glyphs_take_many_shapes() -> None:
    """Heights and slants that vary continuously, not just the plain picture stretched and shifted."""
    rng = random.Random(1)
    heights, slants = set(), set()
    for _ in range(100):
        out = _ink(augment(_glyph(), rng))
        rows = np.flatnonzero(out.any(axis=1))
        heights.add(int(rows[-1] - rows[0]))
        top, bottom = np.flatnonzero(out[rows[0] + 2]), np.flatnonzero(out[rows[-1] - 2])
        slants.add(int(round(top.mean() - bottom.mean())))
    assert len(heights) > 6 and len(slants) > 6
