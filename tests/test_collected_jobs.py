"""Requests collected into one read_captchas job, with a real Redis, real RQ workers and real HTTP."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from shared.contract import BATCH_FUNCTION, JOB_FUNCTION
from testbed.support import Stack, wait_until
from tests.prerequisites import corpus_images
from tests.test_faults import slow_image

pytestmark = pytest.mark.slow  # starts real processes

SVG = corpus_images("npm_svg_captcha", 12)


@pytest.fixture(scope="module")
def collecting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker, and a long collection wait so that concurrent requests are collected for certain."""
    running = Stack(tmp_path_factory.mktemp("collecting"), workers=1, collect_wait_ms="2000")
    yield running
    running.close()


def post_all(stack: Stack, images: list[str]) -> list[httpx.Response]:
    """POST every image to /ocr at the same time, each on its own connection."""

    def post(image: str) -> httpx.Response:
        with httpx.Client(base_url=str(stack.http.base_url), timeout=30) as client:
            return client.post("/ocr", json={"image_base64": image})

    with ThreadPoolExecutor(len(images)) as pool:
        return list(pool.map(post, images))


def collected_job(stack: Stack, request_job_id: str) -> Job:
    return Job.fetch(request_job_id.rpartition("_")[0], stack.redis.client(), serializer=JSONSerializer)


def test_concurrent_requests_share_jobs_and_each_gets_its_own_answer(collecting: Stack) -> None:
    responses = post_all(collecting, [image for _, image in SVG])
    assert [r.status_code for r in responses] == [200] * len(SVG), [r.text for r in responses]
    assert [r.json()["text"] for r in responses] == [label for label, _ in SVG]
    job_ids = [r.json()["job_id"] for r in responses]
    collected = [job_id for job_id in job_ids if "_" in job_id]
    assert collected, "no request was collected with others"
    job = collected_job(collecting, collected[0])
    assert job.func_name == BATCH_FUNCTION and job.get_status() == JobStatus.FINISHED
    assert len(job.kwargs["items"]) >= 2
    assert all(item["image_base64"].startswith("<image removed") for item in job.kwargs["items"])
    for job_id, (label, _) in zip(job_ids, SVG, strict=True):  # each request can be looked up later
        looked_up = collecting.http.get(f"/jobs/{job_id}").json()
        assert looked_up["status"] == "finished" and looked_up["result"]["text"] == label
    assert collecting.http.get(f"/jobs/{collected[0].rpartition('_')[0]}_99").status_code == 404


def test_a_lone_request_is_not_held_for_others(collecting: Stack) -> None:
    label, image = SVG[0]
    started = time.monotonic()
    response = collecting.ocr(image_base64=image)
    assert time.monotonic() - started < 1.0  # the collection wait is 2 s: it was not applied
    assert response.json()["text"] == label
    job = Job.fetch(response.json()["job_id"], collecting.redis.client(), serializer=JSONSerializer)
    assert job.func_name == JOB_FUNCTION


def test_a_bad_image_in_a_collected_job_refuses_only_that_one(collecting: Stack) -> None:
    # A PNG cut short: its header passes the API's check, its pixels fail the worker's decode.
    truncated = base64.b64encode(base64.b64decode(SVG[5][1])[:300]).decode()
    images = [image for _, image in SVG[:5]] + [truncated] + [image for _, image in SVG[6:8]]
    redis = collecting.redis.client()
    earlier_jobs = set(redis.scan_iter("rq:job:*"))
    new_jobs = lambda: len(set(redis.scan_iter("rq:job:*")) - earlier_jobs)  # noqa: E731
    worker = collecting.workers[0].pid
    os.kill(worker, signal.SIGSTOP)  # the worker holds the first job: every later request is collected
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post_all, collecting, [SVG[8][1]])
            wait_until(lambda: new_jobs() == 1, 10, "the first request's job")
            pending = pool.submit(post_all, collecting, images)
            wait_until(lambda: new_jobs() == 2, 10, "the collected job (the 2 s collection wait)")
            os.kill(worker, signal.SIGCONT)
            responses, alone = pending.result(timeout=30), first.result(timeout=30)[0]
    finally:
        os.kill(worker, signal.SIGCONT)
    assert "_" not in alone.json()["job_id"] and alone.json()["text"] == SVG[8][0]
    bad = responses[5].json()
    assert responses[5].status_code == 422 and bad["error"] == "not_an_image" and bad["job_id"]
    job = collected_job(collecting, bad["job_id"])
    assert job.func_name == BATCH_FUNCTION and len(job.kwargs["items"]) == len(images)
    good = responses[:5] + responses[6:]
    assert [r.json()["text"] for r in good] == [label for label, _ in SVG[:5] + SVG[6:8]]


def test_direct_read_captchas_job_answers_item_by_item(collecting: Stack) -> None:
    queue = Queue("captchaocr", connection=collecting.redis.client(), serializer=JSONSerializer)
    items = [{"image_base64": SVG[0][1], "digits": 4}, {"image_base64": "%%%"}, {"image": "x"}, "not an object"]
    results = queue.enqueue(BATCH_FUNCTION, kwargs={"items": items}).latest_result(timeout=10).return_value
    outcomes = [result.get("text") or result["error"] for result in results["results"]]
    assert outcomes == [SVG[0][0], "malformed_base64", "invalid_job", "invalid_job"]


def test_a_killed_workers_collected_job_ends_in_503s_and_a_failed_job(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=1, wait_timeout_s="3", job_timeout_s="2", maintenance_interval_s="1",
                  collect_wait_ms="5000")  # fmt: skip
    try:
        image = slow_image()  # about 150 ms per read: the first goes alone, the next three together
        queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
        started_batches = lambda: [job_id for job_id in queue.started_job_registry.get_job_ids()  # noqa: E731
                                   if Job.fetch(job_id, stack.redis.client(), serializer=JSONSerializer).func_name
                                   == BATCH_FUNCTION]  # fmt: skip
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(post_all, stack, [image] * 4)
            wait_until(started_batches, 10, "the worker to start the collected job")
            batch_id = started_batches()[0]
            os.kill(stack.workers[0].pid, signal.SIGKILL)
            responses = pending.result(timeout=30)
        assert time.monotonic() - started < 3 + 2  # the wait limit, not a hang
        in_batch = [r for r in responses if r.json().get("job_id", "").startswith(f"{batch_id}_")]
        assert len(in_batch) == 3 and all(r.status_code == 503 for r in in_batch)
        assert all(r.headers["retry-after"] == "1" for r in in_batch)
        stack.workers[0] = stack.start_worker()
        job = Job.fetch(batch_id, connection=stack.redis.client(), serializer=JSONSerializer)
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FAILED, 30, "the abandoned job to fail")
        assert batch_id in queue.failed_job_registry.get_job_ids()
        assert image[:100] not in str(stack.redis.client().hgetall(job.key))
        assert stack.ocr(image_base64=SVG[0][1]).json()["text"] == SVG[0][0]
    finally:
        stack.close()
