"""Metrics move with requests, and every request leaves one log line without image bytes."""

from __future__ import annotations

import re

import pytest

from testbed.support import Stack, wait_until
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


def metric(text: str, name: str, labels: str = "", missing: float | None = None) -> float:
    """A sample's value. A missing sample fails, unless ``missing`` is given: a labelled counter has no
    sample before its first increment, but a gauge read as 0 because it is absent would prove nothing."""
    match = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.MULTILINE)
    if match:
        return float(match.group(1))
    assert missing is not None, f"no {name}{labels} in /metrics"
    return missing


def test_metrics_count_outcomes_and_timings(stack: Stack) -> None:
    before = stack.http.get("/metrics").text
    assert stack.ocr(image_base64=IMAGE).status_code == 200
    assert stack.ocr(image_base64="%%%").status_code == 422
    after = stack.http.get("/metrics").text
    solved = 'captchaocr_requests_total{outcome="solved",route="/ocr"}'
    refused = 'captchaocr_requests_total{outcome="malformed_base64",route="/ocr"}'
    assert metric(after, solved) == metric(before, solved, missing=0) + 1
    assert metric(after, refused) == metric(before, refused, missing=0) + 1
    assert metric(after, "captchaocr_model_seconds_count") == metric(before, "captchaocr_model_seconds_count") + 1
    assert metric(after, "captchaocr_confidence_count") > metric(before, "captchaocr_confidence_count")
    timed = ("captchaocr_request_seconds_count", '{route="/ocr"}')
    assert metric(after, *timed) == metric(before, *timed, missing=0) + 2  # no sample before the first
    assert metric(after, "captchaocr_workers_alive") == 1
    assert metric(after, "captchaocr_queue_depth") == 0


def test_one_log_line_per_request_without_image_bytes(stack: Stack) -> None:
    response = stack.ocr(image_base64=IMAGE)
    job_id = response.json()["job_id"]
    api_log = stack.tmp / "api.log"

    def lines_naming_job() -> list[str]:
        return [line for line in api_log.read_text().splitlines() if job_id in line]

    # The middleware logs once the response is sent, so the client can read it before the line is written.
    wait_until(lambda: lines_naming_job() != [], timeout_s=5, what="the request's log line")
    lines = lines_naming_job()
    log = api_log.read_text()
    assert len(lines) == 1
    assert "/ocr 200 solved" in lines[0]
    assert IMAGE[:40] not in log
