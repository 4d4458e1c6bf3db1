"""Collect concurrent ``POST /ocr`` requests into one RQ job, so RQ's cost per job is shared among them.

A job costs the API, the worker and Redis a few ms of CPU whatever it carries (RQ's bookkeeping: about
20 Redis round trips), next to about 11 ms for the model; on 2 cores that overhead comes out of the
model's share. So while every worker already has one of this API's jobs, new requests wait here
(at most ``collect_wait_ms``, or until ``collect_max_requests`` are waiting, or until a job of ours
finishes) and go out together as one ``read_captchas`` job. A request that finds a worker free goes out
at once as its own ``read_captcha`` job: a lone request is never delayed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from rq.job import Job
from starlette.concurrency import run_in_threadpool

from api.ocr.waiting import wait_for_result
from shared.contract import OcrJob
from shared.outcome import Outcome, Timeout, WorkerFailure, reading, request_id, returned
from shared.rq_internals import workers_key
from shared.worker_liveness import count_live_workers

# (jobs) -> the enqueued RQ job; runs in a thread (RQ's client is synchronous) and may raise QueueFull.
Enqueue = Callable[[list[OcrJob]], Job]
# (job) -> None: cancel a job nobody waits for any more (runs in a thread).
Cancel = Callable[[Job], None]
# Each request's answer: the worker's result dict, None (no answer in time) or why it has none.
Answers = list[dict[str, Any] | None | Exception]
WORKER_COUNT_REFRESH_S = 1.0
# How long past its deadline a request waits for its job's outcome (the last XREAD's reply, cancelling the
# job): then it answers "no worker answered" whatever its job is doing, so no request waits unbounded.
RESOLVE_GRACE_S = 1.0


class JobFailed(Exception):
    """The worker failed the job (an exception, not a refusal) or gave no answer for this request in
    its result: the request gets a 500 naming its job id (None: it never reached Redis)."""

    def __init__(self, job_id: str | None) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@dataclass
class Ticket:
    """One request's place in a job: its id once enqueued (``<job>`` alone, ``<job>_<index>`` when the job
    carries several requests), and its result dict once the worker answered (None: no answer in time)."""

    job: OcrJob
    deadline: float
    done: asyncio.Future[dict[str, Any] | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    job_id: str | None = None


class Collector:
    """Per API process: counts this process's jobs in flight against the live workers of the queue."""

    def __init__(self, async_redis: AsyncRedis, queue_name: str, enqueue_one: Enqueue, enqueue_many: Enqueue,
                 cancel: Cancel, max_requests: int, wait_ms: float) -> None:  # fmt: skip
        self.redis = async_redis
        self.workers_key = workers_key(queue_name)
        self.enqueue_one = enqueue_one
        self.enqueue_many = enqueue_many
        self.cancel = cancel
        self.max_requests = max_requests
        self.wait_s = wait_ms / 1000
        self.workers = 1
        self.in_flight = 0
        self.pending: list[Ticket] = []
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def read(self, job: OcrJob, timeout_s: float) -> tuple[str | None, dict[str, Any] | None]:
        """Have ``job`` read: ``(job id, result dict)``; the result is None when none came in time, and the
        id None when the request never left this process. Raises :class:`JobFailed`, or what enqueueing
        raised (queue full, Redis away) for every request of that job."""
        ticket = Ticket(job, time.monotonic() + timeout_s)
        self.pending.append(ticket)
        if self.in_flight < self.workers or len(self.pending) >= self.max_requests:
            self._flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.wait_s, self._flush)
        try:
            answer = await asyncio.wait_for(asyncio.shield(ticket.done), timeout_s)
        except TimeoutError:
            if ticket in self.pending:  # never enqueued: nothing to cancel or to look up later
                self.pending.remove(ticket)
                return None, None
            try:  # sent: its job's wait ends at the deadline (and cancels it), or Redis is slow to say
                answer = await asyncio.wait_for(asyncio.shield(ticket.done), RESOLVE_GRACE_S)
            except TimeoutError:
                return ticket.job_id, None
        return ticket.job_id, answer

    async def outcome(self, job: OcrJob, timeout_s: float) -> tuple[str | None, Outcome]:
        """:meth:`read`, in the contract's terms: ``(job id, outcome)``."""
        try:
            job_id, answer = await self.read(job, timeout_s)
        except JobFailed as failed:
            return failed.job_id, WorkerFailure(failed.job_id)
        return job_id, Timeout(job_id, timeout_s) if answer is None else reading(answer, job_id)

    async def watch_workers(self) -> None:
        """Keep the live worker count fresh (one round trip a second): a dead worker stops counting within
        seconds (:mod:`shared.worker_liveness`); errors keep the last known count."""
        while True:
            try:
                self.workers = max(1, await count_live_workers(self.redis, self.workers_key))
            except Exception:  # noqa: BLE001 - Redis away: requests report it; keep the last count
                pass
            await asyncio.sleep(WORKER_COUNT_REFRESH_S)

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        tickets, self.pending = self.pending, []
        if not tickets:
            return
        self.in_flight += 1
        task = asyncio.create_task(self._run(tickets))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, tickets: list[Ticket]) -> None:
        """Send and wait for one job; every ticket is resolved whatever happens (even a cancelled task):
        one the outcome has no answer for fails."""
        outcome: Answers | Exception = []
        try:
            outcome = await self._enqueue_and_wait(tickets)
        except Exception as error:  # noqa: BLE001 - handed to each waiting request, which answers it
            outcome = error
        finally:
            self.in_flight -= 1
            if self.pending and self.in_flight < self.workers:
                self._flush()  # a worker is free: the next job goes out before these answers are handed back
            for index, ticket in enumerate(tickets):
                if isinstance(outcome, Exception):
                    _resolve(ticket, outcome)
                else:
                    _resolve(ticket, outcome[index] if index < len(outcome) else JobFailed(ticket.job_id))

    async def _enqueue_and_wait(self, tickets: list[Ticket]) -> Answers:
        jobs = [ticket.job for ticket in tickets]
        single = len(tickets) == 1
        job = await run_in_threadpool(self.enqueue_one if single else self.enqueue_many, jobs)
        indexes = [None] if single else list(range(len(tickets)))
        for index, ticket in zip(indexes, tickets, strict=True):
            ticket.job_id = request_id(job.id, index)
        timeout_s = max(ticket.deadline for ticket in tickets) - time.monotonic()
        result = await wait_for_result(self.redis, job.id, timeout_s)
        if result is None:
            await run_in_threadpool(self.cancel, job)
            return [None] * len(tickets)
        answers = [returned(result, job.id, index) for index in indexes]
        return [JobFailed(item.job_id) if isinstance(item, WorkerFailure) else item for item in answers]


def _resolve(ticket: Ticket, answer: dict[str, Any] | None | Exception) -> None:
    """Hand the request its answer, unless it was handed one already."""
    if ticket.done.done():
        return
    if isinstance(answer, Exception):
        ticket.done.set_exception(answer)
        ticket.done.exception()  # marked as retrieved: a request that gave up never reads it
    else:
        ticket.done.set_result(answer)
