"""CapMonster Cloud's ImageToTextTask on the shared task API, served under ``/capmonster``.

Its client points at ``ClientOptions(service_url="https://host:port/capmonster")``. Only the task's
fields differ from Anti-Captcha's: ``recognizingThreshold`` (0-100) is how sure an answer must be, and
``Case``/``CapMonsterModule`` say nothing digits need.
"""

from __future__ import annotations

from pydantic import Field

from api.protocols.anticaptcha.routes import TaskProtocol, task_router
from api.protocols.anticaptcha.schemas import ImageToTextTask
from api.protocols.anticaptcha.tasks import JobOptions, length_range, unsupported
from shared.settings import Settings


class CapMonsterImageTask(ImageToTextTask):
    recognizingThreshold: int | None = Field(
        None, ge=0, le=100, description="Least confidence (percent) of an answer; below it: unsolvable."
    )
    Case: bool | None = Field(None, description="Ignored: digits have no case.")
    CapMonsterModule: str | None = Field(None, description="Ignored: one reader serves every captcha.")


def job_options(task: CapMonsterImageTask, settings: Settings) -> JobOptions:
    """CapMonster's fields as job options: the one place its letters-or-math tasks are refused for now
    (its client sends numeric 0 or 1 only, and no numeric at all by default)."""
    if task.numeric not in (None, 0, 1) or task.math:
        raise unsupported("only numeric captchas are read (math is not)")
    threshold = task.recognizingThreshold
    digits, max_digits = length_range(task.minLength, task.maxLength, settings)
    return JobOptions(digits, max_digits, min_confidence=None if threshold is None else threshold / 100)


CAPMONSTER = TaskProtocol(prefix="/capmonster", tag="CapMonster Cloud task API", task=CapMonsterImageTask,
                          options=job_options)  # fmt: skip
router = task_router(CAPMONSTER)
