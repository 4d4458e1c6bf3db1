"""Faults with the real processes: no worker answering, and Redis going away and coming back."""

from __future__ import annotations

import time
from pathlib import Path

from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from tests.support import Stack, corpus_images, wait_until

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


def test_no_worker_answering_is_a_503_with_retry_after_and_job_cancelled(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=0, wait_timeout_s="0.5")
    try:
        started = time.monotonic()
        response = stack.ocr(image_base64=IMAGE)
        assert time.monotonic() - started < 5
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


def test_redis_restart_gives_503_then_recovers_without_restarting_processes(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=1, wait_timeout_s="2")
    try:
        assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL
        pids = [stack.api.pid, *(w.pid for w in stack.workers)]
        stack.redis.stop()
        response = stack.ocr(image_base64=IMAGE)
        assert response.status_code == 503
        assert "Redis unreachable" in response.json()["detail"]
        assert stack.http.get("/").json() == {"status": "degraded", "redis": False, "workers": 0,
                                             "queue_depth": None}
        time.sleep(5)
        stack.redis.start()
        wait_until(lambda: stack.ocr(image_base64=IMAGE).json()["text"] == LABEL, 30, "answers after restart")
        wait_until(lambda: stack.http.get("/").json()["workers"] == 1, 30, "the worker registering again")
        assert [stack.api.pid, *(w.pid for w in stack.workers)] == pids
        assert stack.api.alive() and all(w.alive() for w in stack.workers)
    finally:
        stack.close()
