"""The job contract between the API, crawlers and the workers.

A job is ``worker.jobs.read_captcha(**OcrJob)`` on the queue ``Settings.queue_name``, serialized as JSON.
Its return value is always a plain dict: an :class:`OcrAnswer` (``ok`` true) or an :class:`OcrRefusal`
(``ok`` false). Refusals are results, not exceptions, so unreadable input never fills the failed-job
registry with images and the API can turn them into a 422 as they are.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JOB_FUNCTION = "worker.jobs.read_captcha"
# ``read_captchas(items=[OcrJob, ...])`` returns ``{"results": [result, ...]}``, one per item in order: the
# API collects concurrent requests into one such job so that RQ's cost per job is shared among them.
BATCH_FUNCTION = "worker.jobs.read_captchas"
MIN_DIGITS = 1
MAX_DIGITS = 8


class ErrorCode(StrEnum):
    """Why a captcha was not answered; each one is a 422 on the HTTP API."""

    EMPTY_INPUT = "empty_input"
    MALFORMED_BASE64 = "malformed_base64"
    MALFORMED_DATA_URL = "malformed_data_url"
    NOT_AN_IMAGE = "not_an_image"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TOO_SMALL = "image_too_small"
    INVALID_JOB = "invalid_job"
    TOO_FEW_DIGITS = "too_few_digits"
    LOW_CONFIDENCE = "low_confidence"


class OcrJob(BaseModel):
    """Keyword arguments of the job function: what a crawler enqueues."""

    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(description="The image as raw base64 or a data URL.")
    digits: int | None = Field(None, ge=MIN_DIGITS, le=MAX_DIGITS, description="Digits to read (default 4).")
    min_confidence: float | None = Field(None, ge=0, le=1, description="Refuse answers less probable.")
    max_digits: int | None = Field(
        None, ge=MIN_DIGITS, le=MAX_DIGITS,
        description="When set, read every length from digits to max_digits and keep the most probable.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _digit_range(self) -> OcrJob:
        if self.max_digits is not None and (self.digits is None or self.max_digits < self.digits):
            raise ValueError("max_digits needs digits, and must not be below it")
        return self


class OcrAnswer(BaseModel):
    """A captcha read with enough confidence."""

    ok: Literal[True] = True
    number: int
    text: str = Field(description="The digits as read, leading zeros kept.")
    confidence: float
    model_ms: float = Field(description="Time the worker spent reading the image.")


class OcrRefusal(BaseModel):
    """A captcha that was not answered, and why."""

    ok: Literal[False] = False
    error: ErrorCode
    detail: str
    confidence: float | None = None


class InputError(ValueError):
    """Input that cannot be read; carries the refusal the caller gets back."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def refusal(self) -> OcrRefusal:
        return OcrRefusal(error=self.code, detail=self.detail)
