"""Hostile and unusual input, case by case, through HTTP and enqueued directly as a crawler would.

Every malformed case is a clear 4xx (422 naming the cause) and never reaches a model; every unusual but
valid image (16-bit, CMYK, palette with alpha, animated) is read like any other; after each case the
worker is still alive and the next request is answered.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from rq import Queue
from rq.serializers import JSONSerializer

from shared.contract import JOB_FUNCTION
from testbed.support import Stack
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 3)[2]
SOURCE = Image.open(io.BytesIO(base64.b64decode(IMAGE))).convert("RGB")


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> str:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode()


def png_bytes(image: Image.Image) -> bytes:
    return base64.b64decode(encode(image))


def decompression_bomb() -> str:
    """A PNG of a few kB that decodes to 256 megapixels."""
    return encode(Image.new("1", (16000, 16000), 0), optimize=True)


def wrapped(text: str, width: int = 76) -> str:
    """MIME-style base64: lines of 76 characters."""
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


# (case id, image text, refusal code or None when the image must be read as LABEL)
IMAGE_CASES = [
    ("bad-characters", "iVBORw0KGgo*AAAANSUhEUg!", "malformed_base64"),
    ("wrong-padding", IMAGE[:-2] + "=", "malformed_base64"),
    ("unicode-garbage", "ÿ😀∂ßЖ漢字", "malformed_base64"),
    ("empty", "", "empty_input"),
    ("data-url-non-image-mime", "data:application/pdf;base64," + IMAGE, "malformed_data_url"),
    ("data-url-no-comma", "data:image/png;base64" + IMAGE, "malformed_data_url"),
    ("not-an-image", base64.b64encode(b"%PDF-1.4 not a picture at all" * 10).decode(), "not_an_image"),
    ("truncated-png", base64.b64encode(png_bytes(SOURCE)[:400]).decode(), "not_an_image"),
    ("one-pixel", encode(Image.new("RGB", (1, 1), "white")), "image_too_small"),
    ("decompression-bomb", decompression_bomb(), "image_too_large"),
    # Accepted on purpose: MIME wraps base64 in lines, and some clients use the URL-safe alphabet.
    ("newlines-inside", wrapped(IMAGE), None),
    ("url-safe-alphabet", IMAGE.replace("+", "-").replace("/", "_"), None),
    ("sixteen-bit", encode(SOURCE.convert("L").convert("I;16")), None),
    ("cmyk-jpeg", encode(SOURCE.convert("CMYK"), "JPEG", quality=95), None),
    ("palette-with-alpha", encode(SOURCE.convert("P", palette=Image.Palette.ADAPTIVE), transparency=0), None),
    ("animated-gif", encode(SOURCE.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", save_all=True,
                            append_images=[Image.new("P", SOURCE.size)], duration=100, loop=0), None),
]  # fmt: skip


def still_answers(stack: Stack) -> None:
    assert all(worker.alive() for worker in stack.workers)
    assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL


@pytest.mark.parametrize(("image", "error"), [case[1:] for case in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_image_case_over_http_and_direct(stack: Stack, image: str, error: str | None) -> None:
    response = stack.ocr(image_base64=image)
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    direct = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": image}).latest_result(timeout=15).return_value
    if error is None:
        assert response.status_code == 200, response.text
        assert response.json()["text"] == LABEL
        assert direct["ok"] is True and direct["text"] == LABEL
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"] == error and response.json()["detail"]
        assert direct["ok"] is False and direct["error"] == error
    still_answers(stack)


# (case id, JSON body, job kwargs a crawler might enqueue with the same mistake)
REQUEST_CASES = [
    ("image-not-a-string", {"image_base64": 1234}, {"image_base64": 1234}),
    ("both-fields", {"image_base64": IMAGE, "text": IMAGE}, None),
    ("unknown-field", {"image_base64": IMAGE, "colour": "red"}, {"image_base64": IMAGE, "colour": "red"}),
    ("digits-zero", {"image_base64": IMAGE, "digits": 0}, {"image_base64": IMAGE, "digits": 0}),
    ("digits-nine", {"image_base64": IMAGE, "digits": 9}, {"image_base64": IMAGE, "digits": 9}),
    ("digits-a-string", {"image_base64": IMAGE, "digits": "4"}, None),
    ("confidence-above-one", {"image_base64": IMAGE, "min_confidence": 2}, {"image_base64": IMAGE, "min_confidence": 2}),
    ("no-image", {"digits": 4}, {"digits": 4}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "kwargs"), [case[1:] for case in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES])
def test_malformed_request_over_http_and_direct(stack: Stack, body: dict, kwargs: dict | None) -> None:
    response = stack.http.post("/ocr", json=body)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)  # FastAPI's list of what is wrong, with locations
    if kwargs is not None:
        queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
        direct = queue.enqueue(JOB_FUNCTION, kwargs=kwargs).latest_result(timeout=15).return_value
        assert direct["ok"] is False and direct["error"] == "invalid_job" and "invalid job payload" in direct["detail"]
    still_answers(stack)


def test_body_that_is_not_json_or_not_utf8(stack: Stack) -> None:
    for raw in (b"{not json", b"\xff\xfe\x00garbage", b""):
        response = stack.http.post("/ocr", content=raw, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (raw, response.status_code, response.text)
    still_answers(stack)
