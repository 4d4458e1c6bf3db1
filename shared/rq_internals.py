"""Everything CaptchaOCR takes from RQ's insides rather than its documented API, in one place.

Checked against RQ 2.12.0, the version requirements.lock installs; pyproject.toml allows 2.12.x only.
RQ 2.6.0, the earlier lower bound, was checked too and does not fit: its ``Job._handle_success`` takes no
execution arguments, it has no webhooks, and its ``register_birth``, ``heartbeat`` and
``handle_job_failure`` differ. tests/unit/test_rq_internals.py fingerprints the source of every RQ method
named below and fails, naming the method and what to re-check here, when an RQ release changes one.

What each piece relies on:

- :class:`UncompressedJob` (``to_dict``): ``Job.to_dict`` compresses whatever ``Job.data`` returns, which
  is ``Job._data`` once set; ``Job.restore`` keeps data that does not decompress as it is.
- :class:`WorkerJob`: ``perform`` is ``Job.perform`` without its first line (``connection.persist``),
  using ``rq.job._job_stack``, ``Job._execute`` and ``Job._result``; ``restore`` reads the job hash
  ``Job.restore`` is given, whose field names (:data:`RQ_OPTION_FIELDS`) ``Job.to_dict`` writes.
- :class:`TunedSimpleWorker`, RQ 2.12's ``SimpleWorker`` with fewer Redis round trips per job and a short
  registration. It replaces or wraps ``BaseWorker.handle_job_success`` (calls ``Job._handle_success``),
  ``prepare_execution`` (with ``rq.executions.prepare_execution`` and ``prepare_job_execution``, as
  ``SimpleWorker.execute_job`` and ``BaseWorker.perform_job`` call them), ``handle_execution_ended``,
  ``teardown``, ``check_for_suspension``, ``set_state`` (``_state``), ``SimpleWorker.execute_job``,
  ``handle_job_failure`` (``Job.retries_left``, ``Job.webhooks``), the ``dequeue_timeout`` property
  (read by ``BaseWorker.__init__`` through ``_set_connection``), ``register_birth``,
  ``SimpleWorker.get_heartbeat_ttl``, ``heartbeat`` and the ``max_connection_wait_time`` class attribute;
  :meth:`TunedSimpleWorker.stop_requested` reads ``_stop_requested`` and ``_shutdown_requested_date``.
- :func:`workers_key`: ``rq.worker_registration.WORKERS_BY_QUEUE_KEY``, the set of a queue's workers.

Elsewhere, and covered by the same tests: shared/results.py and api/ocr/waiting.py read RQ's result stream
themselves (``Result.get_key``, ``Result.restore``); shared/dashboard.py replaces
``rq.serializers.DefaultSerializer``'s methods, which rq-dashboard loads jobs with.
"""

from __future__ import annotations

import time
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
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from shared.worker_liveness import registration_ttl_s

ABANDONED_AFTER_TIMEOUT_S = 5
HEARTBEAT_EVERY_S = 1.0
SUSPENSION_CHECK_EVERY_S = 1.0
# Job hash fields that ask RQ for more than the call: import and call a dotted name (callbacks), call a
# URL (webhooks, outside the job timeout), or run the job again (retries, repeats).
RQ_OPTION_FIELDS = {
    "a success callback": ("success_callback_name",),
    "a failure callback": ("failure_callback_name",),
    "a stopped callback": ("stopped_callback_name",),
    "webhooks": ("webhooks",),
    "retries": ("retries_left", "retry_intervals"),
    "repeats": ("repeats_left", "repeat_intervals"),
}


def workers_key(queue_name: str) -> str:
    """RQ's set of the workers registered on ``queue_name``."""
    return WORKERS_BY_QUEUE_KEY % queue_name


class UncompressedJob(Job):
    """RQ's Job, saved without zlib. RQ compresses every job's data; a base64 image hardly compresses
    (by a quarter) and compressing it cost the API 0.17 ms per image, 1.3 ms for a collected job of five.
    Every RQ reader (workers, rq-dashboard, a crawler's ``Job.fetch``) still reads such a job: RQ keeps
    data that does not decompress as it is."""

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        data, self._data = self.data, b""  # RQ compresses whatever `data` holds: give it nothing to do
        try:
            saved = super().to_dict(include_meta=include_meta, include_result=include_result)
        finally:
            self._data = data
        saved["data"] = data
        return saved


class WorkerJob(UncompressedJob):
    """The worker's job class: :meth:`TunedSimpleWorker.prepare_execution` persists the job's hash in its
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


class TunedSimpleWorker(SimpleWorker):
    """A :class:`SimpleWorker` (the model stays loaded; forking per job costs 15-20 ms and is unsafe with an
    ONNX Runtime session made before the fork) that saves Redis round trips on each job, registers for a
    few heartbeats only, and fails without running any job :meth:`refusal_reason` names a reason for.
    Subclasses say which jobs to refuse and what to drop from a job before it is saved."""

    # Retry a lost Redis every few seconds rather than backing off to RQ's default of a minute.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, heartbeat_s: int, **kwargs: Any) -> None:
        self.heartbeat_s = heartbeat_s  # before RQ's constructor, which reads the dequeue timeout
        super().__init__(*args, **kwargs)
        self._suspension_checked_at = float("-inf")

    def refusal_reason(self, job: Job) -> str | None:
        """Why this worker will not run ``job`` (it fails, and nothing is imported or run); None runs it."""
        return None

    def before_saving(self, job: Job, refused: bool) -> None:
        """Change ``job`` before its hash is saved, finished or ``refused``."""

    def stop_requested(self) -> bool:
        """Whether the loop ended because the process was asked to stop (a signal, ``rq`` commands)."""
        return self._stop_requested or self._shutdown_requested_date is not None

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry) -> None:
        """Save the result and RQ's bookkeeping in one transaction: one round trip on the latency path.

        RQ first WATCHes and reads the job's dependents (two round trips) for the rare job that has
        some; here the dependents set is read inside the same transaction that marks the job finished,
        and only a job that has dependents takes RQ's own path to enqueue them: one registered before the
        transaction is in the set, one registered after it sees a finished dependency and is enqueued by
        its producer. (A job asking to repeat is refused.) The same transaction beats: the registration
        shrinks back from the job's timeout to a few beats."""
        self.before_saving(job, refused=False)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipeline:
            self.increment_successful_job_count(pipeline=pipeline)
            working_time = job.ended_at - job.started_at  # type: ignore[operator]
            self.increment_total_working_time(working_time, pipeline)
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
        reason = self.refusal_reason(job)
        if reason is None:
            super().execute_job(job, queue)
            return
        self.log.warning("Worker %s: refused job %s: %s", self.name, job.id, reason)
        self.before_saving(job, refused=True)
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
        last = self.last_heartbeat
        if timeout is None and last and (now() - last).total_seconds() < HEARTBEAT_EVERY_S:
            return
        self.last_heartbeat = now()
        with self.connection.pipeline() as batch:
            batch.hset(self.key, "last_heartbeat", utcformat(self.last_heartbeat))
            batch.expire(self.key, timeout or registration_ttl_s(self.heartbeat_s))
            created, _ = batch.execute()
        if created:
            self.connection.delete(self.key)
            self.register_birth()
