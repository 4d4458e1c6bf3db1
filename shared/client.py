"""A small helper for Python crawlers that enqueue captchas directly on Redis, without HTTP.

    from redis import Redis
    from shared.client import CaptchaClient

    client = CaptchaClient(Redis.from_url("redis://127.0.0.1:6390/0"))
    print(client.read(image_base64))        # {"ok": True, "number": 1234, ...} or {"ok": False, ...}

The result is the same structured object the API turns into its HTTP response.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq.job import Job

from shared.contract import OcrJob
from shared.queue import enqueue_read, make_queue
from shared.settings import Settings


class CaptchaClient:
    """Enqueue captcha jobs and collect their results, on the queue the workers listen to."""

    def __init__(self, connection: Redis, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.queue = make_queue(connection, self.settings)

    def submit(self, image_base64: str, digits: int | None = None, min_confidence: float | None = None) -> Job:
        """Enqueue one captcha and return its job at once (collect it later with :meth:`result`)."""
        payload = OcrJob(image_base64=image_base64, digits=digits, min_confidence=min_confidence)
        return enqueue_read(self.queue, payload, self.settings)

    def result(self, job: Job, timeout_s: int = 10) -> dict[str, Any] | None:
        """The job's result dict, waiting up to ``timeout_s`` whole seconds; None if none came."""
        result = job.latest_result(timeout=timeout_s)
        if result is None or result.type != result.Type.SUCCESSFUL:
            return None
        return result.return_value

    def read(self, image_base64: str, digits: int | None = None, timeout_s: int = 10) -> dict[str, Any] | None:
        """Enqueue one captcha and wait for its result."""
        return self.result(self.submit(image_base64, digits=digits), timeout_s=timeout_s)
