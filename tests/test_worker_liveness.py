"""Dead workers drop out of the live count within seconds: ``GET /`` and the API's collector (which sends
a request out at once only while a worker is free) must not count a SIGKILLed worker, even after Redis
restarts from a snapshot that still holds its registration."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis as AsyncRedis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.rq_internals import workers_key
from shared.worker_liveness import count_live_workers
from testbed.support import RedisServer, Stack, wait_until
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]
# "Within a few seconds": with the default heartbeat (1 s) a dead worker's registration expires 3 s after
# its last beat; the rest is Redis restarting and the polling.
DROPS_OUT_WITHIN_S = 6
IDLE_WATCH_S = 5


def test_killed_workers_drop_out_of_the_count_within_seconds_across_a_redis_restart(tmp_path: Path) -> None:
    stack = Stack(tmp_path, workers=3, redis_snapshots=True)
    try:
        redis = stack.redis.client()
        assert redis.config_get("save")["save"] == "3600 1"
        # Idle live workers are never dropped: they beat more often than their registration expires.
        deadline = time.monotonic() + IDLE_WATCH_S
        while time.monotonic() < deadline:
            assert stack.http.get("/").json()["workers"] == 3
            time.sleep(0.2)
        for worker in stack.workers[1:]:
            os.kill(worker.pid, signal.SIGKILL)
            worker.process.wait(5)
        killed_at = time.monotonic()
        redis.save()  # the snapshot holds all three registrations
        stack.redis.stop()
        stack.redis.start()
        wait_until(lambda: stack.http.get("/").json()["workers"] == 1, DROPS_OUT_WITHIN_S, "the true count")
        assert time.monotonic() - killed_at < DROPS_OUT_WITHIN_S
        assert stack.http.get("/").json() == {"status": "ok", "redis": True, "workers": 1, "queue_depth": 0}
        assert "captchaocr_workers_alive 1.0" in stack.http.get("/metrics").text.splitlines()
        assert stack.ocr(image_base64=IMAGE).json()["text"] == LABEL
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # and the live one stays counted
            assert stack.http.get("/").json()["workers"] == 1
            time.sleep(0.2)
    finally:
        stack.close()


def test_a_worker_killed_just_after_a_job_drops_out_within_seconds(tmp_path: Path) -> None:
    """A job stretches the worker's registration to the job timeout (it cannot beat while it reads); once
    the job is done the registration must shrink back at once, not a job timeout later."""
    stack = Stack(tmp_path, workers=2)
    try:
        body = stack.ocr(image_base64=IMAGE).json()
        assert body["text"] == LABEL
        job = Job.fetch(body["job_id"], connection=stack.redis.client(), serializer=JSONSerializer)
        pid = int(job.worker_name.split(".")[-2])  # worker_name(): <host>.<pid>.<random>
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: stack.http.get("/").json()["workers"] == 1, DROPS_OUT_WITHIN_S, "the true count")
        assert time.monotonic() - killed_at < DROPS_OUT_WITHIN_S
    finally:
        stack.close()


def test_count_live_workers_counts_registrations_that_still_expire() -> None:
    """Against a real Redis: a member whose key is gone, or lingers without an expiry, is not counted."""
    server = RedisServer().start()
    try:
        redis = server.client()
        redis.sadd(workers_key("q"), "rq:worker:alive", "rq:worker:gone", "rq:worker:no-expiry")
        redis.hset("rq:worker:alive", "state", "idle")
        redis.expire("rq:worker:alive", 3)
        redis.hset("rq:worker:no-expiry", "successful_job_count", 1)
        assert asyncio.run(_count(server.url, "q")) == 1
        assert asyncio.run(_count(server.url, "no-such-queue")) == 0
    finally:
        server.stop()


async def _count(url: str, queue_name: str) -> int:
    client = AsyncRedis.from_url(url)
    try:
        return await count_live_workers(client, workers_key(queue_name))
    finally:
        await client.aclose()
