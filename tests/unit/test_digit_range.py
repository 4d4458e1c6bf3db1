"""The job contract's optional digit range, and the answerer keeping the most probable length."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from pydantic import ValidationError

from shared.contract import OcrJob
from shared.settings import Settings
from tests.prerequisites import corpus_images
from worker.answering import Answerer

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


@pytest.fixture(scope="module")
def answerer() -> Answerer:
    return Answerer(Settings())


def test_old_payloads_stay_valid() -> None:
    assert OcrJob.model_validate({"image_base64": "x", "digits": 4}).max_digits is None


@pytest.mark.parametrize("payload", [{"max_digits": 5}, {"digits": 5, "max_digits": 4}, {"digits": 4, "max_digits": 9}])
def test_bad_ranges_are_refused(payload: dict) -> None:
    with pytest.raises(ValidationError):
        OcrJob.model_validate({"image_base64": "x", **payload})


def test_range_keeps_the_most_probable_length(answerer: Answerer) -> None:
    image = Image.open(io.BytesIO(base64.b64decode(IMAGE)))
    per_length = {n: answerer.recognizer.recognize(image, n).confidence for n in range(2, 7)}
    answer = answerer.answer_job(OcrJob(image_base64=IMAGE, digits=2, max_digits=6))
    assert answer.ok and answer.text == LABEL
    assert answer.confidence == round(max(per_length.values()), 4)
    assert max(per_length, key=per_length.get) == len(LABEL)


def test_range_not_containing_the_true_length_answers_within_it(answerer: Answerer) -> None:
    answer = answerer.answer_job(OcrJob(image_base64=IMAGE, digits=5, max_digits=6, min_confidence=0))
    assert answer.ok and len(answer.text) in (5, 6)
