"""The service end to end, with real parts: HTTP -> API -> Redis -> RQ worker -> API -> HTTP."""

from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image
from rq import Queue
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from shared.client import CaptchaClient
from shared.contract import JOB_FUNCTION
from testbed.support import Stack
from tests.prerequisites import corpus_images
from shared.rq_internals import SUSPENSION_CHECK_EVERY_S

pytestmark = pytest.mark.slow  # starts real processes

SVG_IMAGES = corpus_images("npm_svg_captcha", 8)


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_health_reports_redis_and_workers(stack: Stack) -> None:
    response = stack.http.get("/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "redis": True, "workers": 1, "queue_depth": 0}


def test_docs_and_redoc_are_served(stack: Stack) -> None:
    docs, redoc = stack.http.get("/docs").text, stack.http.get("/redoc").text
    assert "swagger-ui-bundle.js" in docs and "redoc.standalone.js" in redoc
    assert "https://" not in docs + redoc  # served from the service itself: no CDN on a closed network
    assert stack.http.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert "/ocr" in stack.http.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(("label", "image"), SVG_IMAGES, ids=[label for label, _ in SVG_IMAGES])
def test_reads_svg_captcha_numbers(stack: Stack, label: str, image: str) -> None:
    response = stack.ocr(image_base64=image)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == label
    assert body["number"] == int(label)
    assert 0 < body["confidence"] <= 1
    assert body["job_id"] and body["elapsed_ms"] > 0


def test_legacy_text_field_and_data_url(stack: Stack) -> None:
    label, image = SVG_IMAGES[0]
    assert stack.ocr(text=image).json()["text"] == label
    assert stack.ocr(image_base64=f"data:image/png;base64,{image}").json()["text"] == label
    assert stack.ocr(text=f"data:image/png;base64,{image}").json()["text"] == label


@pytest.mark.parametrize(
    ("image", "error", "detail"),
    [
        ("", "empty_input", "empty input"),
        ("   ", "empty_input", "empty input"),
        ("not*base64!", "malformed_base64", "malformed base64"),
        ("QUJDRA=", "malformed_base64", "malformed base64"),
        ("data:text/plain;base64,QUJDRA==", "malformed_data_url", "not an image"),
        ("data:image/png;base64", "malformed_data_url", "no comma"),
        (base64.b64encode(b"just some text, not a picture").decode(), "not_an_image", "not a decodable image"),
        (png_base64(Image.new("RGB", (5000, 20), "white")), "image_too_large", "image too large"),
        (png_base64(Image.new("RGB", (1, 1), "white")), "image_too_small", "image too small"),
        (png_base64(Image.new("RGB", (160, 60), "white")), "low_confidence", "low confidence"),
    ],
    ids=["empty", "blank", "bad-chars", "bad-padding", "data-url-text", "data-url-no-comma", "not-image",
         "too-large", "too-small", "blank-image"],
)
def test_each_refusal_is_a_422_naming_its_cause(stack: Stack, image: str, error: str, detail: str) -> None:
    response = stack.ocr(image_base64=image)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == error
    assert detail in body["detail"]
    assert "number" not in body
    # The worker re-validates what a crawler enqueues directly: the same refusal, and it keeps working.
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    refusal = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": image}).latest_result(timeout=10).return_value
    assert refusal["ok"] is False and refusal["error"] == error and detail in refusal["detail"]
    assert stack.ocr(image_base64=SVG_IMAGES[0][1]).json()["text"] == SVG_IMAGES[0][0]


def test_eight_digits_asked_of_a_four_digit_captcha_are_refused_as_improbable(stack: Stack) -> None:
    """Eight digits can be read into a four-digit captcha, but only improbably: a low_confidence 422.
    (too_few_digits is for an image where no string of that length fits at all.) With no threshold the
    reading is the model's own eight digits, never a made-up padding."""
    label, image = SVG_IMAGES[0]
    response = stack.ocr(image_base64=image, digits=8)
    assert response.status_code == 422
    assert response.json()["error"] == "low_confidence" and response.json()["confidence"] < 0.001
    answer = stack.ocr(image_base64=image, digits=8, min_confidence=0).json()
    assert len(answer["text"]) == 8 and answer["text"] != "0" * 8


def test_body_without_image_fields_gets_fastapi_422(stack: Stack) -> None:
    for body in ({}, {"digits": 4}, {"image_base64": SVG_IMAGES[0][1], "text": SVG_IMAGES[0][1]}):
        response = stack.http.post("/ocr", json=body)
        assert response.status_code == 422
        assert isinstance(response.json()["detail"], list)
    response = stack.http.post("/ocr", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_oversized_body_is_413(stack: Stack) -> None:
    response = stack.http.post(
        "/ocr", content=b'{"image_base64": "' + b"A" * (5 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_crawler_enqueues_directly_with_the_client_helper(stack: Stack) -> None:
    client = CaptchaClient(stack.redis.client())
    jobs = [(label, client.submit(image)) for label, image in SVG_IMAGES[:4]]
    for label, job in jobs:
        result = client.result(job, timeout_s=10)
        assert result is not None
        assert result["ok"] is True and result["text"] == label and result["number"] == int(label)


def test_crawler_enqueues_with_raw_rq_call(stack: Stack) -> None:
    label, image = SVG_IMAGES[1]
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    job = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": image, "digits": 4})
    assert job.latest_result(timeout=10).return_value["text"] == label
    bad = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": "%%%"})
    assert bad.latest_result(timeout=10).return_value == {
        "ok": False, "error": "malformed_base64", "confidence": None,
        "detail": "malformed base64: characters outside the alphabet",
    }
    invalid = queue.enqueue(JOB_FUNCTION, kwargs={"image": image})
    refusal = invalid.latest_result(timeout=10).return_value
    assert refusal["ok"] is False and refusal["error"] == "invalid_job"
    assert image not in refusal["detail"]


def test_crawler_job_depending_on_another_runs_after_it(stack: Stack) -> None:
    """RQ's dependencies still work with the worker's one-transaction success path."""
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    (first_label, first_image), (second_label, second_image) = SVG_IMAGES[4:6]
    first = queue.create_job(JOB_FUNCTION, kwargs={"image_base64": first_image})
    first.save()  # saved but not queued yet, so the second job must wait in the deferred registry
    second = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": second_image}, depends_on=first)
    assert second.get_status(refresh=True) == JobStatus.DEFERRED
    queue.enqueue_job(first)
    assert first.latest_result(timeout=10).return_value["text"] == first_label
    assert second.latest_result(timeout=10).return_value["text"] == second_label
    assert second.id not in queue.deferred_job_registry.get_job_ids()
    assert {first.id, second.id} <= set(queue.finished_job_registry.get_job_ids())


def test_rq_suspend_holds_jobs_until_rq_resume(stack: Stack) -> None:
    """Operators' ``rq suspend`` still stops the workers, within a second: they check at most once a
    second (a round trip saved a job). As in stock RQ, a worker already waiting for a job takes one more."""
    connection = stack.redis.client()
    client = CaptchaClient(connection)
    label, image = SVG_IMAGES[6]
    suspend(connection)
    try:
        time.sleep(SUSPENSION_CHECK_EVERY_S + 0.2)
        jobs = [client.submit(image) for _ in range(len(stack.workers) + 2)]
        time.sleep(2)
        queued = [job for job in jobs if job.get_status(refresh=True) == JobStatus.QUEUED]
        assert len(queued) >= 2
    finally:
        resume(connection)
    assert all(client.result(job, timeout_s=10)["text"] == label for job in jobs)


@pytest.mark.parametrize("function", ["os.system", "builtins.eval", "subprocess.call"])
def test_job_naming_other_function_fails_and_runs_nothing(stack: Stack, tmp_path, function: str) -> None:
    marker = tmp_path / "ran"
    argument = f"touch {marker}" if function != "builtins.eval" else f"open({str(marker)!r}, 'w')"
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    job = queue.enqueue(function, argument)
    result = job.latest_result(timeout=10)
    assert result is not None and result.type == result.Type.FAILED
    assert "JobNotAllowed" in result.exc_string
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id in queue.failed_job_registry.get_job_ids()
    assert not marker.exists()
    label, image = SVG_IMAGES[2]
    assert stack.ocr(image_base64=image).json()["text"] == label


def test_failed_job_record_keeps_no_image(stack: Stack) -> None:
    image = SVG_IMAGES[0][1]
    queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
    job = queue.enqueue("os.system", kwargs={"image_base64": image})
    assert job.latest_result(timeout=10).type == Result.Type.FAILED
    record = str(stack.redis.client().hgetall(job.key))
    assert image[:60] not in record
    assert Job.fetch(job.id, connection=stack.redis.client(), serializer=JSONSerializer).kwargs == {
        "image_base64": f"<image removed: {len(image)} base64 characters>"
    }


def test_results_and_failures_expire(stack: Stack) -> None:
    response = stack.ocr(image_base64=SVG_IMAGES[3][1])
    job_id = response.json()["job_id"]
    connection = stack.redis.client()
    assert 0 < connection.ttl(f"rq:job:{job_id}") <= 300
    assert 0 < connection.ttl(f"rq:results:{job_id}") <= 300
    assert Job.fetch(job_id, connection=connection, serializer=JSONSerializer).failure_ttl == 3600
