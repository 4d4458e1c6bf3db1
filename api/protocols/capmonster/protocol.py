"""CapMonster Cloud's ImageToTextTask on the shared task API, served under ``/capmonster``.

Its client points at ``ClientOptions(service_url="https://host:port/capmonster")``. Only the task's
fields differ from Anti-Captcha's: ``recognizingThreshold`` (0-100) is how sure an answer must be, ``Case``
is its client's ``case`` and ``CapMonsterModule`` is ignored.
"""

from __future__ import annotations

from pydantic import Field

from api.protocols.anticaptcha.routes import TaskProtocol, task_router
from api.protocols.anticaptcha.schemas import ImageToTextTask
from api.protocols.anticaptcha.tasks import JobOptions, length_range
from shared.settings import Settings
from shared.sites import site_of


class CapMonsterImageTask(ImageToTextTask):
    recognizingThreshold: int | None = Field(
        None, ge=0, le=100, description="Least confidence (percent) of an answer; below it: unsolvable."
    )
    Case: bool | None = Field(None, description="true: tell upper from lower case (its client's case).")
    CapMonsterModule: str | None = Field(None, description="Ignored: one reader serves every captcha.")


def job_options(task: CapMonsterImageTask, settings: Settings) -> JobOptions:
    """CapMonster's fields as job options: as Anti-Captcha's (numeric 2 reads letters, math the
    expression's value), with its client's ``Case`` for ``case`` and its threshold as the least
    confidence. Its client sends numeric 0 or 1 only (it refuses 2), and no numeric at all by default."""
    threshold = None if task.recognizingThreshold is None else task.recognizingThreshold / 100
    site = site_of(task.site, task.websiteURL)
    if task.math:
        return JobOptions(math=True, min_confidence=threshold, site=site)
    charset = "letters" if task.numeric == 2 else None
    digits, max_digits = length_range(task.minLength, task.maxLength, settings)
    case = task.case if task.Case is None else task.Case
    return JobOptions(digits, max_digits, threshold, charset=charset, case=case, site=site)


CAPMONSTER = TaskProtocol(prefix="/capmonster", tag="CapMonster Cloud task API", task=CapMonsterImageTask,
                          options=job_options)  # fmt: skip
router = task_router(CAPMONSTER)
