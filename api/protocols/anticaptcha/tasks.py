"""Anti-Captcha tasks as RQ jobs: integer task ids, the digit range a task asks for, its result (an
outcome, shared/outcome.py, in the protocol's terms) and reports of a wrong one.

The protocol wants integer task ids. Each is drawn at random (a counter let anyone read other clients'
answers by counting, and reissued ids after Redis came back from an older snapshot) and the task's RQ job
is named ``task-<id>``, so no mapping has to be stored or expired: the job (and with it the task) lives
exactly as long as RQ keeps it, which is ``result_ttl_s`` after it finished.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from redis import Redis
from rq.job import Job, JobStatus

from api.admission import enqueue_admitted
from api.dependencies import Services
from api.job_lookup import find_job
from api.protocols.anticaptcha.schemas import (
    AntiCaptchaError, AntiCaptchaFailure, ImageToTextTask, Solution, TaskResultResponse,
)  # fmt: skip
from api.protocols.reports import record_incorrect
from shared.contract import MAX_DIGITS, MIN_DIGITS, ErrorCode, InputError, OcrAnswer, OcrJob
from shared.imaging import check_image
from shared.outcome import outcome_of
from shared.queue import enqueue_read
from shared.settings import Settings
from shared.sites import site_of

# Task ids are drawn from 1 to 2**53 - 1: every JSON client reads them exactly (JavaScript's largest safe
# integer; int64 and python-anticaptcha's int hold them too), and 53 random bits cannot be counted through.
MAX_TASK_ID = 2**53 - 1
MIN_FILE_BYTES = 100  # the protocol's ERROR_ZERO_CAPTCHA_FILESIZE threshold
_WAITING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
_INPUT_ERRORS = {
    ErrorCode.EMPTY_INPUT: AntiCaptchaError.ERROR_ZERO_CAPTCHA_FILESIZE,
    ErrorCode.IMAGE_TOO_SMALL: AntiCaptchaError.ERROR_ZERO_CAPTCHA_FILESIZE,
    ErrorCode.IMAGE_TOO_LARGE: AntiCaptchaError.ERROR_TOO_BIG_CAPTCHA_FILESIZE,
}


def task_job_id(task_id: int) -> str:
    return f"task-{task_id}"


def new_task_id(redis: Redis) -> int:
    """A random task id that names no live task (a clash is all but impossible; it is drawn again)."""
    while True:
        task_id = secrets.randbelow(MAX_TASK_ID) + 1
        if not redis.exists(Job.key_for(task_job_id(task_id))):
            return task_id


@dataclass(frozen=True)
class JobOptions:
    """What a protocol's task asks of the reading, in the job's terms (shared/contract.py's OcrJob)."""

    digits: int | None = None
    max_digits: int | None = None
    min_confidence: float | None = None
    charset: str | None = None  # None: digits, today's contract
    case: bool | None = None
    math: bool | None = None
    site: str | None = None

    def reading(self) -> dict[str, object]:
        """The job's fields of what to read (and for which site): with another charset the length is
        ``length`` (``digits`` is for digits only), with math there is none (the expression's shape is
        searched)."""
        if self.math:
            fields: dict[str, object] = {"math": True}
        elif self.charset is None:
            fields = {"digits": self.digits, "max_digits": self.max_digits, "case": self.case}
        else:
            length = self.digits if self.max_digits is None else {"min": self.digits, "max": self.max_digits}
            fields = {"charset": self.charset, "case": self.case, "length": length}
        return {**fields, "site": self.site}


def length_range(low: int | None, high: int | None, settings: Settings) -> tuple[int, int | None]:
    """``(digits, max_digits)`` from a task's fewest/most characters (0 or null: no limit)."""
    if not low and not high:
        return settings.default_digits, None
    low = max(low or MIN_DIGITS, MIN_DIGITS)
    high = min(high or MAX_DIGITS, MAX_DIGITS)
    if low > high:
        raise AntiCaptchaFailure(
            AntiCaptchaError.ERROR_TASK_NOT_SUPPORTED,
            f"minLength/maxLength allow no length from {MIN_DIGITS} to {MAX_DIGITS} digits",
        )
    return low, (high if high > low else None)


def job_options(task: ImageToTextTask, settings: Settings) -> JobOptions:
    """Anti-Captcha's task fields as job options: numeric 2 (letters only) reads letters, math the
    expression's value, case tells upper from lower; numeric 0 (no requirement) and 1 read digits, as the
    service did before it read letters (a crawler of numeric captchas sends 0 as often as 1)."""
    site = site_of(task.site, task.websiteURL)
    if task.math:
        return JobOptions(math=True, site=site)
    charset = "letters" if task.numeric == 2 else None
    digits, max_digits = length_range(task.minLength, task.maxLength, settings)
    return JobOptions(digits, max_digits, charset=charset, case=task.case, site=site)


def create_task(services: Services, image_base64: str | None, options: JobOptions) -> int:
    """Validate, number and enqueue a task (runs in a thread); a queued task waits at most the result TTL.
    Every protocol's image task comes through here, whatever its fields were called."""
    settings = services.settings
    try:  # as for POST /ocr only the header is read: a body corrupt past it is ERROR_CAPTCHA_UNSOLVABLE
        check_image(image_base64 or "", services.limits, min_bytes=MIN_FILE_BYTES)
    except InputError as error:
        raise AntiCaptchaFailure(
            _INPUT_ERRORS.get(error.code, AntiCaptchaError.ERROR_IMAGE_TYPE_NOT_SUPPORTED), error.detail
        ) from error
    task_id = new_task_id(services.redis)
    job = OcrJob(image_base64=image_base64 or "", min_confidence=options.min_confidence, **options.reading())
    # A report of a wrong answer saves the task's image, read back from its finished job.
    enqueue_admitted(services, lambda pipe: [enqueue_read(
        services.queue, job, settings, wait_s=settings.result_ttl_s, job_id=task_job_id(task_id),
        keep_image=settings.keep_reported_images, pipeline=pipe)])  # fmt: skip
    return task_id


def fetch_task(services: Services, task_id: int | None) -> Job:
    """The task's job, or the protocol's "no such task" when it never existed or has expired."""
    job = None if task_id is None else find_job(services, task_job_id(task_id))
    if job is None:
        raise AntiCaptchaFailure(
            AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID, "no such task: it never existed or its result has expired"
        )
    return job


def task_result(services: Services, task_id: int | None) -> TaskResultResponse:
    """getTaskResult: processing, ready with the digits, or unsolvable with the reason (runs in a thread)."""
    job = fetch_task(services, task_id)
    job_status = job.get_status()  # before the result: a worker may finish in between, never the reverse
    result = job.latest_result()
    if result is None:
        if job_status in _WAITING:
            return TaskResultResponse(status="processing")
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_CAPTCHA_UNSOLVABLE, f"the task ended {job_status}")
    outcome = outcome_of(result, job.id)
    if not isinstance(outcome, OcrAnswer):
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_CAPTCHA_UNSOLVABLE, outcome.detail)
    return TaskResultResponse(
        status="ready",
        solution=Solution(text=solution_text(outcome)),
        cost="0",
        createTime=int(job.enqueued_at.timestamp()) if job.enqueued_at else None,
        endTime=int(result.created_at.timestamp()),
        solveCount=1,
    )


def solution_text(answer: OcrAnswer) -> str:
    """What a site wants typed: the characters read, or an expression's value (its text is no answer)."""
    return answer.text if answer.text.isalnum() or answer.number is None else str(answer.number)


def answered_task(services: Services, task_id: int | None) -> tuple[Job, OcrAnswer]:
    """The task's job and answer: only an answered task can be reported, right or wrong (runs in a thread)."""
    job = fetch_task(services, task_id)
    answer = outcome_of(job.latest_result(), job.id)
    if not isinstance(answer, OcrAnswer):
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID, "the task has no answer to report")
    return job, answer


def report_incorrect(services: Services, task_id: int | None) -> None:
    """reportIncorrectImageCaptcha, 2Captcha's reportbad (runs in a thread)."""
    job, answer = answered_task(services, task_id)
    record_incorrect(services, job, answer, name=str(task_id))
