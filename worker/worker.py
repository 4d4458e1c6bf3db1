"""The RQ worker class: no fork per job, and only the project's own job functions run."""

from __future__ import annotations

import os
import socket
import uuid

from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import now, utcformat
from rq.worker import WorkerStatus

from worker.jobs import ALLOWED_FUNCTIONS


def worker_name() -> str:
    """Unique, and readable in rq-dashboard: which host and process a worker is."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class CaptchaWorker(SimpleWorker):
    """A :class:`SimpleWorker` (the model stays loaded; forking per job costs 15-20 ms and is unsafe
    with an ONNX Runtime session made before the fork) that refuses any job naming a callable outside
    :data:`ALLOWED_FUNCTIONS`: such a job fails with a clear error and nothing is imported or run."""

    # Retry a lost Redis every few seconds rather than backing off to RQ's default of a minute.
    max_connection_wait_time = 5.0

    def execute_job(self, job: Job, queue: Queue) -> None:
        if job.func_name in ALLOWED_FUNCTIONS:
            super().execute_job(job, queue)
            return
        self.log.warning("Worker %s: refused job %s naming %r", self.name, job.id, job.func_name)
        self.prepare_execution(job)
        self.handle_job_failure(
            job,
            queue,
            exc_string=f"JobNotAllowed: {job.func_name!r} is not a CaptchaOCR job function; nothing ran.",
        )
        self.set_state(WorkerStatus.IDLE)

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
