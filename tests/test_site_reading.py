"""Reading for a site with a model, through the real API, worker and Redis: a sure site model answers
alone; an unsure one is combined with the generic reader, even when the request takes any answer; a sure
answer teaches the site unless the request says ``learn: false`` or it was read ignoring case."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.sites import SiteStore
from testbed.support import Stack
from tests.fixed_site_model import fixed_model, frame
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

SITE = "reading.example"
CHECK_S = 0.2  # how often the worker looks for a newer model of a site
LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]  # the generic reader reads it, surely
OTHER = "".join(str((int(digit) + 1) % 10) for digit in LABEL)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("site_reading"), workers=1, site_model_check_s=str(CHECK_S))
    yield running
    running.close()


def promote(stack: Stack, probability: float) -> None:
    """A model of this site that reads OTHER (never the label) with `probability` per digit."""
    frames = [frame(**{f"_{digit}": probability, f"_{(int(digit) + 5) % 10}": 1 - probability})
              for digit in OTHER]
    SiteStore(stack.redis.client(), max_samples=100).promote(SITE, *fixed_model(frames, "0123456789"))
    time.sleep(3 * CHECK_S)  # the worker has noticed the new version


def answer(stack: Stack, **fields: object) -> dict:
    response = stack.ocr(image_base64=IMAGE, site=SITE, **fields)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_sure_site_model_answers_alone(stack: Stack) -> None:
    promote(stack, 1.0)
    assert answer(stack)["text"] == OTHER
    assert answer(stack, min_confidence=0)["text"] == OTHER


def test_an_unsure_site_model_is_combined_with_the_generic_reader_at_any_threshold(stack: Stack) -> None:
    promote(stack, 0.7)  # 0.7 ** 4 = 0.24: unsure by the service's 0.96
    assert answer(stack, min_confidence=0)["text"] == LABEL
    assert answer(stack)["text"] == LABEL


def test_a_sure_answer_teaches_the_site_unless_the_request_says_not_to(stack: Stack) -> None:
    promote(stack, 1.0)
    store = SiteStore(stack.redis.client(), max_samples=100)
    _, image = corpus_images("npm_svg_captcha", 2)[1]  # not yet a sample of the site
    held = store.sample_count(SITE)
    assert stack.ocr(image_base64=image, site=SITE, learn=False).json()["text"] == OTHER
    assert store.sample_count(SITE) == held
    assert stack.ocr(image_base64=image, site=SITE).json()["text"] == OTHER
    assert store.sample_count(SITE) == held + 1


def test_an_answer_read_ignoring_case_does_not_teach_the_site(stack: Stack) -> None:
    site, store = "cased.example", SiteStore(stack.redis.client(), max_samples=100)
    store.promote(site, *fixed_model([frame(A=1.0), frame(b=1.0)], "Ab"))
    asked = {"image_base64": IMAGE, "site": site, "charset": "letters", "length": 2}
    assert stack.ocr(**asked, case=False).json()["text"].lower() == "ab"  # its case is a guess
    assert store.sample_count(site) == 0
    assert stack.ocr(**asked).json()["text"] == "Ab"
    assert store.sample_count(site) == 1
