"""``GET /jobs/{id}``: where any captcha job is, and its answer once read.

The 503 of ``POST /ocr`` and every batch item carry a job id; a client that gave up waiting comes back
here for the result while it lives (``CAPTCHAOCR_RESULT_TTL_S`` after the job finished).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from rq.job import Job, JobStatus

from api.dependencies import Services, ServicesDep
from api.responses import body
from api.schemas import ErrorDetail, OcrResponse, RefusalResponse, UnavailableResponse
from shared.contract import BATCH_FUNCTION, OcrAnswer, OcrRefusal
from shared.outcome import WorkerFailure, outcome_of

router = APIRouter()

JobState = Literal["queued", "started", "finished", "failed", "canceled"]
_STATES: dict[JobStatus, JobState] = {
    JobStatus.QUEUED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "canceled",
}


class JobResponse(BaseModel):
    """A job's state; ``result`` (once finished) is the body ``POST /ocr`` answers with 200 or 422."""

    job_id: str
    status: JobState
    result: OcrResponse | RefusalResponse | None = None
    detail: str | None = None


def find_job(services: Services, job_id: str) -> Job | None:
    """A job of this service's queue, or None when it does not exist (any more) or belongs elsewhere."""
    job = Job.fetch_many([job_id], services.redis, serializer=services.queue.serializer)[0]
    return job if job is not None and job.origin == services.queue.name else None


@router.get("/jobs/{job_id}", response_model=JobResponse,
            responses={404: {"model": ErrorDetail, "description": "No such job: never queued, or expired."},
                       503: {"model": UnavailableResponse}})  # fmt: skip
async def get_job(
    job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")], services: ServicesDep
) -> JobResponse:
    """Status of any captcha job: queued, started, finished (with its result), failed or canceled (a job
    nobody waited for any more and no worker had taken)."""
    answer = await run_in_threadpool(_describe, services, job_id)
    if answer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}: never queued, or its result expired")
    return answer


def _describe(services: Services, job_id: str) -> JobResponse | None:
    found = find_request(services, job_id)
    if found is None:
        return None
    job, index = found
    state = _STATES.get(job.get_status(), "failed")
    result = job.latest_result() if state in ("finished", "failed") else None
    if result is None:
        detail = WorkerFailure.detail if state == "failed" else None
        return JobResponse(job_id=job_id, status=state, detail=detail)
    outcome = outcome_of(result, job.id, index=index)
    if not isinstance(outcome, OcrAnswer | OcrRefusal):
        return JobResponse(job_id=job_id, status=state, detail=outcome.detail)
    elapsed_ms = round((result.created_at - (job.enqueued_at or result.created_at)).total_seconds() * 1000, 2)
    return JobResponse(job_id=job_id, status="finished", result=body(outcome, job_id, elapsed_ms))


def find_request(services: Services, job_id: str) -> tuple[Job, int | None] | None:
    """The job that read this request, and the request's place in it: ``<job>_<index>`` names one of
    the requests the API collected into one ``read_captchas`` job."""
    job = find_job(services, job_id)
    if job is not None:
        return job, None
    collected, _, index = job_id.rpartition("_")
    if not collected or not index.isdigit():
        return None
    job = find_job(services, collected)
    if job is None or job.func_name != BATCH_FUNCTION or int(index) >= len(job.kwargs.get("items", [])):
        return None
    return job, int(index)
