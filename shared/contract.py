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

from shared.charsets import characters
from shared.sites import SITE_PATTERN

JOB_FUNCTION = "worker.jobs.read_captcha"
# ``read_captchas(items=[OcrJob, ...])`` returns ``{"results": [result, ...]}``, one per item in order: the
# API collects concurrent requests into one such job so that RQ's cost per job is shared among them.
BATCH_FUNCTION = "worker.jobs.read_captchas"
MIN_DIGITS = 1
MAX_DIGITS = 8
MAX_ALTERNATIVES = 5


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
    NOT_AN_EXPRESSION = "not_an_expression"
    LOW_CONFIDENCE = "low_confidence"


class LengthRange(BaseModel):
    """Characters in a captcha whose length varies: every length in [min, max] is read."""

    model_config = ConfigDict(extra="forbid")

    min: int = Field(ge=MIN_DIGITS, le=MAX_DIGITS)
    max: int = Field(ge=MIN_DIGITS, le=MAX_DIGITS)

    @model_validator(mode="after")
    def _ordered(self) -> LengthRange:
        if self.max < self.min:
            raise ValueError("length: max must not be below min")
        return self


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
    site: str | None = Field(
        None, pattern=SITE_PATTERN,
        description="The site the captcha comes from: read with the site's own model when it has one, and "
        "kept (while the result lives) so that feedback can teach the site.",
    )  # fmt: skip
    learn: bool | None = Field(
        None, description="false: read for the site without keeping a sure answer as a sample of it "
        "(default: the service's sure answers teach their site).",
    )  # fmt: skip

    charset: str | None = Field(
        None, max_length=62,
        description="Characters drawn: digits (default), letters, alnum, lower, upper, or the allowed "
        "characters themselves (digits and ASCII letters).",
    )  # fmt: skip
    case: bool | None = Field(
        None, description="Tell upper from lower case (default: compare and answer ignoring it)."
    )
    length: int | LengthRange | None = Field(
        None, description="Characters in the captcha, or {min, max} when it varies (1-8; digits is its "
        "digits-only alias).",
    )  # fmt: skip
    math: bool | None = Field(None, description="Read an arithmetic expression (a+b, a-b, a×b, optional =/?) "
                       "and answer its value.")  # fmt: skip
    alternatives: int | None = Field(
        None, ge=1, le=MAX_ALTERNATIVES, description="Also return this many most probable answers."
    )

    @model_validator(mode="after")
    def _digit_range(self) -> OcrJob:
        if self.max_digits is not None and (self.digits is None or self.max_digits < self.digits):
            raise ValueError("max_digits needs digits, and must not be below it")
        if self.charset is not None:
            allowed = characters(self.charset)  # raises ValueError on characters nothing reads
            if self.digits is not None and not allowed.isdigit():
                raise ValueError("digits is for digits only: give length with another charset")
        if isinstance(self.length, int) and not MIN_DIGITS <= self.length <= MAX_DIGITS:
            raise ValueError(f"length must be between {MIN_DIGITS} and {MAX_DIGITS}")
        if self.length is not None and self.digits is not None:
            raise ValueError("give length or digits, not both")
        if self.math and (self.charset is not None or self.length is not None or self.digits is not None):
            raise ValueError("math reads an expression: it takes no charset, length or digits")
        return self

    def lengths(self, default: int) -> tuple[int, int]:
        """The shortest and longest answer to read (``default`` when the job says none)."""
        if isinstance(self.length, LengthRange):
            return self.length.min, self.length.max
        shortest = self.length or self.digits or default
        return shortest, max(self.max_digits or shortest, shortest)


class Alternative(BaseModel):
    """One of the most probable answers."""

    text: str
    number: int | None = None
    probability: float


class OcrAnswer(BaseModel):
    """A captcha read with enough confidence."""

    ok: Literal[True] = True
    number: int | None = Field(
        None, description="The answer as an integer when it is all digits, or an expression's value."
    )
    text: str = Field(description="The characters as read (leading zeros kept), or the expression.")
    confidence: float
    model_ms: float = Field(description="Time the worker spent reading the image.")
    alternatives: list[Alternative] | None = Field(
        None, description="With alternatives: k, the k most probable answers, best (the answer) first."
    )


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
