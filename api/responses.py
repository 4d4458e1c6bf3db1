"""The one place an outcome (shared/outcome.py) becomes an HTTP body and status, for ``POST /ocr``, each
item of ``POST /ocr/batch`` and ``GET /jobs/{id}``. (A protocol answers in its own bodies, in its own
subpackage: api/protocols/anticaptcha/tasks.py.)"""

from __future__ import annotations

from fastapi import status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.schemas import BatchItem, OcrResponse, RefusalResponse, UnavailableResponse, WorkerFailedResponse
from shared.contract import OcrAnswer, OcrRefusal
from shared.outcome import Outcome, Timeout, WorkerFailure

_STATUS = {
    OcrAnswer: status.HTTP_200_OK,
    OcrRefusal: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Timeout: status.HTTP_503_SERVICE_UNAVAILABLE,
    WorkerFailure: status.HTTP_500_INTERNAL_SERVER_ERROR,
}


def body(outcome: Outcome, job_id: str | None, elapsed_ms: float) -> BaseModel:
    """The body an outcome is answered with; ``elapsed_ms`` counts from the request (or the enqueue)."""
    match outcome:
        case OcrAnswer():
            return OcrResponse(number=outcome.number, text=outcome.text, confidence=outcome.confidence,
                               alternatives=outcome.alternatives, job_id=job_id, elapsed_ms=elapsed_ms)
        case OcrRefusal():
            return RefusalResponse(detail=outcome.detail, error=outcome.error, confidence=outcome.confidence,
                                   job_id=job_id)  # fmt: skip
        case Timeout():
            return UnavailableResponse(detail=outcome.detail, job_id=outcome.job_id)
        case WorkerFailure():
            return WorkerFailedResponse(detail=outcome.detail, job_id=outcome.job_id)


def response(outcome: Outcome, job_id: str | None, elapsed_ms: float) -> JSONResponse:
    """200 answer, 422 refusal, 503 no answer in time (retry, or look the job up), 500 failed job."""
    headers = {"Retry-After": "1"} if isinstance(outcome, Timeout) else None
    content = body(outcome, job_id, elapsed_ms).model_dump(mode="json")
    return JSONResponse(content, status_code=_STATUS[type(outcome)], headers=headers)


def batch_item(outcome: Outcome, job_id: str | None) -> BatchItem:
    """One image of a batch: its answer, or ``error`` (a 422 cause, ``timeout``, ``worker_failed``)."""
    match outcome:
        case OcrAnswer():
            return BatchItem(number=outcome.number, text=outcome.text, confidence=outcome.confidence,
                             alternatives=outcome.alternatives, job_id=job_id)  # fmt: skip
        case OcrRefusal():
            return BatchItem(error=outcome.error.value, detail=outcome.detail, confidence=outcome.confidence,
                             job_id=job_id)  # fmt: skip
        case Timeout():
            return BatchItem(error="timeout", detail=outcome.detail, job_id=job_id)
        case WorkerFailure():
            return BatchItem(error="worker_failed", detail=outcome.detail, job_id=job_id)
