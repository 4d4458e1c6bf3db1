"""``POST /ocr/batch``: many captchas in one request, one job per image so every worker takes a share.

All jobs go onto the queue in one Redis round trip and their results are awaited together, so a batch
takes about as long as its share of the slowest worker, not the sum of its images.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from rq.job import Job
from rq.results import Result

from api.admission import enqueue_admitted
from api.dependencies import Services, ServicesDep
from api.results import wait_for_results
from api.schemas import ErrorDetail, InvalidRequestResponse, UnavailableResponse
from shared.contract import MAX_DIGITS, MIN_DIGITS, InputError, OcrJob
from shared.imaging import check_image
from shared.queue import cancel_if_queued, enqueue_reads

router = APIRouter()


class BatchRequest(BaseModel):
    """Images as in ``POST /ocr`` (raw base64 or data URLs); ``digits`` and ``min_confidence`` apply to all."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(min_length=1, description="Up to CAPTCHAOCR_BATCH_MAX_IMAGES images.")
    digits: int | None = Field(
        None, ge=MIN_DIGITS, le=MAX_DIGITS, strict=True, description="Digits in each captcha (4)."
    )
    min_confidence: float | None = Field(
        None, ge=0, le=1, strict=True, description="Refuse answers less probable."
    )


class BatchItem(BaseModel):
    """One image's outcome: ``number``/``text`` when read, else ``error`` (a 422 cause of ``/ocr``,
    ``timeout`` or ``worker_failed``) and ``detail``; ``job_id`` when a job was queued."""

    number: int | None = None
    text: str | None = None
    confidence: float | None = None
    error: str | None = None
    detail: str | None = None
    job_id: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(description="One per image, in the order sent.")
    elapsed_ms: float


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
        items[index] = _item(job.id, results.get(job.id), services)
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
            items[index] = BatchItem(error=error.code.value, detail=error.detail)
            continue
        readable[index] = OcrJob(image_base64=image, digits=body.digits, min_confidence=body.min_confidence)
    settings = services.settings
    enqueued = enqueue_admitted(services, lambda pipe: enqueue_reads(
        services.queue, list(readable.values()), settings, wait_s=settings.wait_timeout_s, pipeline=pipe))
    return items, dict(zip(readable, enqueued, strict=True))


def _item(job_id: str, result: Result | None, services: Services) -> BatchItem:
    if result is None:
        detail = f"no worker answered within {services.settings.wait_timeout_s:g} s"
        return BatchItem(error="timeout", detail=detail, job_id=job_id)
    if result.type != Result.Type.SUCCESSFUL:
        return BatchItem(error="worker_failed", detail="the worker failed while reading this image", job_id=job_id)
    answer = result.return_value
    services.metrics.observe_result(answer)
    if not answer.get("ok"):
        return BatchItem(error=answer["error"], detail=answer["detail"], confidence=answer.get("confidence"), job_id=job_id)
    return BatchItem(number=answer["number"], text=answer["text"], confidence=answer["confidence"], job_id=job_id)
