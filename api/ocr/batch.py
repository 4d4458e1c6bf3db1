"""``POST /ocr/batch``: many captchas in one request, one job per image so every worker takes a share.

All jobs go onto the queue in one Redis round trip and their results are awaited together, so a batch
takes about as long as its share of the slowest worker, not the sum of its images.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from rq.job import Job

from api.admission import enqueue_admitted
from api.dependencies import Services, ServicesDep
from api.ocr.waiting import wait_for_results
from api.responses import batch_item
from api.schemas import (
    BatchItem, BatchRequest, BatchResponse, ErrorDetail, InvalidRequestResponse, UnavailableResponse,
)  # fmt: skip
from shared.contract import InputError, OcrJob
from shared.imaging import check_image
from shared.outcome import outcome_of
from shared.queue import cancel_if_queued, enqueue_reads

router = APIRouter()


@router.post("/ocr/batch", response_model=BatchResponse, response_model_exclude_none=True, responses={
    400: {"model": ErrorDetail}, 413: {"model": ErrorDetail},
    422: {"model": InvalidRequestResponse | ErrorDetail, "description": "Invalid, or too many images."},
    503: {"model": UnavailableResponse}})  # fmt: skip
async def ocr_batch(body: BatchRequest, request: Request, services: ServicesDep) -> BatchResponse:
    """Read many captchas at once; each image is answered or refused on its own (the request is 200)."""
    started = time.perf_counter()
    settings = services.settings
    if len(body.images) > settings.batch_max_images:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{len(body.images)} images: a batch holds at most {settings.batch_max_images}",
        )
    items, jobs = await run_in_threadpool(_validate_and_enqueue, body, services)
    results = await wait_for_results(services.async_redis, [job.id for job in jobs.values()], settings.wait_timeout_s)
    for job in jobs.values():
        if job.id not in results:
            await run_in_threadpool(cancel_if_queued, job)
    for index, job in jobs.items():
        outcome = outcome_of(results.get(job.id), job.id, settings.wait_timeout_s)
        services.metrics.observe_outcome(outcome, body.site)
        items[index] = batch_item(outcome, job.id)
    request.state.outcome = "batch"
    return BatchResponse(results=items, elapsed_ms=round((time.perf_counter() - started) * 1000, 2))


def _validate_and_enqueue(body: BatchRequest, services: Services) -> tuple[list[BatchItem], dict[int, Job]]:
    """Refuse unreadable images in place, enqueue the rest together (runs in a thread)."""
    items = [BatchItem() for _ in body.images]
    readable: dict[int, OcrJob] = {}
    for index, image in enumerate(body.images):
        try:
            check_image(image, services.limits)
        except InputError as error:
            items[index] = batch_item(error.refusal(), job_id=None)
            continue
        readable[index] = OcrJob(image_base64=image, **body.reading())
    settings = services.settings
    enqueued = enqueue_admitted(services, lambda pipe: enqueue_reads(
        services.queue, list(readable.values()), settings, wait_s=settings.wait_timeout_s, pipeline=pipe))
    return items, dict(zip(readable, enqueued, strict=True))
