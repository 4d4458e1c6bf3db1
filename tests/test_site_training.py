"""One site's training in-process (torch, the real base model and the workers' site reader), on letters:
a letter site starts from the digit model, learns exactly the characters its samples hold, and its model
reads strings of those characters in the samples' length."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shared.charsets import ALNUM
from shared.settings import Settings
from shared.sites import Sample
from testbed.support import CORPUS
from tests.prerequisites import unavailable
from trainer.site_training import train_site
from worker.recognizer import Recognizer
from worker.site_model import SiteModelReader

pytestmark = pytest.mark.slow  # trains for half a minute

LETTERS = CORPUS.parent / "sites_alnum" / "py_captcha"


def test_a_letter_site_trains_from_the_digit_model_and_reads_its_own_characters() -> None:
    paths = sorted(LETTERS.glob("*.png"))[:100]
    if len(paths) < 100:
        unavailable(f"100 images of {LETTERS} expected: is ../shared beside the project?")
    samples = [Sample(f"{index}-0", path.read_bytes(), path.stem.split("_")[1], "upload")
               for index, path in enumerate(paths)]
    settings = Settings(learn_max_minutes=0.5)
    outcome = train_site(samples, None, settings, Recognizer.from_settings(settings))
    learned = {char for sample in samples for char in sample.text}
    assert outcome.meta["charset"] == ALNUM
    assert set(outcome.meta["learned"]) == learned and any(char.isalpha() for char in learned)
    assert outcome.meta["lengths"] == [5]
    assert outcome.meta["held_back"] == len(samples) - outcome.meta["samples_used"] > 0
    reader = SiteModelReader(outcome.onnx, outcome.meta)
    for sample in samples[:5]:
        text = reader.read(Image.open(io.BytesIO(sample.image))).text
        assert len(text) == 5 and set(text) <= learned, text
