"""Limits and defaults set away from their defaults, each checked to change what the service does: a
setting the code ignored would pass a test that only ran with the default."""

from __future__ import annotations

import base64
import io
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from shared.client import CaptchaClient
from shared.settings import Settings
from testbed.support import Stack
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

SVG = corpus_images("npm_svg_captcha", 10)
MAX_PIXELS = 100_000
MAX_BODY = 100_000
COLLECT_MAX = 3
MAX_DEPTH = 3


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker; small pixel and body limits, 5 digits by default, at most 3 requests a collected job
    (and a collection wait long enough that only that limit cuts a job)."""
    running = Stack(
        tmp_path_factory.mktemp("tuned"), workers=1, max_image_pixels=str(MAX_PIXELS),
        max_body_bytes=str(MAX_BODY), default_digits="5", collect_max_requests=str(COLLECT_MAX),
        collect_wait_ms="3000",
    )  # fmt: skip
    yield running
    running.close()


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No worker: what is queued stays queued, and /ocr gives up after half a second."""
    running = Stack(tmp_path_factory.mktemp("idle-depth"), workers=0, wait_timeout_s="0.5",
                    max_queue_depth=str(MAX_DEPTH))  # fmt: skip
    yield running
    running.close()


def resized(image: str, size: tuple[int, int]) -> str:
    source = Image.open(io.BytesIO(base64.b64decode(image))).convert("RGB")
    buffer = io.BytesIO()
    source.resize(size).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_max_image_pixels_alone_refuses_an_image(tuned: Stack) -> None:
    """400x300 is within every other limit (side 4096, a few kB): only the pixel count refuses it."""
    label, image = SVG[0]
    over = resized(image, (400, 300))  # 120 000 pixels
    assert len(base64.b64decode(over)) < 100_000
    refused = tuned.ocr(image_base64=over, digits=4)
    assert refused.status_code == 422 and refused.json()["error"] == "image_too_large", refused.text
    assert str(MAX_PIXELS) in refused.json()["detail"]  # the configured limit refused it
    under = tuned.ocr(image_base64=resized(image, (330, 300)), digits=4)  # 99 000 pixels
    assert under.status_code in (200, 422) and under.json().get("error") != "image_too_large", under.text


def test_a_chunked_body_over_max_body_bytes_is_a_413(tuned: Stack) -> None:
    """No Content-Length: the limit is counted as the body streams in."""
    label, image = SVG[0]

    def body(padding: int) -> Iterator[bytes]:
        yield b'{"digits": 4, "image_base64": "' + image.encode() + b'"'
        for _ in range(padding):
            yield b" " * 1000  # whitespace: still valid JSON, and as large as asked
        yield b"}"

    small = tuned.http.post("/ocr", content=body(10), headers={"content-type": "application/json"})
    assert small.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in small.request.headers
    assert small.status_code == 200 and small.json()["text"] == label, small.text
    large = tuned.http.post("/ocr", content=body(MAX_BODY // 1000), headers={"content-type": "application/json"})
    assert large.status_code == 413, large.text
    assert tuned.ocr(image_base64=image, digits=4).json()["text"] == label


def test_default_digits_is_the_length_read_when_a_request_names_none(tuned: Stack) -> None:
    label, image = SVG[1]
    answer = tuned.ocr(image_base64=image, min_confidence=0).json()
    assert len(answer["text"]) == 5 and answer["text"].isdigit(), answer
    assert tuned.ocr(image_base64=image, digits=4).json()["text"] == label  # a request's own digits win


def test_a_collected_job_holds_at_most_collect_max_requests(tuned: Stack) -> None:
    """Ten requests at once on one worker: the first goes out alone, the others wait (the collection wait is
    3 s) and leave in jobs of three, as each fills up."""

    def post(image: str) -> httpx.Response:
        with httpx.Client(base_url=str(tuned.http.base_url), timeout=30) as client:
            return client.post("/ocr", json={"image_base64": image, "digits": 4})

    started = time.monotonic()
    with ThreadPoolExecutor(len(SVG)) as pool:
        responses = list(pool.map(post, [image for _, image in SVG]))
    assert [r.json().get("text") for r in responses] == [label for label, _ in SVG]
    sizes = Counter(r.json()["job_id"].rpartition("_")[0] for r in responses if "_" in r.json()["job_id"])
    assert sizes and max(sizes.values()) == COLLECT_MAX, sizes
    assert time.monotonic() - started < 3, "jobs waited for the collection wait, not for the limit"


def test_exactly_max_queue_depth_jobs_are_admitted_and_one_more_is_refused(idle: Stack) -> None:
    client = CaptchaClient(idle.redis.client(), Settings(redis_url=idle.redis.url, max_queue_depth=MAX_DEPTH))
    waiting = [client.submit(SVG[index][1]) for index in range(MAX_DEPTH - 1)]  # a crawler's jobs, queued
    admitted = idle.ocr(image_base64=SVG[0][1])  # the queue's last place: queued, then not answered
    assert admitted.status_code == 503 and admitted.json().get("job_id"), admitted.text
    assert admitted.json()["detail"].startswith("no worker answered"), admitted.text
    waiting.append(client.submit(SVG[1][1]))  # the queue is full now (the /ocr job was cancelled)
    started = time.monotonic()
    refused = idle.ocr(image_base64=SVG[0][1])
    assert refused.status_code == 503 and refused.json()["detail"].startswith("queue full"), refused.text
    assert time.monotonic() - started < 0.5  # refused at once, not after the wait
    for job in waiting:
        job.cancel()
