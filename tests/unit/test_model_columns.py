"""The pinned output columns of the characters read must be the ones ddddocr's own charset gives."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ddddocr.models.charset_manager import CharsetManager

from worker.charsets import CHARACTER_COLUMNS, PINNED
from worker.recognizer import Model, decode_digits, model_path

CHARSET_FLAGS = {"common_old": {"old": True}, "common": {"beta": True}}  # load_default_charset's flags


@pytest.mark.parametrize("name", sorted(CHARACTER_COLUMNS))
def test_pinned_columns_match_ddddocr_charset(name: str) -> None:
    charset = CharsetManager()
    charset.load_default_charset(**CHARSET_FLAGS[name])
    assert charset.charset[0] == ""  # column 0 is the CTC blank
    assert CHARACTER_COLUMNS[name] == tuple(charset.charset.index(char) for char in PINNED)
    assert model_path(name).is_file()


def test_loading_a_recognizer_does_not_import_ddddocr_or_opencv() -> None:
    code = (
        "import sys; from worker.recognizer import Recognizer; Recognizer(); "
        "print(sorted(m for m in ('ddddocr', 'cv2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_our_model_gives_blank_and_digit_probabilities_every_four_pixels() -> None:
    blank_page = np.ones((1, 1, 64, 160), np.float32)
    probabilities = Model("digits_crnn", ort_threads=1).digit_probabilities(blank_page)
    assert probabilities.shape == (40, 11)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert decode_digits(probabilities, 4)[1] < 0.5  # a blank page holds no confident 4 digits
