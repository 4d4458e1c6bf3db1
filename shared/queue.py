"""The RQ queue every producer uses: the API, crawlers and the benchmarks.

Jobs are JSON-serialized (never pickle: a worker must not unpickle what a client wrote) and carry short
TTLs, so neither results nor failures (which hold the job's arguments, the image included) pile up.
Every producer gets the same admission (:func:`enqueue_within_depth`) and gives up the same way
(:func:`cancel_if_queued`). Clients come from shared/connection.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from shared.contract import BATCH_FUNCTION, JOB_FUNCTION, OcrJob
from shared.rq_internals import UncompressedJob
from shared.settings import Settings


def make_queue(connection: Redis, settings: Settings) -> Queue:
    """The captcha queue, with the JSON serializer the workers expect."""
    return Queue(settings.queue_name, connection=connection, serializer=JSONSerializer, job_class=UncompressedJob)


class QueueFull(Exception):
    """The queue holds ``max_queue_depth`` jobs or more: new work is refused at once, instead of letting
    every client's latency pile up behind it."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"queue full: {depth} jobs waiting (limit {limit}); retry shortly")


def enqueue_within_depth(queue: Queue, max_depth: int, enqueue: Callable[[Pipeline], list[Job]]) -> list[Job]:
    """Enqueue the jobs ``enqueue`` adds to a transaction that first reads the queue's depth: one round
    trip where checking first took two. Jobs that would pass ``max_depth`` are deleted again (only when
    the queue is that deep, so no worker is near them) and :class:`QueueFull` is raised."""
    with queue.connection.pipeline() as pipe:
        pipe.llen(queue.key)
        jobs = enqueue(pipe)
        depth = pipe.execute()[0]
    if depth + len(jobs) > max_depth:
        for job in jobs:
            job.delete()
        raise QueueFull(depth, max_depth)
    return jobs


def cancel_if_queued(job: Job) -> None:
    """A job nobody waits for any more must not cost a worker an inference. Its TTL is the wait limit,
    so it may already be gone from Redis (or be cancelled meanwhile): then there is nothing to cancel."""
    try:
        if job.get_status(refresh=True) == JobStatus.QUEUED:
            job.cancel()
    except (InvalidJobOperation, NoSuchJobError):
        pass


# An unclaimed job outlives its producer's wait by this much, so the producer that gives up at its deadline
# still finds it to cancel: a cancelled job tells GET /jobs "canceled", where an expired one is just gone.
UNCLAIMED_MARGIN_S = 1
# Job meta flag: the worker keeps the image in the finished job (read back by a later report).
KEEP_IMAGE = "keep_image"


def enqueue_read(
    queue: Queue, job: OcrJob, settings: Settings, wait_s: float | None = None, job_id: str | None = None,
    keep_image: bool = False, pipeline: Pipeline | None = None,
) -> Job:  # fmt: skip
    """Enqueue one captcha; with ``wait_s`` the job is dropped if no worker took it by then. A finished
    job keeps its image for ``result_ttl_s`` only with ``keep_image``. With ``pipeline`` the job is
    queued when the caller executes it."""
    return queue.enqueue_many([_read_data(job, settings, wait_s, job_id, keep_image)], pipeline=pipeline)[0]


def enqueue_reads(
    queue: Queue, jobs: list[OcrJob], settings: Settings, wait_s: float | None = None,
    pipeline: Pipeline | None = None,
) -> list[Job]:  # fmt: skip
    """Enqueue many captchas in one Redis round trip, so idle workers share them at once."""
    if not jobs:
        return []
    return queue.enqueue_many([_read_data(job, settings, wait_s) for job in jobs], pipeline=pipeline)


def enqueue_collected(
    queue: Queue, jobs: list[OcrJob], settings: Settings, wait_s: float, pipeline: Pipeline | None = None
) -> Job:
    """Enqueue several captchas as ONE job of :data:`BATCH_FUNCTION` (one worker reads them in turn)."""
    data = Queue.prepare_data(
        BATCH_FUNCTION,
        kwargs={"items": [job.model_dump(exclude_none=True) for job in jobs]},
        description=f"{BATCH_FUNCTION}({len(jobs)} images)",
        **_lifetimes(settings, wait_s),
    )
    return queue.enqueue_many([data], pipeline=pipeline)[0]


def _lifetimes(settings: Settings, wait_s: float | None) -> dict[str, int | None]:
    """How long a job may run, wait unclaimed (``wait_s``, and :data:`UNCLAIMED_MARGIN_S`), and keep its
    result or failure."""
    return {
        "result_ttl": settings.result_ttl_s,
        "failure_ttl": settings.failure_ttl_s,
        "timeout": settings.job_timeout_s,
        "ttl": math.ceil(wait_s) + UNCLAIMED_MARGIN_S if wait_s else None,
    }


def _read_data(
    job: OcrJob, settings: Settings, wait_s: float | None, job_id: str | None = None, keep_image: bool = False
) -> EnqueueData:
    return Queue.prepare_data(
        JOB_FUNCTION,
        kwargs=job.model_dump(exclude_none=True),
        job_id=job_id,
        meta={KEEP_IMAGE: True} if keep_image else None,
        # RQ's default description repeats the arguments (the image) in the job hash and the dashboard.
        description=f"{JOB_FUNCTION}(digits={job.digits or settings.default_digits})",
        **_lifetimes(settings, wait_s),
    )
