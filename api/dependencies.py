"""What a request handler needs from the running app, as FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from api.ocr.collector import Collector
from api.observability import Metrics
from shared.imaging import ImageLimits
from shared.settings import Settings
from shared.sites import SiteStore


@dataclass
class Services:
    """Made once at start-up: a sync client for RQ's enqueue, an async one for waiting, the collector."""

    settings: Settings
    limits: ImageLimits
    redis: Redis
    async_redis: AsyncRedis
    queue: Queue
    metrics: Metrics
    collector: Collector
    sites: SiteStore


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
