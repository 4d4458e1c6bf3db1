"""The RQ worker class: no fork per job, and only the project's own job functions run."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import now, utcformat
from rq.worker import WorkerStatus

from worker.jobs import ALLOWED_FUNCTIONS

IMAGE_FIELD = "image_base64"
ABANDONED_AFTER_TIMEOUT_S = 5


def forget_image(job: Job, *exc_info: object) -> bool:
    """Exception handler: a failed job stays in the failed registry for ``failure_ttl``, so keep its
    arguments for the operators but not the image. Returns True so RQ's other handling goes on."""
    kwargs = job.kwargs if isinstance(job.kwargs, dict) else {}
    image = kwargs.get(IMAGE_FIELD)
    if isinstance(image, str):
        job.kwargs = {**kwargs, IMAGE_FIELD: f"<image removed: {len(image)} base64 characters>"}
        job.description = f"{job.func_name}(image removed)"
    return True


def worker_name() -> str:
    """Unique, and readable in rq-dashboard: which host and process a worker is."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class CaptchaWorker(SimpleWorker):
    """A :class:`SimpleWorker` (the model stays loaded; forking per job costs 15-20 ms and is unsafe
    with an ONNX Runtime session made before the fork) that refuses any job naming a callable outside
    :data:`ALLOWED_FUNCTIONS`: such a job fails with a clear error and nothing is imported or run."""

    # Retry a lost Redis every few seconds rather than backing off to RQ's default of a minute.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Runs for every failure, in this worker and for jobs abandoned by a dead worker that this
        # worker's registry maintenance moves to the failed registry.
        self.push_exc_handler(forget_image)

    def execute_job(self, job: Job, queue: Queue) -> None:
        if job.func_name in ALLOWED_FUNCTIONS:
            super().execute_job(job, queue)
            return
        self.log.warning("Worker %s: refused job %s naming %r", self.name, job.id, job.func_name)
        forget_image(job)
        self.prepare_execution(job)
        self.handle_job_failure(
            job,
            queue,
            exc_string=f"JobNotAllowed: {job.func_name!r} is not a CaptchaOCR job function; nothing ran.",
        )
        self.set_state(WorkerStatus.IDLE)

    @property
    def dequeue_timeout(self) -> int:
        """Wake from the blocking dequeue every maintenance interval (RQ waits about 7 minutes), so an
        idle worker still runs the maintenance that fails abandoned jobs."""
        return max(1, self.maintenance_interval)

    def get_heartbeat_ttl(self, job: Job) -> int:
        """How long a started job may go without news before maintenance calls it abandoned: a little
        over the job timeout (RQ adds a minute), so a job whose worker was killed fails soon."""
        return int(job.timeout or self.queue_class.DEFAULT_TIMEOUT) + ABANDONED_AFTER_TIMEOUT_S

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat in one round trip, which also notices a Redis that lost this worker's
        registration (restarted or flushed) and registers again, so dashboards and the health check
        keep seeing a worker that reconnected by itself."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        self.last_heartbeat = now()
        with self.connection.pipeline() as batch:
            batch.hset(self.key, "last_heartbeat", utcformat(self.last_heartbeat))
            batch.expire(self.key, timeout or self.worker_ttl + 60)
            created, _ = batch.execute()
        if created:
            self.connection.delete(self.key)
            self.register_birth()
