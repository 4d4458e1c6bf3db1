"""``POST /ocr``: check the image's header, hand the job to the collector, answer its outcome."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.auth import RequireApiKey
from api.dependencies import ServicesDep
from api.responses import response
from api.schemas import ErrorDetail, OcrRequest, OcrResponse, OcrUnprocessable, UnavailableResponse
from shared.contract import InputError, OcrAnswer, OcrRefusal
from shared.imaging import check_image
from shared.outcome import Outcome, WorkerFailure

router = APIRouter()
# Checking a captcha-sized image takes tens of microseconds: less than a hop to a thread. A larger
# body is checked in a thread so that it never holds up the event loop.
INLINE_CHECK_CHARS = 64 * 1024


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
    job = body.to_job()
    try:
        if len(job.image_base64) > INLINE_CHECK_CHARS:
            await run_in_threadpool(check_image, job.image_base64, services.limits)
        else:
            check_image(job.image_base64, services.limits)
    except InputError as error:
        request.state.outcome = error.code.value
        return response(error.refusal(), job_id=None, elapsed_ms=0)
    job_id, outcome = await services.collector.outcome(job, services.settings.wait_timeout_s)
    services.metrics.observe_outcome(outcome, job.site)
    if not isinstance(outcome, WorkerFailure):  # a failure is counted and logged as its status, 500
        request.state.job_id = job_id
        request.state.outcome = _label(outcome)
    return response(outcome, job_id, elapsed_ms=round((time.perf_counter() - started) * 1000, 2))


def _label(outcome: Outcome) -> str:
    """The outcome's name in the request's log line and metrics."""
    if isinstance(outcome, OcrAnswer):
        return "solved"
    return outcome.error.value if isinstance(outcome, OcrRefusal) else "timeout"
