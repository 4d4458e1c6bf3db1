"""How the collector's requests reach the queue: one request as its own ``read_captcha`` job, or
several collected into one ``read_captchas`` job, each admitted against ``max_queue_depth``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.client import Pipeline
from rq import Queue
from rq.job import Job

from shared.contract import OcrJob
from shared.queue import enqueue_collected, enqueue_read, enqueue_within_depth
from shared.settings import Settings


@dataclass(frozen=True)
class Dispatcher:
    """Made at start-up from the queue alone (not from the routes), and handed to the collector. Its
    methods run in a thread (RQ's client is synchronous) and raise :class:`~shared.queue.QueueFull`."""

    queue: Queue
    settings: Settings

    def enqueue_one(self, jobs: list[OcrJob]) -> Job:
        """One request as its own job; dropped if no worker took it within ``wait_timeout_s``."""
        return self._admitted(lambda pipe: enqueue_read(
            self.queue, jobs[0], self.settings, self.settings.wait_timeout_s, pipeline=pipe))  # fmt: skip

    def enqueue_many(self, jobs: list[OcrJob]) -> Job:
        """Requests collected while every worker was busy, as one job."""
        return self._admitted(lambda pipe: enqueue_collected(
            self.queue, jobs, self.settings, self.settings.wait_timeout_s, pipeline=pipe))  # fmt: skip

    def _admitted(self, enqueue: Callable[[Pipeline], Job]) -> Job:
        max_depth = self.settings.max_queue_depth
        return enqueue_within_depth(self.queue, max_depth, lambda pipe: [enqueue(pipe)])[0]
