"""Every way a job can fail in a worker, made to happen for real (no mocks), and what each request sees.

- A collected ``read_captchas`` job that runs past ``job_timeout_s``: RQ's own timeout stops it, and
  every request in it gets a 500 naming its part of the job.
- RQ's failure log line carries the job's arguments (``extra``: the images) and LOG_FORMAT=json writes
  them out: no image byte may reach the worker's log.
- A worker killed while reading one image of a batch: RQ's maintenance (in the other worker) fails the
  abandoned job, and that item alone is ``worker_failed``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from shared.contract import BATCH_FUNCTION
from testbed.support import Stack, wait_until
from tests.prerequisites import corpus_images
from tests.test_faults import slow_image

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]
JOB_TIMEOUT_S = 1
WORKER_FAILED = "the worker failed while reading this image"


def noise_image(seed: int) -> str:
    """Grey noise, 2048x128: every reading is improbable, so each model reads every look, and eight digits
    of it take a worker about half a second with three models (a captcha: tens of ms)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (128, 2048), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two workers (one does RQ's maintenance when the other is killed) with a 1 s job timeout, all three
    models (slower reads), a long collection wait and a wait for results well past the abandoned-job delay."""
    running = Stack(
        tmp_path_factory.mktemp("failing"), workers=2, job_timeout_s=str(JOB_TIMEOUT_S),
        maintenance_interval_s="1", collect_wait_ms="1000", wait_timeout_s="20",
        models="common_old,common,digits_crnn", log_format="json",
    )  # fmt: skip
    yield running
    running.close()


def post_all(stack: Stack, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    """POST every body to /ocr at the same time, each on its own connection."""

    def post(body: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=str(stack.http.base_url), timeout=60) as client:
            return client.post("/ocr", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def fetch(stack: Stack, job_id: str) -> Job:
    return Job.fetch(job_id, stack.redis.client(), serializer=JSONSerializer)


@pytest.fixture(scope="module")
def timed_out(failing: Stack) -> tuple[list[str], list[httpx.Response]]:
    """Eight noise images at once: two go out alone (a worker each is free), the other six are collected
    into one job that needs seconds, six times the job timeout."""
    images = [noise_image(seed) for seed in range(8)]
    return images, post_all(failing, [{"image_base64": image, "digits": 8} for image in images])


def test_a_job_past_its_timeout_is_a_500_for_each_of_its_requests(
    failing: Stack, timed_out: tuple[list[str], list[httpx.Response]]
) -> None:
    _, responses = timed_out
    assert all(r.status_code in (422, 500) for r in responses), [r.text for r in responses]
    failed = {r.json()["job_id"] for r in responses if r.status_code == 500}
    jobs = [fetch(failing, job_id) for job_id in failed]
    collected = [job for job in jobs if job.func_name == BATCH_FUNCTION]
    assert collected, [r.text for r in responses]
    job = max(collected, key=lambda job: len(job.kwargs["items"]))  # failed whole: its requests name it
    in_job = [r for r in responses if r.json().get("job_id") == job.id]
    assert len(in_job) == len(job.kwargs["items"]) >= 2
    assert all(r.json() == {"detail": WORKER_FAILED, "job_id": job.id} for r in in_job), in_job[0].text
    assert job.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in (job.latest_result().exc_string or "")
    # job_timeout_s itself: the API gave the job that timeout, and RQ stopped it there (the six reads
    # take seconds).
    assert job.timeout == JOB_TIMEOUT_S
    assert job.ended_at is not None and job.started_at is not None
    assert (job.ended_at - job.started_at).total_seconds() < JOB_TIMEOUT_S + 1
    looked_up = failing.http.get(f"/jobs/{job.id}").json()
    assert looked_up["status"] == "failed"
    assert failing.ocr(image_base64=IMAGE).json()["text"] == LABEL  # the workers go on


def test_no_image_reaches_the_workers_json_log(
    failing: Stack, timed_out: tuple[list[str], list[httpx.Response]]
) -> None:
    images, responses = timed_out
    failed = {r.json()["job_id"] for r in responses if r.status_code == 500}
    log = (failing.tmp / "worker.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    failures = [r for r in records if r.get("job_id") in failed and r["levelname"] == "ERROR"]
    assert failures and "exception raised while executing" in failures[0]["message"], log[-3000:]
    leaked = [index for index, image in enumerate(images) if image[200:260] in log]
    assert not leaked, f"images {leaked} are in the worker's log"


def test_a_worker_killed_reading_a_batch_item_fails_that_item_alone(failing: Stack) -> None:
    image = slow_image()  # about 150 ms to refuse: a window to kill its worker in
    queue = Queue("captchaocr", connection=failing.redis.client(), serializer=JSONSerializer)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(failing.http.post, "/ocr/batch", json={"images": [image, IMAGE]})

        def started() -> list[str]:  # the large image's job, once a worker has it
            jobs = [fetch(failing, job_id) for job_id in queue.started_job_registry.get_job_ids()]
            return [job.id for job in jobs if job.kwargs.get("image_base64") == image]

        wait_until(started, 10, "a worker to start the large image's job", every_s=0.005)
        job_id = started()[0]
        holder = fetch(failing, job_id).worker_name
        victim = next(w for w in failing.workers if holder and f".{w.pid}." in holder)
        os.kill(victim.pid, signal.SIGKILL)
        started = time.monotonic()
        response = pending.result(timeout=60)
    failing.workers[failing.workers.index(victim)] = failing.start_worker()  # what PM2 does
    first, second = response.json()["results"]
    assert first == {"error": "worker_failed", "detail": WORKER_FAILED, "job_id": job_id}, response.text
    assert fetch(failing, job_id).get_status() == JobStatus.FAILED
    assert time.monotonic() - started < 20  # failed by the maintenance, not answered at the wait limit
    assert second["text"] == LABEL, second  # read by the other worker
    wait_until(lambda: failing.http.get("/").json()["workers"] == 2, 60, "the replacement worker")
