"""``GET /`` (is the service able to answer?) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import RequireApiKey
from api.dependencies import ServicesDep
from api.schemas import HealthResponse
from shared.rq_internals import workers_key
from shared.worker_liveness import count_live_workers

router = APIRouter()


@router.get("/", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(services: ServicesDep) -> JSONResponse:
    """Health check: the API answers, Redis is reachable and at least one worker is alive (a dead one
    stops counting within seconds)."""
    try:
        workers = await count_live_workers(services.async_redis, workers_key(services.settings.queue_name))
        depth = await run_in_threadpool(lambda: services.queue.count)
        body = HealthResponse(status="ok" if workers else "degraded", redis=True, workers=workers, queue_depth=depth)
    except Exception:  # noqa: BLE001 - any Redis failure means "degraded", never a 500 from the health check
        body = HealthResponse(status="degraded", redis=False, workers=0)
    code = status.HTTP_200_OK if body.status == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body.model_dump(), status_code=code)


@router.get("/metrics", response_class=Response, include_in_schema=False, dependencies=[RequireApiKey])
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics (queue depth and workers are read from Redis now, hence the thread)."""
    payload = await run_in_threadpool(generate_latest, services.metrics.registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
