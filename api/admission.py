"""Admission control for the API's requests: the queue-depth check every producer shares
(shared/queue.py), and the 503 it turns into."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, status
from fastapi.responses import JSONResponse
from redis.client import Pipeline
from rq.job import Job

from api.dependencies import Services
from shared.queue import QueueFull, enqueue_within_depth

__all__ = ["QueueFull", "enqueue_admitted", "queue_full_response"]


def enqueue_admitted(services: Services, enqueue: Callable[[Pipeline], list[Job]]) -> list[Job]:
    """Enqueue what ``enqueue`` adds to the transaction, or raise :class:`QueueFull` (``max_queue_depth``)."""
    return enqueue_within_depth(services.queue, services.settings.max_queue_depth, enqueue)


async def queue_full_response(request: Request, exc: Exception) -> JSONResponse:
    request.state.outcome = "queue_full"
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
    )
