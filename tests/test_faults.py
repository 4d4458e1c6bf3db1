"""Faults with the real processes: no worker answering, and Redis going away and coming back."""

from __future__ import annotations

import base64
import io
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from rq import Queue
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from api.ocr.collector import RESOLVE_GRACE_S
from shared.client import CaptchaClient
from testbed.support import Stack, wait_until
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


def test_no_worker_answering_is_a_503_with_retry_after_and_job_cancelled(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=0, wait_timeout_s="0.5")
    try:
        started = time.monotonic()
        response = stack.ocr(image_base64=IMAGE)
        assert 0.5 <= time.monotonic() - started < 5  # the configured wait, neither cut short nor a hang
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert "no worker answered" in body["detail"]
        job = Job.fetch(body["job_id"], connection=stack.redis.client(), serializer=JSONSerializer)
        assert job.get_status() == JobStatus.CANCELED
        # A worker arriving later must not spend an inference on the abandoned job.
        stack.workers.append(stack.start_worker())
        wait_until(lambda: stack.http.get("/").json()["workers"] == 1, 60, "the late worker")
        assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL
        assert not stack.redis.client().exists(Result.get_key(job.id)), "the abandoned job was executed"
    finally:
        stack.close()


def test_a_wait_longer_than_redis_py_default_read_timeout_lasts_the_configured_time(tmp_path: Path) -> None:
    """redis-py 8 gives a client a 5 s read timeout by default: a 7 s wait must still end as a wait
    (no worker answered, with the job id, the job cancelled), not as a false "Redis unreachable"."""
    stack = Stack(tmp_path, workers=0, wait_timeout_s="7")
    try:
        started = time.monotonic()
        response = stack.ocr(image_base64=IMAGE)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        body = response.json()
        assert "no worker answered within 7 s" in body["detail"] and body["job_id"]
        assert 7 <= elapsed < 7 + RESOLVE_GRACE_S + 0.5
        job = Job.fetch(body["job_id"], connection=stack.redis.client(), serializer=JSONSerializer)
        assert job.get_status() == JobStatus.CANCELED
    finally:
        stack.close()


def test_a_redis_that_stops_answering_during_a_wait_is_noticed_within_its_timeout(tmp_path: Path) -> None:
    """Waits block a second at a time, so a hung Redis still ends a long wait after about
    ``redis_timeout_s`` (plus that second), not after the wait limit or redis-py's 5 s default."""
    stack = Stack(tmp_path, workers=0, wait_timeout_s="10", redis_timeout_s="1")
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(stack.ocr, image_base64=IMAGE)
            wait_until(lambda: stack.redis.client().llen("rq:queue:captchaocr"), 10, "the job", every_s=0.01)
            stack.redis.process.send_signal(signal.SIGSTOP)  # alive, connected, answering nothing
            stopped = time.monotonic()
            response = pending.result(timeout=30)
        assert response.status_code == 503 and "Redis unreachable" in response.json()["detail"]
        assert time.monotonic() - stopped < 1 + 1 + 1  # redis_timeout_s + one block + slack
    finally:
        stack.redis.process.send_signal(signal.SIGCONT)
        stack.close()


def test_redis_restart_gives_503_then_recovers_without_restarting_processes(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=1, wait_timeout_s="2")
    try:
        assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL
        pids = [stack.api.pid, *(w.pid for w in stack.workers)]
        stack.redis.stop()
        response = stack.ocr(image_base64=IMAGE)
        assert response.status_code == 503
        assert "Redis unreachable" in response.json()["detail"]
        health = stack.http.get("/")
        assert health.status_code == 503  # what load balancers and the compose health check look at
        assert health.json() == {"status": "degraded", "redis": False, "workers": 0, "queue_depth": None}
        time.sleep(5)
        stack.redis.start()
        wait_until(lambda: stack.ocr(image_base64=IMAGE).json()["text"] == LABEL, 30, "answers after restart")
        wait_until(lambda: stack.http.get("/").json()["workers"] == 1, 30, "the worker registering again")
        assert [stack.api.pid, *(w.pid for w in stack.workers)] == pids
        assert stack.api.alive() and all(w.alive() for w in stack.workers)
    finally:
        stack.close()


def slow_image() -> str:
    """A large, valid image that takes a worker about 150 ms to refuse: a window to kill it in (the tests
    poll for the job's start every 5 ms, so the window is not lost to the polling)."""
    image = Image.new("RGB", (4000, 1990), "white")
    draw = ImageDraw.Draw(image)
    for x in range(0, 4000, 37):
        draw.line([(x, 0), (4000 - x, 1990)], fill=(x % 255, 0, 0), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_worker_killed_holding_a_job_gives_503_and_a_failed_job(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=1, wait_timeout_s="3", job_timeout_s="2", maintenance_interval_s="1")
    try:
        image = slow_image()
        connection = stack.redis.client()
        queue = Queue("captchaocr", connection=connection, serializer=JSONSerializer)
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(stack.ocr, image_base64=image)
            wait_until(lambda: queue.started_job_registry.get_job_ids(), 10, "the worker to start the job",
                       every_s=0.005)  # fmt: skip
            job_id = queue.started_job_registry.get_job_ids()[0]
            os.kill(stack.workers[0].pid, signal.SIGKILL)
            response = pending.result(timeout=30)
        assert response.status_code == 503 and response.json()["job_id"] == job_id
        assert time.monotonic() - started < 3 + 2  # the wait limit, not a hang
        stack.workers[0] = stack.start_worker()  # what PM2 does (tests/test_pm2_stack.py)
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FAILED, 30, "the abandoned job to fail")
        assert job_id in queue.failed_job_registry.get_job_ids()
        assert job_id not in queue.started_job_registry.get_job_ids()
        assert image[:100] not in str(connection.hgetall(job.key))  # no image in the failed record
        assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL
    finally:
        stack.close()


def test_queue_deeper_than_the_limit_is_refused_at_once(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=0, max_queue_depth="2", wait_timeout_s="5")
    try:
        client = CaptchaClient(stack.redis.client())
        client.submit(IMAGE), client.submit(IMAGE)  # a backlog no worker takes
        started = time.monotonic()
        response = stack.ocr(image_base64=IMAGE)
        assert time.monotonic() - started < 1
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "queue full" in response.json()["detail"]
        batch = stack.http.post("/ocr/batch", json={"images": [IMAGE]})
        assert batch.status_code == 503
        task = stack.http.post("/createTask", json={"clientKey": "k", "task": {"type": "ImageToTextTask",
                                                                                "body": IMAGE}})
        assert task.json()["errorCode"] == "ERROR_NO_SLOT_AVAILABLE"
        assert Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer).count == 2
        # a refused job is taken back out whole: no hash left behind for the dashboard or a worker
        assert len(list(stack.redis.client().scan_iter("rq:job:*"))) == 2
    finally:
        stack.close()


def test_redis_lost_while_a_worker_holds_a_job_leaves_the_worker_running(tmp_path: Path) -> None:
    """The worker's own loop, not only its idle wait, must survive Redis going away: saving the result
    fails, RQ's loop ends, and the process must wait for Redis rather than exit."""
    stack = Stack(tmp_path, workers=1, wait_timeout_s="3")
    try:
        queue = Queue("captchaocr", connection=stack.redis.client(), serializer=JSONSerializer)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(stack.ocr, image_base64=slow_image())
            wait_until(lambda: queue.started_job_registry.get_job_ids(), 10, "the worker to start the job",
                       every_s=0.005)  # fmt: skip
            stack.redis.stop()
            assert pending.result(timeout=30).status_code == 503
        time.sleep(3)
        stack.redis.start()
        wait_until(lambda: stack.ocr(image_base64=IMAGE).json()["text"] == LABEL, 30, "answers after restart")
        assert stack.workers[0].alive()
    finally:
        stack.close()
