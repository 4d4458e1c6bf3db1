"""HTTP routes: validate, enqueue, wait for the worker's result, answer."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rq.job import Job

from api.admission import enqueue_admitted
from api.collector import JobFailed
from api.auth import RequireApiKey
from api.dependencies import Services, ServicesDep
from api.schemas import (
    ErrorDetail, HealthResponse, OcrRequest, OcrResponse, OcrUnprocessable, RefusalResponse,
    UnavailableResponse,
)  # fmt: skip
from shared.contract import InputError, OcrJob, OcrRefusal
from shared.imaging import check_image
from shared.queue import enqueue_collected, enqueue_read
from shared.rq_internals import workers_key
from shared.worker_liveness import count_live_workers

router = APIRouter()
# Checking a captcha-sized image takes tens of microseconds: less than a hop to a thread. A larger
# body is checked in a thread so that it never holds up the event loop.
INLINE_CHECK_CHARS = 64 * 1024


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


@router.post(
    "/ocr",
    dependencies=[RequireApiKey],
    response_model=OcrResponse,
    responses={400: {"model": ErrorDetail}, 413: {"model": ErrorDetail}, 422: {"model": OcrUnprocessable},
               503: {"model": UnavailableResponse}},  # fmt: skip
)
async def ocr(body: OcrRequest, request: Request, services: ServicesDep) -> JSONResponse:
    """Read one captcha. 422 with the reason when it cannot be read with confidence, 503 when no
    worker answered within the wait limit (the body then holds the job id to look up later)."""
    started = time.perf_counter()
    settings = services.settings
    job = body.to_job()
    try:
        if len(job.image_base64) > INLINE_CHECK_CHARS:
            await run_in_threadpool(check_image, job.image_base64, services.limits)
        else:
            check_image(job.image_base64, services.limits)
    except InputError as error:
        request.state.outcome = error.code.value
        return _refusal(error.refusal(), job_id=None)
    try:
        job_id, answer = await services.collector.read(job, settings.wait_timeout_s)
    except JobFailed as failed:
        return JSONResponse(
            {"detail": "the worker failed while reading this image", "job_id": failed.job_id},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    request.state.job_id = job_id
    if answer is None:
        request.state.outcome = "timeout"
        return JSONResponse(
            UnavailableResponse(
                detail=f"no worker answered within {settings.wait_timeout_s:g} s", job_id=job_id
            ).model_dump(),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    services.metrics.observe_result(answer)
    if not answer.get("ok"):
        refusal = OcrRefusal.model_validate(answer)
        request.state.outcome = refusal.error.value
        return _refusal(refusal, job_id=job_id)
    request.state.outcome = "solved"
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    body = OcrResponse(
        number=answer["number"],
        text=answer["text"],
        confidence=answer["confidence"],
        job_id=job_id,
        elapsed_ms=elapsed_ms,
    )
    return JSONResponse(body.model_dump())


@router.get("/metrics", response_class=Response, include_in_schema=False, dependencies=[RequireApiKey])
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics (queue depth and workers are read from Redis now, hence the thread)."""
    payload = await run_in_threadpool(generate_latest, services.metrics.registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)


def enqueue_one(services: Services, jobs: list[OcrJob]) -> Job:
    """One request as its own ``read_captcha`` job, if the queue has room (runs in a thread)."""
    wait_s = services.settings.wait_timeout_s
    return enqueue_admitted(
        services, lambda pipe: [enqueue_read(services.queue, jobs[0], services.settings, wait_s, pipeline=pipe)]
    )[0]


def enqueue_collected_requests(services: Services, jobs: list[OcrJob]) -> Job:
    """Requests collected while every worker was busy, as one ``read_captchas`` job (runs in a thread)."""
    wait_s = services.settings.wait_timeout_s
    return enqueue_admitted(
        services, lambda pipe: [enqueue_collected(services.queue, jobs, services.settings, wait_s, pipeline=pipe)]
    )[0]


def _refusal(refusal: OcrRefusal, job_id: str | None) -> JSONResponse:
    body = RefusalResponse(
        detail=refusal.detail, error=refusal.error, confidence=refusal.confidence, job_id=job_id
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
