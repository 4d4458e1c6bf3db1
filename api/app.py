"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi_offline import FastAPIOffline
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api import health, job_lookup
from api.admission import QueueFull, queue_full_response
from api.auth import RequireApiKey
from api.body_limit import BodyLimitMiddleware
from api.dependencies import Services
from api.observability import Metrics, ObserveRequests
from api.ocr import batch, route
from api.ocr.collector import Collector
from api.ocr.dispatch import Dispatcher
from api.protocols.anticaptcha import routes as anticaptcha
from api.protocols.capmonster import protocol as capmonster
from api.protocols.capsolver import protocol as capsolver
from api.protocols.twocaptcha import routes as twocaptcha
from api.sites import feedback, sites
from shared.imaging import ImageLimits
from shared.connection import connect, connect_async
from shared.queue import cancel_if_queued, make_queue
from shared.results import RESULT_BLOCK_S
from shared.settings import Settings
from shared.sites import SiteStore

DESCRIPTION = """Reads numeric image captchas. POST a base64 image to `/ocr`, get the number back.
Refusals are 422 with the reason; 503 means try again (Redis away or no worker answered in time)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; connections to Redis are opened at start-up and closed at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings)
        async_redis = connect_async(settings, blocking_s=RESULT_BLOCK_S)  # waits block this long at a time
        queue = make_queue(redis, settings)
        metrics = Metrics(queue, redis)
        app.state.metrics = metrics
        dispatcher = Dispatcher(queue, settings)
        collector = Collector(
            async_redis, settings.queue_name,
            enqueue_one=dispatcher.enqueue_one, enqueue_many=dispatcher.enqueue_many, cancel=cancel_if_queued,
            max_requests=settings.collect_max_requests, wait_ms=settings.collect_wait_ms,
        )  # fmt: skip
        services = Services(
            settings=settings,
            limits=ImageLimits.from_settings(settings),
            redis=redis,
            async_redis=async_redis,
            queue=queue,
            metrics=metrics,
            collector=collector,
            sites=SiteStore(redis, settings.site_max_samples),
        )
        app.state.services = services
        watcher = asyncio.create_task(services.collector.watch_workers())
        yield
        watcher.cancel()
        await async_redis.aclose()
        redis.close()

    # FastAPIOffline serves the /docs and /redoc assets itself: a self-hosted service may have no CDN.
    app = FastAPIOffline(title="CaptchaOCR", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.include_router(health.router)
    app.include_router(route.router)
    app.include_router(batch.router, dependencies=[RequireApiKey])
    app.include_router(job_lookup.router, dependencies=[RequireApiKey])
    app.include_router(anticaptcha.router)
    app.include_router(capmonster.router)
    app.include_router(capsolver.router)
    app.include_router(twocaptcha.router)
    app.include_router(sites.router, dependencies=[RequireApiKey])
    app.include_router(feedback.router, dependencies=[RequireApiKey])
    app.add_exception_handler(QueueFull, queue_full_response)
    app.add_exception_handler(RedisConnectionError, _redis_unavailable)
    app.add_exception_handler(RedisTimeoutError, _redis_unavailable)
    # The body limit sits inside the request observer, so its refusal reaches the route as it is raised.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ObserveRequests)
    return app


async def _redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis away: a clear 503; redis-py reconnects by itself on the next request once it is back."""
    return JSONResponse(
        {"detail": f"Redis unreachable: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )
