"""Letters, arithmetic and alternatives end to end: over HTTP (single and batch) and enqueued directly."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from shared.contract import JOB_FUNCTION
from testbed.support import Stack
from tests.prerequisites import unavailable

pytestmark = pytest.mark.slow  # starts real processes

SHARED = Path(__file__).resolve().parents[2] / "shared"
FLASK = SHARED / "corpus_alnum" / "py_flask_simple_captcha" / "0000_WPYNZW.png"
GREGWAR = SHARED / "corpus_alnum" / "php_gregwar_captcha" / "0000_mDz1b.png"
SUM = SHARED / "corpus_math" / "npm_svg_captcha_math" / "0000_13.png"  # "7+6"


def encoded(path: Path) -> str:
    if not path.is_file():
        unavailable(f"no letter or arithmetic corpus beside the project: {path}")
    return base64.b64encode(path.read_bytes()).decode()


def test_letters_over_http_ignore_case_unless_asked(stack: Stack) -> None:
    answer = stack.ocr(image_base64=encoded(FLASK), charset="letters", length=6)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "wpynzw" and answer.json()["number"] is None
    upper = stack.ocr(image_base64=encoded(FLASK), charset="upper", case=True, length=6).json()
    assert upper["text"] == "WPYNZW"
    mixed = stack.ocr(image_base64=encoded(GREGWAR), charset="alnum", length={"min": 4, "max": 6}).json()
    assert mixed["text"] == "mdz1b"


def test_explicit_characters_and_exact_length(stack: Stack) -> None:
    image = encoded(FLASK)
    # explicit characters answer in the case they are given in (both cases are read unless case is true)
    assert stack.ocr(image_base64=image, charset="WPYNZ", length=6).json()["text"] == "WPYNZW"
    assert stack.ocr(image_base64=image, charset="wpynz", length=6).json()["text"] == "wpynzw"
    short = stack.ocr(image_base64=image, charset="letters", length=4)
    assert short.status_code == 422 and short.json()["error"] == "low_confidence"
    forced = stack.ocr(image_base64=image, charset="letters", length=4, min_confidence=0).json()
    assert len(forced["text"]) == 4


def test_math_over_http_answers_the_value(stack: Stack) -> None:
    response = stack.ocr(image_base64=encoded(SUM), math=True, alternatives=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == 13 and body["text"] == "7+6"
    assert [a["text"] for a in body["alternatives"]][0] == "7+6" and len(body["alternatives"]) == 2


def test_letters_are_not_arithmetic(stack: Stack) -> None:
    response = stack.ocr(image_base64=encoded(FLASK), math=True)
    assert response.status_code == 422 and response.json()["error"] in ("low_confidence", "not_an_expression")


def test_alternatives_over_http_and_in_a_batch(stack: Stack) -> None:
    body = stack.ocr(image_base64=encoded(FLASK), charset="letters", length=6, alternatives=3).json()
    texts = [a["text"] for a in body["alternatives"]]
    assert texts[0] == "wpynzw" and len(texts) == 3 == len(set(texts))
    assert all(len(text) == 6 for text in texts)
    probabilities = [a["probability"] for a in body["alternatives"]]
    assert probabilities == sorted(probabilities, reverse=True)
    batch = stack.http.post("/ocr/batch", json={"images": [encoded(SUM), encoded(FLASK)], "math": True})
    results = batch.json()["results"]
    assert results[0]["number"] == 13 and results[1]["error"] in ("low_confidence", "not_an_expression")


@pytest.mark.parametrize("fields", [
    {"charset": "abc!"}, {"charset": "letters", "digits": 4}, {"math": True, "length": 3},
    {"length": 9}, {"alternatives": 6}, {"case": "yes"}, {"length": {"min": 5, "max": 4}},
])  # fmt: skip
def test_fields_that_do_not_combine_are_a_422(stack: Stack, fields: dict) -> None:
    response = stack.ocr(image_base64=encoded(FLASK), **fields)
    assert response.status_code == 422 and "detail" in response.json()
    batch = stack.http.post("/ocr/batch", json={"images": [encoded(FLASK)], **fields})
    assert batch.status_code == 422


def test_letters_and_math_enqueued_directly(stack: Stack) -> None:
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    letters = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": encoded(FLASK), "charset": "letters",
                                                  "length": 6})  # fmt: skip
    math = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": encoded(SUM), "math": True})
    wrong = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": encoded(SUM), "math": True,
                                                "charset": "upper"})  # fmt: skip
    assert letters.latest_result(timeout=30).return_value["text"] == "wpynzw"
    assert math.latest_result(timeout=30).return_value["number"] == 13
    refusal = wrong.latest_result(timeout=30).return_value
    assert refusal["ok"] is False and refusal["error"] == "invalid_job"
