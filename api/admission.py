"""Admission control: refuse new work at once when the queue is already deeper than allowed,
instead of letting every client's latency pile up behind it."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.responses import JSONResponse

from api.dependencies import Services


class QueueFull(Exception):
    """The queue holds ``max_queue_depth`` jobs or more."""

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"queue full: {depth} jobs waiting (limit {limit}); retry shortly")


def ensure_queue_has_room(services: Services, adding: int = 1) -> None:
    """Raise :class:`QueueFull` when ``adding`` more jobs would pass the configured depth."""
    limit = services.settings.max_queue_depth
    depth = services.queue.count
    if depth + adding > limit:
        raise QueueFull(depth, limit)


async def queue_full_response(request: Request, exc: Exception) -> JSONResponse:
    request.state.outcome = "queue_full"
    return JSONResponse(
        {"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}
    )
