"""Admission control: refuse new work at once when the queue is already deeper than allowed,
instead of letting every client's latency pile up behind it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, status
from fastapi.responses import JSONResponse
from redis.client import Pipeline
from rq.job import Job

from api.dependencies import Services


class QueueFull(Exception):
    """The queue holds ``max_queue_depth`` jobs or more."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"queue full: {depth} jobs waiting (limit {limit}); retry shortly")


def enqueue_admitted(services: Services, enqueue: Callable[[Pipeline], list[Job]]) -> list[Job]:
    """Enqueue the jobs ``enqueue`` adds to a transaction that first reads the queue's depth: one round
    trip where checking first took two. Jobs that would pass ``max_queue_depth`` are deleted again (only
    when the queue is that deep, so no worker is near them) and :class:`QueueFull` is raised."""
    limit = services.settings.max_queue_depth
    with services.redis.pipeline() as pipe:
        pipe.llen(services.queue.key)
        jobs = enqueue(pipe)
        depth = pipe.execute()[0]
    if depth + len(jobs) > limit:
        for job in jobs:
            job.delete()
        raise QueueFull(depth, limit)
    return jobs


async def queue_full_response(request: Request, exc: Exception) -> JSONResponse:
    request.state.outcome = "queue_full"
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
    )
