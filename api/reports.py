"""Answers a client reported as wrong: counted always, kept on disk only when the operator asks.

The image is never stored for this: with ``keep_reported_images`` a task's image stays in its RQ job (the
job's arguments) for as long as its result lives, and that is where a report reads it from.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from redis import Redis

from api.anticaptcha_schemas import AntiCaptchaError, AntiCaptchaFailure
from api.anticaptcha_tasks import fetch_task
from api.dependencies import Services
from shared.imaging import decode_base64

INCORRECT_REPORTS_KEY = "captchaocr:reports:incorrect_image"
_REPORTED_KEY = "captchaocr:anticaptcha:reported:{task_id}"


def count_incorrect_report(redis: Redis) -> int:
    """The one place a report is counted; the running total (metrics hook in here)."""
    return int(redis.incr(INCORRECT_REPORTS_KEY))


def keep_reported_image(folder: Path, task_id: int, image: bytes, answer: str) -> Path:
    """Write ``<task id>_answered-<answer>.<format>`` into ``folder`` for later analysis."""
    image_format = (Image.open(io.BytesIO(image)).format or "img").lower()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task_id}_answered-{answer}.{image_format}"
    path.write_bytes(image)
    return path


def report_incorrect(services: Services, task_id: int | None) -> None:
    """reportIncorrectImageCaptcha (runs in a thread): only an answered task can be reported, once."""
    job = fetch_task(services, task_id)
    result = job.latest_result()
    answer = result.return_value if result is not None and result.type == result.Type.SUCCESSFUL else None
    if not answer or not answer.get("ok"):
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID, "the task has no answer to report")
    settings = services.settings
    first = services.redis.set(_REPORTED_KEY.format(task_id=task_id), 1, nx=True, ex=settings.result_ttl_s)
    if not first:
        return
    count_incorrect_report(services.redis)
    if settings.keep_reported_images:
        image = decode_base64(job.kwargs["image_base64"], services.limits)
        keep_reported_image(settings.effective_reported_images_dir, task_id, image, answer["text"])
