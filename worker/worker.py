"""The RQ worker class: no fork per job, and only the project's own job functions run."""

from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import suppress
from typing import Any

from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job, _job_stack
from rq.registry import StartedJobRegistry
from rq.utils import decode_redis_hash, now, utcformat
from rq.worker import WorkerStatus

from shared.queue import KEEP_IMAGE, UncompressedJob
from shared.worker_liveness import registration_ttl_s
from worker.jobs import ALLOWED_FUNCTIONS

IMAGE_FIELD = "image_base64"
ABANDONED_AFTER_TIMEOUT_S = 5
HEARTBEAT_EVERY_S = 1.0
SUSPENSION_CHECK_EVERY_S = 1.0
# Job hash fields that ask RQ for more than the call: import and call a dotted name (callbacks), call a
# URL (webhooks, outside the job timeout), or run the job again (retries, repeats). No producer of ours
# writes them; a job that carries any is refused.
RQ_OPTION_FIELDS = {
    "a success callback": ("success_callback_name",),
    "a failure callback": ("failure_callback_name",),
    "a stopped callback": ("stopped_callback_name",),
    "webhooks": ("webhooks",),
    "retries": ("retries_left", "retry_intervals"),
    "repeats": ("repeats_left", "repeat_intervals"),
}


def forget_image(job: Job, *exc_info: object) -> bool:
    """Keep a job's arguments for the operators but not its image(s): a failed job stays in the failed
    registry for ``failure_ttl`` and a finished one ``result_ttl``. Also an RQ exception handler, hence
    the signature; returns True so RQ's other handling goes on."""
    kwargs = job.kwargs if isinstance(job.kwargs, dict) else {}
    items = kwargs.get("items") if isinstance(kwargs.get("items"), list) else [kwargs]
    images = [item[IMAGE_FIELD] for item in items if isinstance(item, dict) and isinstance(item.get(IMAGE_FIELD), str)]
    if not images:
        return True
    if "items" in kwargs:
        job.kwargs = {**kwargs, "items": [_without_image(item) for item in kwargs["items"]]}
    else:
        job.kwargs = _without_image(kwargs)
    if any(image[:64] in (job.description or "") for image in images):  # RQ's default names the arguments
        job.description = f"{job.func_name}(image removed)"
    return True


def _without_image(payload: object) -> object:
    if isinstance(payload, dict) and isinstance(payload.get(IMAGE_FIELD), str):
        return {**payload, IMAGE_FIELD: f"<image removed: {len(payload[IMAGE_FIELD])} base64 characters>"}
    return payload


def worker_name() -> str:
    """Unique, and readable in rq-dashboard: which host and process a worker is."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class WorkerJob(UncompressedJob):
    """The worker's job class: :meth:`CaptchaWorker.prepare_execution` persists the job's hash in its
    pipeline, so running the job skips RQ's own PERSIST, a round trip just before the model. It also notes
    which RQ options the job's hash asks for, read from the hash itself: restoring a job imports nothing
    (RQ imports a callback when it is first used) and RQ drops webhooks it cannot parse, still carried."""

    requested_options: tuple[str, ...] = ()

    def restore(self, raw_data: Any) -> Any:
        restored = super().restore(raw_data)
        fields = decode_redis_hash(raw_data)
        self.requested_options = tuple(
            option for option, names in RQ_OPTION_FIELDS.items() if any(fields.get(name) for name in names)
        )
        return restored

    def perform(self) -> Any:
        """RQ's ``Job.perform`` without its first line, ``connection.persist(key)``."""
        _job_stack.push(self)
        try:
            self._result = self._execute()
        finally:
            assert self is _job_stack.pop()
        return self._result


def refusal_reason(job: Job) -> str | None:
    """Why the worker will not run ``job``, from what its hash names (nothing imported): None to run it."""
    if job.func_name not in ALLOWED_FUNCTIONS:
        return f"{job.func_name!r} is not a CaptchaOCR job function"
    options = getattr(job, "requested_options", ())
    if options:
        return f"the job asks RQ for {', '.join(options)}, which CaptchaOCR jobs never carry"
    return None


class CaptchaWorker(SimpleWorker):
    """A :class:`SimpleWorker` (the model stays loaded; forking per job costs 15-20 ms and is unsafe
    with an ONNX Runtime session made before the fork) that refuses any job naming a callable outside
    :data:`ALLOWED_FUNCTIONS` or asking RQ for callbacks, webhooks, retries or repeats: such a job fails
    with a clear error and nothing is imported, run or contacted."""

    # Retry a lost Redis every few seconds rather than backing off to RQ's default of a minute.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, heartbeat_s: int, **kwargs: Any) -> None:
        self.heartbeat_s = heartbeat_s  # before RQ's constructor, which reads the dequeue timeout
        super().__init__(*args, **kwargs)
        self._suspension_checked_at = float("-inf")
        # Runs for every failure, in this worker and for jobs abandoned by a dead worker that this
        # worker's registry maintenance moves to the failed registry.
        self.push_exc_handler(forget_image)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry) -> None:
        """Save the result and RQ's bookkeeping in one transaction: one round trip on the latency path.

        A finished job's hash lives ``result_ttl`` for the dashboard and ``GET /jobs``, so it is saved
        without the image (Redis memory stays flat under load) unless its producer asked to keep it (an
        Anti-Captcha task, for a later report). RQ first WATCHes and reads the job's dependents (two
        round trips) for the rare job that has some; here the dependents set is read inside the same
        transaction that marks the job finished, and only a job that has dependents takes RQ's own path
        to enqueue them: one registered before the transaction is in the set, one registered after it
        sees a finished dependency and is enqueued by its producer. (A job asking to repeat is refused.)
        The same transaction beats: the registration shrinks back from the job's timeout to a few beats."""
        if not job.meta.get(KEEP_IMAGE):
            forget_image(job)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)  # type: ignore[operator]
            if result_ttl != 0:
                job._handle_success(
                    result_ttl,
                    pipeline=pipeline,
                    worker_name=self.name,
                    execution_id=self.execution.id if self.execution else None,
                    execution_started_at=self.execution.created_at if self.execution else None,
                    execution_ended_at=job.ended_at,
                )
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipeline)
            self.heartbeat(registration_ttl_s(self.heartbeat_s), pipeline)
            pipeline.smembers(job.dependents_key)
            has_dependents = bool(pipeline.execute()[-1])
        if has_dependents:
            queue.enqueue_dependents(job)

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's two preparations of a job (the execution record and busy state, then the worker's current
        job, heartbeats and the job's started state) in one pipeline instead of two round trips."""
        with self.connection.pipeline() as pipeline:
            heartbeat_ttl = self.get_heartbeat_ttl(job)
            self.execution = Execution.create(job, heartbeat_ttl, pipeline=pipeline, worker_name=self.name)
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            self.set_current_job_id(job.id, pipeline=pipeline)
            self.set_current_job_working_time(0, pipeline=pipeline)
            super().heartbeat(heartbeat_ttl, pipeline=pipeline)
            job.heartbeat(now(), heartbeat_ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)  # RQ's Job.perform does this in a round trip of its own (WorkerJob)
            if len(self.queues) == 1:  # what RQ's perform_job asks for: the job leaves the intermediate queue
                pipeline.lrem(self.queues[0].intermediate_queue_key, 1, job.id)
            pipeline.execute()
        return self.execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Done by :meth:`prepare_execution`, which a :class:`SimpleWorker` always calls just before."""

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ also refreshes the job's heartbeat here (a round trip before the result is saved) for its
        success and failure callbacks; jobs here have none, and the result pipeline follows at once."""
        job.ended_at = now()

    def teardown(self) -> None:
        """RQ's teardown stops at its first Redis error, leaving this worker's pub/sub thread running
        (one more per reconnection). When the loop ended because Redis is gone, the registration cannot be
        removed (it expires by itself), but the thread must still stop. (No scheduler runs here.)"""
        with suppress(RedisConnectionError):
            self.register_death()
        if self.pubsub_thread:
            with suppress(RedisConnectionError):
                self.pubsub.unsubscribe()
            self.pubsub_thread.stop()
            self.pubsub_thread.join(timeout=1)
            self.pubsub.close()

    def check_for_suspension(self, burst: bool) -> None:
        """RQ asks Redis whether ``rq suspend`` was run before every job; once a second is soon enough
        for an operator and saves a round trip a job under load."""
        if time.monotonic() < self._suspension_checked_at + SUSPENSION_CHECK_EVERY_S:
            return
        self._suspension_checked_at = time.monotonic()
        super().check_for_suspension(burst)

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ sets "idle" after each job and again before taking the next: skip the repeated round trip."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        reason = refusal_reason(job)
        if reason is None:
            super().execute_job(job, queue)
            return
        self.log.warning("Worker %s: refused job %s: %s", self.name, job.id, reason)
        forget_image(job)
        self.prepare_execution(job)
        self.handle_job_failure(job, queue, exc_string=f"JobNotAllowed: {reason}; nothing ran.")
        self.set_state(WorkerStatus.IDLE)

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry | None = None,
        exc_string: str = "",
    ) -> None:  # fmt: skip
        """RQ retries a failed job that asks for it and calls its "failed" webhooks. A job this worker ran
        has neither; one it refused, or one RQ's maintenance fails for being stuck between queue and worker,
        may: it fails once and for all, and nothing is contacted. Then a beat, as after a success."""
        job.retries_left = None
        job.webhooks = []
        super().handle_job_failure(job, queue, started_job_registry, exc_string)
        with suppress(RedisConnectionError):  # RQ's failure handling goes on without Redis too
            self.heartbeat(registration_ttl_s(self.heartbeat_s))

    @property
    def dequeue_timeout(self) -> int:
        """Wake from the blocking dequeue every heartbeat (RQ waits about 7 minutes), so an idle worker
        stays counted as alive and still runs the maintenance that fails abandoned jobs."""
        return self.heartbeat_s

    def register_birth(self) -> None:
        """RQ's registration lives ``worker_ttl`` + 60 s (8 minutes): here a few heartbeats, like every
        heartbeat after it, so a worker killed at once drops out of the live count as soon."""
        super().register_birth()
        self.connection.expire(self.key, registration_ttl_s(self.heartbeat_s))

    def get_heartbeat_ttl(self, job: Job) -> int:
        """How long a started job may go without news before maintenance calls it abandoned: a little
        over the job timeout (RQ adds a minute), so a job whose worker was killed fails soon."""
        return int(job.timeout or self.queue_class.DEFAULT_TIMEOUT) + ABANDONED_AFTER_TIMEOUT_S

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat in one round trip, which also notices a Redis that lost this worker's
        registration (restarted or flushed) and registers again, so dashboards and the health check
        keep seeing a worker that reconnected by itself.

        The key lives a few heartbeats (:func:`registration_ttl_s`; while a job runs, its timeout and a
        little, set by :meth:`prepare_execution`), so a dead worker drops out of the live count in seconds.
        RQ beats three times per job (before and after taking it, after running it): once every
        ``HEARTBEAT_EVERY_S`` is plenty, and each beat saved is a Redis round trip, one of them between
        taking a job and starting it."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        if timeout is None and self.last_heartbeat and (now() - self.last_heartbeat).total_seconds() < HEARTBEAT_EVERY_S:
            return
        self.last_heartbeat = now()
        with self.connection.pipeline() as batch:
            batch.hset(self.key, "last_heartbeat", utcformat(self.last_heartbeat))
            batch.expire(self.key, timeout or registration_ttl_s(self.heartbeat_s))
            created, _ = batch.execute()
        if created:
            self.connection.delete(self.key)
            self.register_birth()
