"""Each charset's base model (what a site's fine-tuning starts from) reads that charset already."""

from __future__ import annotations

import random

import pytest

from shared.charsets import ALNUM, DIGITS
from trainer.site_training import BASE_MODELS
from training.synth import captcha, random_text
from worker.site_model import SiteModelReader

SAMPLES = 60


@pytest.mark.parametrize("charset", [DIGITS, ALNUM], ids=["digits", "alnum"])
def test_base_model_has_the_charset_columns_and_reads_synthetic_captchas_of_it(charset: str) -> None:
    path = BASE_MODELS[charset]
    reader = SiteModelReader(path.read_bytes(), {"charset": charset, "learned": charset, "lengths": [4, 5, 6],
                                                 "look": {"view": "standard", "crop": "margin",
                                                          "stretch": 1.0}})
    rng = random.Random(7)
    assert reader.outputs(captcha(rng, "1234")).shape[1] == len(charset) + 1  # the blank, then a column each
    texts = [random_text(rng, charset) for _ in range(SAMPLES)]
    right = sum(reader.read(captcha(rng, text, charset), [len(text)]).text == text for text in texts)
    # Pretraining, not chance: a random network reads none of these; a letter sample has 62 classes a place.
    assert right >= SAMPLES // 6, f"{right} of {SAMPLES} synthetic captchas read right"
