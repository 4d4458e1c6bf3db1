"""shared/outcome.py: every RQ result a request can meet becomes exactly one of the contract's outcomes."""

from __future__ import annotations

from typing import Any

from rq.results import Result

from shared.contract import ErrorCode, OcrAnswer, OcrRefusal
from shared.outcome import Timeout, WorkerFailure, outcome_of

ANSWER = {"ok": True, "number": 42, "text": "0042", "confidence": 0.97, "model_ms": 11.5}
REFUSAL = {"ok": False, "error": "low_confidence", "detail": "too unsure", "confidence": 0.2}


def result(value: Any, kind: Result.Type = Result.Type.SUCCESSFUL) -> Result:
    return Result("job", kind, connection=None, return_value=value)  # type: ignore[arg-type]


def test_no_result_is_a_timeout_naming_the_request() -> None:
    assert outcome_of(None, "job", 3.0) == Timeout("job", 3.0)
    assert outcome_of(None, "job", 2.5, index=1) == Timeout("job_1", 2.5)
    assert Timeout("job", 2.5).detail == "no worker answered within 2.5 s"


def test_answers_and_refusals_are_the_contract_models() -> None:
    assert outcome_of(result(ANSWER), "job") == OcrAnswer.model_validate(ANSWER)
    refusal = outcome_of(result(REFUSAL), "job")
    assert isinstance(refusal, OcrRefusal) and refusal.error is ErrorCode.LOW_CONFIDENCE


def test_a_collected_job_answers_each_request_with_its_own_item() -> None:
    collected = result({"results": [REFUSAL, ANSWER]})
    assert outcome_of(collected, "job", index=1) == OcrAnswer.model_validate(ANSWER)
    assert isinstance(outcome_of(collected, "job", index=0), OcrRefusal)


def test_a_failed_or_malformed_job_fails_the_job_and_a_missing_item_the_request() -> None:
    assert outcome_of(result(None, Result.Type.FAILED), "job") == WorkerFailure("job")
    assert outcome_of(result(None, Result.Type.FAILED), "job", index=2) == WorkerFailure("job")
    assert outcome_of(result({"no": "list"}), "job", index=0) == WorkerFailure("job")
    assert outcome_of(result({"results": [ANSWER]}), "job", index=1) == WorkerFailure("job_1")
    assert outcome_of(result({"results": ["not a dict"]}), "job", index=0) == WorkerFailure("job_0")
    assert outcome_of(result("not a dict"), "job") == WorkerFailure("job")
    assert outcome_of(result({"ok": True, "number": "x"}), "job") == WorkerFailure("job")
