"""The job functions workers run. ``read_captcha`` is the stable entry point crawlers enqueue by name;
``read_captchas`` reads several captchas in one job (the API collects concurrent requests into it)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from rq.exceptions import StopRequested
from rq.timeouts import BaseTimeoutException

from shared.contract import BATCH_FUNCTION, JOB_FUNCTION, ErrorCode, OcrJob, OcrRefusal
from shared.settings import Settings
from worker.answering import Answerer

ALLOWED_FUNCTIONS = frozenset({JOB_FUNCTION, BATCH_FUNCTION})
# RQ ends a job with these (its timeout, a forced stop): they must end the whole job, not one item.
_WORKER_CONTROL = (BaseTimeoutException, StopRequested)

log = logging.getLogger("captchaocr.worker")

_answerer: Answerer | None = None


def load_models(settings: Settings) -> Answerer:
    """Load the recognizer once per process, before the worker takes its first job."""
    global _answerer
    _answerer = Answerer(settings)
    return _answerer


def read_captcha(**payload: Any) -> dict[str, Any]:
    """Read one captcha; the payload is :class:`shared.contract.OcrJob`, the result a plain dict.

    Whatever goes wrong with this one payload is its refusal, never an exception: in a ``read_captchas``
    job an exception would fail every request collected with it. Failures that are not the input's
    (a bug) are logged with their traceback, so they stay visible."""
    try:
        job = OcrJob.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors())
        return OcrRefusal(error=ErrorCode.INVALID_JOB, detail=f"invalid job payload: {problems}").model_dump()
    answerer = _answerer or load_models(Settings())
    try:
        return answerer.answer_job(job).model_dump(mode="json")
    except _WORKER_CONTROL:
        raise
    except Exception as error:  # noqa: BLE001 - refused alone, logged in full (see the docstring)
        log.exception("reading an image failed")
        detail = f"the worker could not read this image ({type(error).__name__}); see the worker's log"
        return OcrRefusal(error=ErrorCode.NOT_AN_IMAGE, detail=detail).model_dump()


def read_captchas(items: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Read each item as :func:`read_captcha` would, in order: a bad item is refused on its own and the
    others are still answered. Returns ``{"results": [...]}``, one result per item."""
    return {"results": [read_captcha(**item) if isinstance(item, dict) else _not_a_payload() for item in items]}


def _not_a_payload() -> dict[str, Any]:
    return OcrRefusal(error=ErrorCode.INVALID_JOB, detail="invalid job payload: an item is not an object").model_dump()
