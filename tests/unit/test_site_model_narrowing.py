"""A site model's search narrowed by a request: its charset keeps some learned characters, and
``case: false`` merges a letter's two cases into one class whose probabilities add up."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.fixed_site_model import fixed_model, frame
from worker.site_model import SiteModelReader


def _reader() -> SiteModelReader:
    """Frame 1 leans to "a" over "A" and "3", frame 2 to "B" over "b"."""
    return SiteModelReader(*fixed_model([frame(a=0.4, A=0.35, _3=0.25), frame(B=0.6, b=0.4)], "3ABab"))


IMAGE = Image.new("RGB", (120, 40), "white")


def test_case_is_kept_by_default() -> None:
    reading = _reader().read(IMAGE)
    assert reading.text == "aB"
    assert reading.confidence == np.float32(0.4) * np.float32(0.6)


def test_case_false_adds_up_a_letters_two_cases() -> None:
    reader = _reader()
    reading = reader.read(IMAGE, classes=reader.alphabet(case=False))
    assert reading.text == "AB"
    assert round(reading.confidence, 4) == 0.75


def test_a_charset_keeps_only_its_learned_characters() -> None:
    reader = _reader()
    assert reader.read(IMAGE, classes=reader.alphabet("3b")).text == "3b"
    assert reader.alphabet("xyz").classes == ()
    assert reader.read(IMAGE, classes=reader.alphabet("xyz")).text == ""
    merged = reader.alphabet("ab", case=False)
    assert merged.symbols == "AB" and reader.read(IMAGE, classes=merged).text == "AB"
