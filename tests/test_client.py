"""The crawler helper (shared/client.py) gets the API's limits: admission, expiry and cancellation.

Against a real Redis; the last test reads with the real worker of the shared stack.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
from rq.job import JobStatus

from shared.client import CaptchaClient
from shared.queue import UNCLAIMED_MARGIN_S, QueueFull, make_queue
from shared.settings import Settings
from testbed.support import RedisServer, Stack
from tests.prerequisites import corpus_images

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_full_queue_refuses_a_direct_enqueue(redis: RedisServer) -> None:
    settings = Settings(redis_url=redis.url, max_queue_depth=2)
    client = CaptchaClient(redis.client(), settings)
    client.submit(IMAGE), client.submit(IMAGE)  # no worker: a backlog
    with pytest.raises(QueueFull, match="queue full: 2 jobs waiting"):
        client.submit(IMAGE)
    assert make_queue(redis.client(), settings).count == 2
    assert len(list(redis.client().scan_iter("rq:job:*"))) == 2  # the refused job left nothing behind


def test_a_direct_job_expires_after_its_wait(redis: RedisServer) -> None:
    settings = Settings(redis_url=redis.url, wait_timeout_s=4.5)
    client = CaptchaClient(redis.client(), settings)
    assert client.submit(IMAGE).ttl == math.ceil(settings.wait_timeout_s) + UNCLAIMED_MARGIN_S
    assert client.submit(IMAGE, wait_s=2).ttl == 2 + UNCLAIMED_MARGIN_S


def test_a_job_the_client_gave_up_on_is_cancelled(redis: RedisServer) -> None:
    client = CaptchaClient(redis.client(), Settings(redis_url=redis.url))
    job = client.submit(IMAGE)
    started = time.monotonic()
    assert client.result(job, timeout_s=1.5) is None
    assert 1.5 <= time.monotonic() - started < 2.5  # fractions of a second count
    assert job.get_status(refresh=True) == JobStatus.CANCELED
    assert client.read(IMAGE, timeout_s=0.5) is None
    assert make_queue(redis.client(), client.settings).count == 0  # no worker will spend a read on them


def test_a_client_from_settings_waits_longer_than_its_read_timeout(redis: RedisServer) -> None:
    """Built from settings (so a Sentinel URL works too), with a short read timeout: a longer wait for
    a result still ends as a wait, not as a Redis timeout."""
    client = CaptchaClient.from_settings(Settings(redis_url=redis.url, redis_timeout_s=0.5))
    started = time.monotonic()
    assert client.read(IMAGE, timeout_s=2) is None
    assert 2 <= time.monotonic() - started < 3


@pytest.mark.slow
def test_read_passes_min_confidence_on(stack: Stack) -> None:
    client = CaptchaClient(stack.redis.client())
    assert client.read(IMAGE)["text"] == LABEL
    refused = client.read(IMAGE, min_confidence=1.0)
    assert refused["ok"] is False and refused["error"] == "low_confidence"
