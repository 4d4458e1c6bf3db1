"""CapSolver's ImageToTextTask on the shared task API, served under ``/capsolver``.

Its client is pointed with ``CAPSOLVER_API_BASE=https://host:port/capsolver``. ``createTask`` answers an
image task with its solution (CapSolver's clients do not poll for one when it is there); ``score`` is
how sure an answer must be.
"""

from __future__ import annotations

from pydantic import Field

from api.protocols.anticaptcha.routes import TaskProtocol, task_router
from api.protocols.anticaptcha.schemas import ImageToTextTask
from api.protocols.anticaptcha.tasks import JobOptions
from shared.settings import Settings
from shared.sites import site_of


class CapSolverImageTask(ImageToTextTask):
    score: float | None = Field(None, ge=0, le=1, description="Least confidence of an answer.")
    module: str | None = Field(None, description="Ignored: one reader serves every captcha.")


def job_options(task: CapSolverImageTask, settings: Settings) -> JobOptions:
    """CapSolver's fields as job options: numeric 2 reads letters, math the expression's value, case
    tells upper from lower (its documented task has none of them; its client passes them on when sent).
    The task has no length fields: the reader's own length is read, as before."""
    site = site_of(task.site, task.websiteURL)
    if task.math:
        return JobOptions(math=True, min_confidence=task.score, site=site)
    charset = "letters" if task.numeric == 2 else None
    return JobOptions(min_confidence=task.score, charset=charset, case=task.case, site=site)


CAPSOLVER = TaskProtocol(prefix="/capsolver", tag="CapSolver task API", task=CapSolverImageTask,
                         options=job_options, answer_at_once=True)  # fmt: skip
router = task_router(CAPSOLVER)
