"""What became of a captcha request, in the contract's terms: the one place an RQ result is unpacked.

A request ends in one of four outcomes: the worker's answer (:class:`OcrAnswer`), its refusal
(:class:`OcrRefusal`), no result within the wait (:class:`Timeout`) or a failure (:class:`WorkerFailure`:
the job raised, or returned nothing the contract knows). The HTTP routes, the protocols, the job lookup
and :class:`~shared.client.CaptchaClient` each turn an outcome into their own reply, so none of them
reads RQ's result, checks its type or picks an item of a collected job by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError
from rq.results import Result

from shared.contract import OcrAnswer, OcrRefusal


@dataclass(frozen=True)
class Timeout:
    """No result within the wait; the job may still be read later, under ``job_id`` (None: the request
    never reached Redis)."""

    job_id: str | None
    waited_s: float

    @property
    def detail(self) -> str:
        return f"no worker answered within {self.waited_s:g} s"


@dataclass(frozen=True)
class WorkerFailure:
    """The job failed (the worker raised, or its process died), or its value has no answer for this
    request; ``job_id`` names what failed: the job, or the request's part of it."""

    job_id: str | None
    detail: ClassVar[str] = "the worker failed while reading this image"


Outcome = OcrAnswer | OcrRefusal | Timeout | WorkerFailure


def request_id(job_id: str, index: int | None) -> str:
    """A request's id: its job's, or ``<job>_<index>`` when the API collected it into a ``read_captchas``
    job with others (``GET /jobs/{id}`` reads either)."""
    return job_id if index is None else f"{job_id}_{index}"


def returned(result: Result, job_id: str, index: int | None = None) -> dict[str, Any] | WorkerFailure:
    """The worker's value for one request: the job's return value, or item ``index`` of a collected job's
    ``results``. A failed job, or a collected one without a list, is the job's failure; a missing or
    malformed item is the request's."""
    if result.type != Result.Type.SUCCESSFUL:
        return WorkerFailure(job_id)
    value = result.return_value
    if index is not None:
        items = value.get("results") if isinstance(value, dict) else None
        if not isinstance(items, list):
            return WorkerFailure(job_id)
        value = items[index] if index < len(items) else None
    return value if isinstance(value, dict) else WorkerFailure(request_id(job_id, index))


def reading(value: dict[str, Any], job_id: str | None) -> OcrAnswer | OcrRefusal | WorkerFailure:
    """A worker's value for one request as the contract's answer or refusal (anything else: a failure)."""
    try:
        return OcrAnswer.model_validate(value) if value.get("ok") else OcrRefusal.model_validate(value)
    except ValidationError:
        return WorkerFailure(job_id)


def outcome_of(
    result: Result | None, job_id: str, waited_s: float = 0.0, index: int | None = None
) -> Outcome:
    """What became of request ``index`` of job ``job_id`` (None: the job itself) given the job's
    ``result``: None when none came within ``waited_s``."""
    if result is None:
        return Timeout(request_id(job_id, index), waited_s)
    value = returned(result, job_id, index)
    return value if isinstance(value, WorkerFailure) else reading(value, request_id(job_id, index))
