"""The collector resolves every request, whatever its job gives back, by the deadline plus a small grace.

A real Redis and real RQ jobs; no worker: each test writes the job's result itself (what a worker would,
or a malformed one), so the collector's own bookkeeping is what is tested.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis as AsyncRedis
from rq.job import Job
from rq.results import Result

from api.ocr.collector import RESOLVE_GRACE_S, Collector, Enqueue, JobFailed
from shared.contract import OcrJob
from shared.queue import cancel_if_queued, enqueue_collected, enqueue_read, make_queue
from shared.settings import Settings
from testbed.support import RedisServer
from tests.prerequisites import corpus_images

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]
ANSWER = {"ok": True, "number": int(LABEL), "text": LABEL, "confidence": 0.99}
TIMEOUT_S = 1.0
SLACK_S = 0.3  # event loop and thread hops on a busy 2-core machine


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def run(redis: RedisServer, scenario: Callable[[AsyncRedis, Settings], Awaitable[object]]) -> object:
    """Run ``scenario`` with an asyncio client of ``redis`` and settings naming it."""

    async def main() -> object:
        settings = Settings(redis_url=redis.url)
        async_redis = AsyncRedis.from_url(redis.url)
        try:
            return await scenario(async_redis, settings)
        finally:
            await async_redis.aclose()

    return asyncio.run(main())


def collector(
    async_redis: AsyncRedis, settings: Settings, enqueue_one: Enqueue, enqueue_many: Enqueue
) -> Collector:
    return Collector(async_redis, settings.queue_name, enqueue_one=enqueue_one, enqueue_many=enqueue_many,
                     cancel=cancel_if_queued, max_requests=3, wait_ms=50)  # fmt: skip


def test_a_short_result_list_resolves_every_request_by_the_deadline(redis: RedisServer) -> None:
    """One request keeps the only worker busy; three more are collected into a job whose result list holds
    one answer: that one is answered, the other two fail, and none waits past the deadline + grace."""

    async def scenario(async_redis: AsyncRedis, settings: Settings) -> list[object]:
        queue = make_queue(redis.client(), settings)

        def enqueue_one(jobs: list[OcrJob]) -> Job:  # nobody answers it: the worker stays busy
            return enqueue_read(queue, jobs[0], settings, wait_s=TIMEOUT_S)

        def enqueue_many(jobs: list[OcrJob]) -> Job:
            job = enqueue_collected(queue, jobs, settings, wait_s=TIMEOUT_S)
            Result.create(job, Result.Type.SUCCESSFUL, ttl=60, return_value={"results": [ANSWER]})
            return job

        reader = collector(async_redis, settings, enqueue_one, enqueue_many)
        first = asyncio.create_task(reader.read(OcrJob(image_base64=IMAGE), TIMEOUT_S))
        await asyncio.sleep(0.2)  # the first job is out and in flight
        collected = [reader.read(OcrJob(image_base64=IMAGE), TIMEOUT_S) for _ in range(3)]
        started = time.monotonic()
        bound = TIMEOUT_S + RESOLVE_GRACE_S + SLACK_S
        outcomes = await asyncio.wait_for(asyncio.gather(first, *collected, return_exceptions=True), bound)
        assert time.monotonic() - started < bound
        return outcomes

    first, answered, *failed = run(redis, scenario)
    assert first[1] is None  # the busy worker never answered: a timeout
    assert answered[1] == ANSWER and answered[0].endswith("_0")
    assert [type(outcome) for outcome in failed] == [JobFailed, JobFailed]
    assert [outcome.job_id.rpartition("_")[2] for outcome in failed] == ["1", "2"]


def test_a_malformed_result_fails_each_request_it_cannot_answer(redis: RedisServer) -> None:
    async def scenario(async_redis: AsyncRedis, settings: Settings) -> list[object]:
        queue = make_queue(redis.client(), settings)

        def enqueue_many(jobs: list[OcrJob]) -> Job:
            job = enqueue_collected(queue, jobs, settings, wait_s=TIMEOUT_S)
            malformed = {"results": [ANSWER, "not a dict"]}
            Result.create(job, Result.Type.SUCCESSFUL, ttl=60, return_value=malformed)
            return job

        reader = collector(async_redis, settings, enqueue_many, enqueue_many)
        reader.workers = 0  # no worker free: every request is collected
        reads = [reader.read(OcrJob(image_base64=IMAGE), TIMEOUT_S) for _ in range(3)]
        bound = TIMEOUT_S + RESOLVE_GRACE_S
        return await asyncio.wait_for(asyncio.gather(*reads, return_exceptions=True), bound)

    answered, *failed = run(redis, scenario)
    assert answered[1] == ANSWER
    assert [type(outcome) for outcome in failed] == [JobFailed, JobFailed]


def test_a_request_whose_enqueue_hangs_past_the_deadline_gets_its_answer_within_the_grace(
    redis: RedisServer,
) -> None:
    """Redis slow to take the job: the request must still be answered (no worker answered) in time."""

    async def scenario(async_redis: AsyncRedis, settings: Settings) -> tuple[float, object, int]:
        queue = make_queue(redis.client(), settings)

        def slow_enqueue(jobs: list[OcrJob]) -> Job:
            time.sleep(TIMEOUT_S + RESOLVE_GRACE_S + 2)
            return enqueue_read(queue, jobs[0], settings, wait_s=TIMEOUT_S)

        reader = collector(async_redis, settings, slow_enqueue, slow_enqueue)
        started = time.monotonic()
        outcome = await reader.read(OcrJob(image_base64=IMAGE), TIMEOUT_S)
        elapsed = time.monotonic() - started
        await asyncio.gather(*reader.tasks)  # the job goes out late, and is cancelled at once
        return elapsed, outcome, queue.count

    elapsed, outcome, left_queued = run(redis, scenario)
    assert outcome == (None, None) and left_queued == 0
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + RESOLVE_GRACE_S + SLACK_S
