"""Bodies and error codes of the Anti-Captcha task protocol (api.anti-captcha.com), ImageToTextTask only.

Field names are the protocol's (camelCase), so existing clients and libraries work unchanged. Unknown
fields (``softId``, ``languagePool``, ...) are ignored, as the paid service does. ``websiteURL`` (the
page the captcha is on) names the site whose own model reads it, as ``site`` does.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AntiCaptchaError(IntEnum):
    """The protocol's errors this service can give: the value is ``errorId``, the name ``errorCode``."""

    ERROR_KEY_DOES_NOT_EXIST = 1
    ERROR_NO_SLOT_AVAILABLE = 2
    ERROR_ZERO_CAPTCHA_FILESIZE = 3
    ERROR_TOO_BIG_CAPTCHA_FILESIZE = 4
    ERROR_CAPTCHA_UNSOLVABLE = 12
    ERROR_IMAGE_TYPE_NOT_SUPPORTED = 15
    ERROR_NO_SUCH_CAPCHA_ID = 16
    ERROR_TASK_ABSENT = 22
    ERROR_TASK_NOT_SUPPORTED = 23


class AntiCaptchaFailure(Exception):
    """Raised anywhere in a task-API handler; the router answers it as the protocol's error body."""

    def __init__(self, error: AntiCaptchaError, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def body(self) -> dict[str, int | str]:
        return ErrorResponse(
            errorId=self.error.value, errorCode=self.error.name, errorDescription=self.description
        ).model_dump()


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clientKey: str | None = Field(None, description="One of CAPTCHAOCR_API_KEYS (any value when none is set).")


class ImageToTextTask(BaseModel):
    """The one supported task: an image captcha whose answer is a number."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["ImageToTextTask"]
    body: str | None = Field(None, description="The image file as base64, without a data-URL prefix.")
    phrase: bool | None = Field(None, description="Ignored: answers are one number.")
    case: bool | None = Field(None, description="true: tell upper from lower case (letters).")
    numeric: int | None = Field(None, ge=0, le=2, description="0 or 1: digits; 2: letters only.")
    math: bool | None = Field(None, description="true: read an arithmetic expression and answer its value.")
    minLength: int | None = Field(None, ge=0, description="Fewest digits (0: no limit).")
    maxLength: int | None = Field(None, ge=0, description="Most digits (0: no limit).")
    comment: str | None = Field(None, description="Ignored.")
    websiteURL: str | None = Field(None, description="The captcha's page: its host is the site that learns it.")
    site: str | None = Field(None, description="The site (as POST /ocr's), when not the websiteURL's host.")


class CreateTaskRequest(_Request):
    task: ImageToTextTask | None = None


class TaskRequest(_Request):
    """getTaskResult and reportIncorrectImageCaptcha."""

    taskId: int | None = None


class BalanceRequest(_Request):
    pass


class ErrorResponse(BaseModel):
    errorId: int
    errorCode: str
    errorDescription: str


class Solution(BaseModel):
    text: str


class CreateTaskResponse(BaseModel):
    """Anti-Captcha's answer is the ``taskId``; CapSolver's also holds the solution when it is read."""

    errorId: Literal[0] = 0
    taskId: int
    status: Literal["processing", "ready"] | None = None
    solution: Solution | None = None


class TaskResultResponse(BaseModel):
    """``processing`` carries only ``errorId`` and ``status``; ``ready`` carries the rest."""

    errorId: Literal[0] = 0
    status: Literal["processing", "ready"]
    solution: Solution | None = None
    cost: str | None = None
    createTime: int | None = None
    endTime: int | None = None
    solveCount: int | None = None


class BalanceResponse(BaseModel):
    errorId: Literal[0] = 0
    balance: float


class ReportResponse(BaseModel):
    errorId: Literal[0] = 0
    status: Literal["success"] = "success"
