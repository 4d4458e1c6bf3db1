"""``POST /feedback``: the right answer to a job, which makes its captcha a labelled sample of its site.

A crawler says ``correct: true`` when the site accepted the answer, or gives ``text`` (the answer a
fallback found, or the site's verdict) for an answered or a refused job alike, while the job's result
lives. The image is the one the job read: site requests keep it for exactly that long.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.dependencies import Services, ServicesDep
from api.job_lookup import find_request
from api.schemas import ErrorDetail, UnavailableResponse
from api.sites.sites import LABEL_PATTERN
from shared.contract import OcrAnswer
from shared.imaging import decode_base64
from shared.outcome import outcome_of

# Redis away: 503 with Retry-After, as on every route (api/app.py).
router = APIRouter(tags=["Site learning"], responses={503: {"model": UnavailableResponse}})
_GIVEN_KEY = "captchaocr:feedback:{job_id}"


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    correct: bool | None = Field(None, description="true: the answer given was right.")
    text: str | None = Field(None, pattern=LABEL_PATTERN, description="The right answer.")

    @model_validator(mode="after")
    def _one_verdict(self) -> FeedbackRequest:
        if (self.correct is True) == (self.text is not None):
            raise ValueError("send either 'correct': true or the right 'text'")
        return self


class FeedbackResponse(BaseModel):
    site: str
    text: str = Field(description="The label kept.")
    answer_was_right: bool | None = Field(description="Whether the service's answer was the label (null: refused).")
    samples: int


@router.post("/feedback", response_model=FeedbackResponse, responses={
    400: {"model": ErrorDetail}, 404: {"model": ErrorDetail}, 409: {"model": ErrorDetail},
    413: {"model": ErrorDetail}})  # fmt: skip
async def feedback(body: FeedbackRequest, services: ServicesDep) -> FeedbackResponse:
    """Teach the job's site its captcha's right answer (once per job)."""
    return await run_in_threadpool(_feedback, services, body)


def _feedback(services: Services, body: FeedbackRequest) -> FeedbackResponse:
    found = find_request(services, body.job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {body.job_id}: never queued, or its result expired")
    job, index = found
    payload = job.kwargs if index is None else job.kwargs["items"][index]
    site = payload.get("site")
    if not site:
        raise HTTPException(status.HTTP_409_CONFLICT, "the job was read for no site: there is nothing to teach")
    outcome = outcome_of(job.latest_result(), job.id, index=index)
    answered = outcome.text if isinstance(outcome, OcrAnswer) else None
    if body.correct and answered is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the job has no answer to confirm: send the right 'text'")
    label = answered if body.correct else body.text
    settings = services.settings
    if not services.redis.set(_GIVEN_KEY.format(job_id=body.job_id), 1, nx=True, ex=settings.result_ttl_s):
        raise HTTPException(status.HTTP_409_CONFLICT, "feedback on this job was given already")
    right = None if answered is None else answered == label
    samples = teach(services, site, payload, label, right)
    return FeedbackResponse(site=site, text=label, answer_was_right=right, samples=samples)


def teach(services: Services, site: str, payload: dict, label: str, right: bool | None) -> int:
    """Keep the job's image (``payload``: the job's arguments) as a sample of `site` labelled `label`, and
    count whether the service's answer was right (None: it refused). This route and the protocols'
    reportgood both teach a site here; returns the samples the site now holds."""
    services.metrics.observe_feedback(site, right)
    image = decode_base64(payload["image_base64"], services.limits)
    return services.sites.add_sample(site, image, label, "feedback").samples
