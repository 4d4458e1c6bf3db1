"""Request and response bodies of the HTTP API (the OpenAPI schema at /docs comes from these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.contract import (
    MAX_ALTERNATIVES, MAX_DIGITS, MIN_DIGITS, Alternative, ErrorCode, LengthRange, OcrJob,
)  # fmt: skip
from shared.sites import SITE_PATTERN

SITE_FIELD = Field(None, pattern=SITE_PATTERN, description="The site the captcha comes from (1-100 of "
                   "A-Za-z0-9._:-): read with the site's own model once it has one, and kept for feedback.")


class ReadingFields(BaseModel):
    """What to read and for which site, on every way in: the fields of shared/contract.py's OcrJob of the
    same names (strict: a JSON value of the right type only; the job checks how they combine)."""

    charset: str | None = Field(
        None, strict=True, max_length=62, description="digits (default), letters, alnum, lower, upper, or "
        "the allowed characters themselves (digits and ASCII letters).",
    )  # fmt: skip
    case: bool | None = Field(
        None, strict=True, description="Tell upper from lower case (default: ignore it)."
    )
    length: StrictInt | LengthRange | None = Field(
        None, description="Characters in the captcha (1-8), or {min, max} when it varies.",
    )  # fmt: skip
    math: bool | None = Field(
        None, strict=True, description="Read an arithmetic expression and answer its value."
    )
    alternatives: int | None = Field(
        None, ge=1, le=MAX_ALTERNATIVES, strict=True, description="Also return the k most probable answers."
    )
    # strict: a JSON number only (``false`` would otherwise be read as a threshold of 0, ``"4"`` as 4).
    digits: int | None = Field(
        None, ge=MIN_DIGITS, le=MAX_DIGITS, strict=True, description="Digits in the captcha (4)."
    )
    min_confidence: float | None = Field(
        None, ge=0, le=1, strict=True, description="Refuse answers less probable."
    )
    site: str | None = SITE_FIELD
    learn: bool | None = Field(
        None, strict=True, description="false: do not keep a sure answer as a sample of the site (default: "
        "the service's sure answers teach their site).",
    )  # fmt: skip

    def reading(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ReadingFields.model_fields}


class OcrRequest(ReadingFields):
    """One captcha: base64 in ``image_base64`` (or the legacy ``text``), raw or as a data URL."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image_base64": "iVBORw0KGgoAAAANSUhEUgAA...", "digits": 4}]},
    )

    image_base64: str | None = Field(None, description="The image, raw base64 or data:image/...;base64,...")
    text: str | None = Field(None, description="Legacy name of image_base64.", deprecated=True)

    @model_validator(mode="after")
    def _exactly_one_image(self) -> OcrRequest:
        if (self.image_base64 is None) == (self.text is None):
            raise ValueError("send the image in exactly one of 'image_base64' or 'text'")
        self.to_job()  # the job's checks of how the fields combine (a 422 here, never in the route)
        return self

    def to_job(self) -> OcrJob:
        image = self.image_base64 if self.image_base64 is not None else self.text
        return OcrJob(image_base64=image or "", **self.reading())


class OcrResponse(BaseModel):
    """A captcha read with confidence."""

    number: int | None = Field(
        None, description="The answer as an integer when it is all digits (leading zeros are in text)."
    )
    text: str
    confidence: float
    alternatives: list[Alternative] | None = Field(None, description="With alternatives: k, the k most "
                                                   "probable answers, best (the answer) first.")
    job_id: str
    elapsed_ms: float = Field(description="Time from request to answer inside the API.")


class RefusalResponse(BaseModel):
    """Why the captcha was not answered (422)."""

    detail: str
    error: ErrorCode
    confidence: float | None = None
    job_id: str | None = None


class UnavailableResponse(BaseModel):
    """The service cannot answer now (503): Redis away, or no worker answered within the wait limit."""

    detail: str
    job_id: str | None = None


class WorkerFailedResponse(BaseModel):
    """The worker failed while reading the image (500); ``job_id`` names the failed job."""

    detail: str
    job_id: str | None = None


class BatchRequest(ReadingFields):
    """Images as in ``POST /ocr`` (raw base64 or data URLs); ``digits`` and ``min_confidence`` apply to all."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(min_length=1, description="Up to CAPTCHAOCR_BATCH_MAX_IMAGES images.")

    @model_validator(mode="after")
    def _combined(self) -> BatchRequest:
        OcrJob(image_base64="", **self.reading())  # the job's checks, as a 422
        return self


class BatchItem(BaseModel):
    """One image's outcome: ``number``/``text`` when read, else ``error`` (a 422 cause of ``/ocr``,
    ``timeout`` or ``worker_failed``) and ``detail``; ``job_id`` when a job was queued."""

    number: int | None = None
    text: str | None = None
    confidence: float | None = None
    alternatives: list[Alternative] | None = None
    error: str | None = None
    detail: str | None = None
    job_id: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(description="One per image, in the order sent.")
    elapsed_ms: float


class HealthResponse(BaseModel):
    status: str = Field(description="ok, or degraded when Redis or the workers are missing.")
    redis: bool
    workers: int
    queue_depth: int | None = None


class ErrorDetail(BaseModel):
    """A refusal described in words: 400 (the body is not UTF-8 text), 413 (the body is too large)."""

    detail: str


class ValidationIssue(BaseModel):
    """One item of FastAPI's validation error list."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class InvalidRequestResponse(BaseModel):
    """The request does not fit the schema (422): not JSON, missing or extra fields, wrong types."""

    detail: list[ValidationIssue]


# The two bodies of a 422 from POST /ocr: an image that cannot be read, or a request that is not valid.
OcrUnprocessable = RefusalResponse | InvalidRequestResponse
