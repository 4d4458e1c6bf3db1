"""``/sites``: upload labelled samples, ask for training, see and forget what the service learnt of a site."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import Services, ServicesDep
from api.schemas import ErrorDetail, UnavailableResponse
from shared.contract import InputError
from shared.imaging import decode_base64, open_image
from shared.sites import SITE_PATTERN, SOURCES

# Redis away: 503 with Retry-After, as on every route (api/app.py).
router = APIRouter(tags=["Site learning"], responses={503: {"model": UnavailableResponse}})
SiteName = Annotated[str, Path(pattern=SITE_PATTERN, description="1-100 of A-Za-z0-9._:-")]
MAX_ITEMS = 256
LABEL_PATTERN = r"^[A-Za-z0-9+\-*x×=?]{1,16}$"


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(description="The captcha, raw base64 or a data URL, as for POST /ocr.")
    text: str = Field(pattern=LABEL_PATTERN, description="What the captcha shows (case kept).")


class SamplesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Sample] = Field(min_length=1, max_length=MAX_ITEMS)


class RefusedSample(BaseModel):
    index: int
    error: str
    detail: str


class SamplesResponse(BaseModel):
    added: int = Field(description="Items kept (an image the site holds with that label is not kept twice).")
    samples: int = Field(description="Samples the site holds now.")
    refused: list[RefusedSample] = Field(default_factory=list, description="Items not kept, and why.")


class Validation(BaseModel):
    accuracy: float
    answered: float = Field(description="Share answered at the default threshold.")
    precision: float | None


class ModelStatus(BaseModel):
    version: int
    trained_at: float
    samples_used: int
    train_seconds: float
    validation: Validation = Field(description="The site model on the site's held-back samples.")
    generic_validation: Validation = Field(description="The generic reader on the same samples.")


class SiteStatus(BaseModel):
    site: str
    samples: int
    samples_by_source: dict[str, int]
    training: Literal["idle", "queued", "running", "failed"]
    error: str | None = None
    model: ModelStatus | None = None
    last_training: dict[str, Any] | None = Field(None, description="The last run, promoted or not.")


@router.get("/sites", response_model=list[SiteStatus])
async def list_sites(services: ServicesDep) -> list[SiteStatus]:
    """Every site with samples or a model."""
    return await run_in_threadpool(lambda: [_status(services, site) for site in services.sites.sites()])


@router.get("/sites/{site}", response_model=SiteStatus, responses={404: {"model": ErrorDetail}})
async def get_site(site: SiteName, services: ServicesDep) -> SiteStatus:
    return await run_in_threadpool(_existing_status, services, site)


@router.delete("/sites/{site}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": ErrorDetail}})
async def delete_site(site: SiteName, services: ServicesDep) -> None:
    """Forget the site: its samples and its models."""
    if not await run_in_threadpool(services.sites.delete, site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site}")


@router.post("/sites/{site}/samples", response_model=SamplesResponse,
             responses={400: {"model": ErrorDetail}, 413: {"model": ErrorDetail}})  # fmt: skip
async def add_samples(site: SiteName, body: SamplesRequest, services: ServicesDep) -> SamplesResponse:
    """Keep labelled captchas of the site; each is checked like ``POST /ocr`` input and refused alone."""
    return await run_in_threadpool(_add_samples, services, site, body)


@router.post("/sites/{site}/train", status_code=status.HTTP_202_ACCEPTED, response_model=SiteStatus,
             responses={404: {"model": ErrorDetail}})  # fmt: skip
async def train_site(site: SiteName, services: ServicesDep) -> SiteStatus:
    """Ask the trainer to train the site now (it trains one site at a time)."""
    def request() -> SiteStatus:
        _existing_status(services, site)
        services.sites.request_training(site)
        return _status(services, site)

    return await run_in_threadpool(request)


def _add_samples(services: Services, site: str, body: SamplesRequest) -> SamplesResponse:
    refused, total, added = [], services.sites.sample_count(site), 0
    for index, item in enumerate(body.items):
        try:
            data = decode_base64(item.image_base64, services.limits)
            open_image(data, services.limits).close()  # decoded in full: the trainer will decode it too
        except InputError as error:
            refused.append(RefusedSample(index=index, error=error.code.value, detail=error.detail))
            continue
        kept = services.sites.add_sample(site, data, item.text, "upload")
        total, added = kept.samples, added + kept.added
    return SamplesResponse(added=added, samples=total, refused=refused)


def _existing_status(services: Services, site: str) -> SiteStatus:
    if not services.sites.exists(site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site}: it has no samples")
    return _status(services, site)


def _status(services: Services, site: str) -> SiteStatus:
    store = services.sites
    state = store.state(site)
    counts = store.counts(site)
    model = store.model_meta(site)
    return SiteStatus(
        site=site,
        samples=store.sample_count(site),
        samples_by_source={source: counts[source] for source in SOURCES},
        training=state["training"],
        error=state["error"],
        model=ModelStatus(version=model[0], **{key: model[1][key] for key in ModelStatus.model_fields
                                                if key != "version"}) if model else None,
        last_training=state["last_training"],
    )
