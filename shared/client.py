"""A small helper for Python crawlers that enqueue captchas directly on Redis, without HTTP.

    from shared.client import CaptchaClient

    client = CaptchaClient.from_settings()  # REDIS_URL / CAPTCHAOCR_* from the environment
    print(client.read(image_base64))        # {"ok": True, "number": 1234, ...} or {"ok": False, ...}

The result is the same structured object the API turns into its HTTP response. The client keeps the
API's limits: a full queue refuses a job (:class:`~shared.queue.QueueFull`), a job no worker took within
its wait is dropped, and one the client stopped waiting for is cancelled.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq.job import Job

from shared.connection import connect
from shared.contract import OcrAnswer, OcrJob, OcrRefusal
from shared.outcome import Timeout, outcome_of
from shared.queue import cancel_if_queued, enqueue_read, enqueue_within_depth, make_queue
from shared.results import RESULT_BLOCK_S, wait_for_result
from shared.settings import Settings


class CaptchaClient:
    """Enqueue captcha jobs and collect their results, on the queue the workers listen to.

    ``connection`` must allow a read to take :data:`~shared.results.RESULT_BLOCK_S` (redis-py's default
    5 s read timeout does); :meth:`from_settings` makes such a client."""

    def __init__(self, connection: Redis, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.queue = make_queue(connection, self.settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> CaptchaClient:
        """A client of the configured Redis (a ``redis+sentinel://`` URL included), with read timeouts."""
        settings = settings or Settings()
        return cls(connect(settings, blocking_s=RESULT_BLOCK_S), settings)

    def submit(
        self, image_base64: str, digits: int | None = None, min_confidence: float | None = None,
        wait_s: float | None = None, site: str | None = None,
    ) -> Job:  # fmt: skip
        """Enqueue one captcha and return its job at once (collect it later with :meth:`result`).

        Raises :class:`~shared.queue.QueueFull` when ``max_queue_depth`` jobs already wait. A job no
        worker took within ``wait_s`` (default ``wait_timeout_s``) is dropped."""
        payload = OcrJob(image_base64=image_base64, digits=digits, min_confidence=min_confidence, site=site)
        wait_s = self.settings.wait_timeout_s if wait_s is None else wait_s
        return enqueue_within_depth(self.queue, self.settings.max_queue_depth, lambda pipe: [
            enqueue_read(self.queue, payload, self.settings, wait_s=wait_s, pipeline=pipe)])[0]  # fmt: skip

    def result(self, job: Job, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The job's result dict, waiting up to ``timeout_s`` (default ``wait_timeout_s``); None if none
        came or the job failed. A job still queued then is cancelled, so no worker spends a read on it."""
        timeout_s = self.settings.wait_timeout_s if timeout_s is None else timeout_s
        outcome = outcome_of(wait_for_result(job, timeout_s), job.id, timeout_s)
        if isinstance(outcome, Timeout):
            cancel_if_queued(job)
        return outcome.model_dump(mode="json") if isinstance(outcome, OcrAnswer | OcrRefusal) else None

    def read(
        self, image_base64: str, digits: int | None = None, min_confidence: float | None = None,
        timeout_s: float | None = None, site: str | None = None,
    ) -> dict[str, Any] | None:  # fmt: skip
        """Enqueue one captcha and wait for its result (the job is dropped if unread after ``timeout_s``)."""
        job = self.submit(image_base64, digits=digits, min_confidence=min_confidence, wait_s=timeout_s,
                          site=site)
        return self.result(job, timeout_s=timeout_s)
