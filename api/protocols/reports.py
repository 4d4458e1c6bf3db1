"""Answers a client reported as wrong or right, through any protocol: counted once per job, kept on disk
only when the operator asks, and for a task read for a site, taught to that site as ``POST /feedback``
would (a right answer becomes a labelled sample; a wrong one is counted in the site's feedback).

The image is never stored for this: with ``keep_reported_images`` a task's image stays in its RQ job (the
job's arguments) for as long as its result lives, and that is where a report reads it from. The folder
keeps the newest ``reported_images_max_files`` reports, so reports cannot fill the disk.
"""

from __future__ import annotations

import io
from contextlib import suppress
from pathlib import Path

from PIL import Image
from redis import Redis
from rq.job import Job

from api.dependencies import Services
from api.sites.feedback import teach
from shared.contract import OcrAnswer
from shared.imaging import decode_base64

INCORRECT_REPORTS_KEY = "captchaocr:reports:incorrect_image"
CORRECT_REPORTS_KEY = "captchaocr:reports:correct_answer"  # 2Captcha's reportgood
_REPORTED_KEY = "captchaocr:reports:reported:{job_id}"
_REPORTED_CORRECT_KEY = "captchaocr:reports:reported-correct:{job_id}"
_KEPT_MARK = "_answered-"  # in the name of every kept image, and of no other file


def count_incorrect_report(redis: Redis) -> int:
    """The one place a report is counted; the running total (metrics hook in here)."""
    return int(redis.incr(INCORRECT_REPORTS_KEY))


def keep_reported_image(folder: Path, name: str, image: bytes, answer: str, max_files: int) -> Path:
    """Write ``<name>_answered-<answer>.<format>`` into ``folder`` for later analysis, then delete the
    oldest such files past ``max_files`` (other files in the folder are left alone)."""
    image_format = (Image.open(io.BytesIO(image)).format or "img").lower()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{_KEPT_MARK}{answer}.{image_format}"
    path.write_bytes(image)
    _delete_oldest(folder, max_files)
    return path


def _delete_oldest(folder: Path, max_files: int) -> None:
    """Reports are rare: listing the folder on each one is cheap. Another API process may be deleting
    the same files at the same time, hence the tolerance of a file already gone."""
    kept: list[tuple[int, str, Path]] = []
    for path in folder.glob(f"*{_KEPT_MARK}*"):
        with suppress(FileNotFoundError):
            kept.append((path.stat().st_mtime_ns, path.name, path))
    for *_, path in sorted(kept)[: max(0, len(kept) - max_files)]:
        path.unlink(missing_ok=True)


def record_incorrect(services: Services, job: Job, answer: OcrAnswer, name: str) -> None:
    """A client says ``answer``, the job's, is wrong (runs in a thread): counted the first time only;
    the image is kept as ``name`` (the id the client knows the task by) when the operator enabled it."""
    settings = services.settings
    if not _first_report(services, _REPORTED_KEY.format(job_id=job.id)):
        return
    count_incorrect_report(services.redis)
    if site := job.kwargs.get("site"):
        services.metrics.observe_feedback(site, False)
    if settings.keep_reported_images:
        image = decode_base64(job.kwargs["image_base64"], services.limits)
        folder, most = settings.effective_reported_images_dir, settings.reported_images_max_files
        keep_reported_image(folder, name, image, answer.text, most)


def record_correct(services: Services, job: Job, answer: OcrAnswer) -> None:
    """A client says the job's answer is right (runs in a thread): counted the first time only."""
    if not _first_report(services, _REPORTED_CORRECT_KEY.format(job_id=job.id)):
        return
    services.redis.incr(CORRECT_REPORTS_KEY)
    if site := job.kwargs.get("site"):
        teach(services, site, job.kwargs, answer.text, right=True)


def _first_report(services: Services, marker: str) -> bool:
    """True the first time ``marker`` is set while the job's result lives: a task is counted once."""
    return bool(services.redis.set(marker, 1, nx=True, ex=services.settings.result_ttl_s))
