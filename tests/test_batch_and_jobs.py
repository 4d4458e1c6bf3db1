"""POST /ocr/batch and GET /jobs/{id} over real HTTP, Redis and workers."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.client import CaptchaClient
from shared.queue import make_queue
from shared.settings import Settings
from testbed.support import Stack
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

SVG = corpus_images("npm_svg_captcha", 12)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


BLANK_PNG = _png(Image.new("RGB", (160, 60), "white"))


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """No worker at all: jobs stay queued, and /ocr gives up after half a second."""
    running = Stack(tmp_path_factory.mktemp("idle"), workers=0, wait_timeout_s="0.5", batch_max_images="3")
    yield running
    running.close()


def test_batch_answers_each_image_in_order(stack: Stack) -> None:
    images = [image for _, image in SVG] + ["not*base64"]
    response = stack.http.post("/ocr/batch", json={"images": images, "digits": 4})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [item.get("text") for item in results] == [label for label, _ in SVG] + [None]
    assert [item.get("number") for item in results[:-1]] == [int(label) for label, _ in SVG]
    assert results[-1]["error"] == "malformed_base64" and "job_id" not in results[-1]
    assert len({item["job_id"] for item in results[:-1]}) == len(SVG)  # one job per image


def test_batch_spreads_over_all_workers(tmp_path_factory: pytest.TempPathFactory) -> None:
    two = Stack(tmp_path_factory.mktemp("two-workers"), workers=2)
    try:
        images = [image for _, image in corpus_images("npm_svg_captcha", 40)]
        results = two.http.post("/ocr/batch", json={"images": images}).json()["results"]
        redis = two.redis.client()
        workers = {Job.fetch(item["job_id"], redis, serializer=JSONSerializer).latest_result().worker_name
                   for item in results}  # fmt: skip
        assert len(workers) == 2
    finally:
        two.close()


def test_batch_refusals_are_per_item(stack: Stack) -> None:
    """One batch, three outcomes: a refusal belongs to its own item, not to its neighbours."""
    blank = base64.b64encode(BLANK_PNG).decode()  # decodes, and reads below the threshold
    body = {"images": [SVG[0][1], blank, SVG[1][1]]}
    results = stack.http.post("/ocr/batch", json=body).json()["results"]
    assert [item.get("text") or item["error"] for item in results] == [SVG[0][0], "low_confidence", SVG[1][0]]
    assert 0 <= results[1]["confidence"] < 0.5


def test_batch_limits(idle_stack: Stack) -> None:
    assert idle_stack.http.post("/ocr/batch", json={"images": []}).status_code == 422
    too_many = idle_stack.http.post("/ocr/batch", json={"images": [SVG[0][1]] * 4})
    assert too_many.status_code == 422 and "at most 3" in too_many.json()["detail"]


def test_batch_times_out_per_item_without_workers(idle_stack: Stack) -> None:
    results = idle_stack.http.post("/ocr/batch", json={"images": [SVG[0][1], SVG[1][1]]}).json()["results"]
    assert [item["error"] for item in results] == ["timeout", "timeout"]
    for item in results:  # nobody waits any more: the queued jobs are cancelled
        assert idle_stack.http.get(f"/jobs/{item['job_id']}").json()["status"] == "canceled"


def test_job_lookup_of_an_answer_and_a_refusal(stack: Stack) -> None:
    label, image = SVG[0]
    solved = stack.ocr(image_base64=image).json()
    looked_up = stack.http.get(f"/jobs/{solved['job_id']}").json()
    assert looked_up["status"] == "finished"
    assert {k: looked_up["result"][k] for k in ("number", "text", "confidence", "job_id")} == {
        k: solved[k] for k in ("number", "text", "confidence", "job_id")
    }
    refused = stack.ocr(image_base64=image, min_confidence=1.0).json()
    result = stack.http.get(f"/jobs/{refused['job_id']}").json()["result"]
    assert result == {key: refused[key] for key in ("detail", "error", "confidence", "job_id")}


def test_job_lookup_of_queued_and_timed_out_jobs(idle_stack: Stack) -> None:
    settings = Settings(redis_url=idle_stack.redis.url)
    job = CaptchaClient(idle_stack.redis.client(), settings).submit(SVG[0][1])
    assert idle_stack.http.get(f"/jobs/{job.id}").json() == {
        "job_id": job.id, "status": "queued", "result": None, "detail": None,
    }  # fmt: skip
    timed_out = idle_stack.ocr(image_base64=SVG[0][1])
    assert timed_out.status_code == 503
    assert idle_stack.http.get(f"/jobs/{timed_out.json()['job_id']}").json()["status"] == "canceled"


def test_job_lookup_of_a_failed_job(stack: Stack) -> None:
    queue = make_queue(stack.redis.client(), Settings(redis_url=stack.redis.url))
    job = queue.enqueue("os.getcwd")  # the worker refuses any function but the captcha reader
    CaptchaClient(stack.redis.client()).result(job, timeout_s=10)
    answer = stack.http.get(f"/jobs/{job.id}").json()
    assert answer["status"] == "failed" and answer["result"] is None


def test_unknown_job_is_404(stack: Stack) -> None:
    assert stack.http.get("/jobs/no-such-job").status_code == 404
    assert stack.http.get("/jobs/bad:id").status_code == 422
