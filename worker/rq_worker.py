"""The RQ worker class: which jobs a worker runs, and what it keeps of them (RQ's mechanics are
shared/rq_internals.py's)."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from rq.job import Job

from shared.queue import KEEP_IMAGE
from shared.rq_internals import TunedSimpleWorker
from worker.jobs import ALLOWED_FUNCTIONS

IMAGE_FIELD = "image_base64"


def forget_image(job: Job, *exc_info: object) -> bool:
    """Keep a job's arguments for the operators but not its image(s): a failed job stays in the failed
    registry for ``failure_ttl`` and a finished one ``result_ttl``. Also an RQ exception handler, hence
    the signature; returns True so RQ's other handling goes on."""
    kwargs = job.kwargs if isinstance(job.kwargs, dict) else {}
    items = kwargs.get("items") if isinstance(kwargs.get("items"), list) else [kwargs]
    payloads = [item for item in items if isinstance(item, dict)]
    images = [payload[IMAGE_FIELD] for payload in payloads if isinstance(payload.get(IMAGE_FIELD), str)]
    if not images:
        return True
    if "items" in kwargs:
        job.kwargs = {**kwargs, "items": [_without_image(item) for item in kwargs["items"]]}
    else:
        job.kwargs = _without_image(kwargs)
    if any(image[:64] in (job.description or "") for image in images):  # RQ's default names the arguments
        job.description = f"{job.func_name}(image removed)"
    return True


def _without_image(payload: object) -> object:
    """The payload with its image replaced by the image's length; a site's image is kept (feedback on the
    answer makes it a labelled sample of that site while the result lives)."""
    if isinstance(payload, dict) and isinstance(payload.get(IMAGE_FIELD), str) and not payload.get("site"):
        return {**payload, IMAGE_FIELD: f"<image removed: {len(payload[IMAGE_FIELD])} base64 characters>"}
    return payload


def worker_name() -> str:
    """Unique, and readable in rq-dashboard: which host and process a worker is."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


class CaptchaWorker(TunedSimpleWorker):
    """Refuses any job naming a callable outside :data:`ALLOWED_FUNCTIONS` or asking RQ for callbacks,
    webhooks, retries or repeats (no producer of ours writes them): such a job fails with a clear error
    and nothing is imported, run or contacted. Jobs are saved without their images, so Redis memory stays
    flat under load, unless the producer asked to keep it (an Anti-Captcha task, for a later report)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Runs for every failure, in this worker and for jobs abandoned by a dead worker that this
        # worker's registry maintenance moves to the failed registry.
        self.push_exc_handler(forget_image)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """RQ logs a failed job's arguments (``extra``, written out under LOG_FORMAT=json) before it runs
        the exception handlers: forget the image first, so it never reaches the log."""
        forget_image(job)
        super().handle_exception(job, *exc_info)

    def refusal_reason(self, job: Job) -> str | None:
        """Decided from what the job's hash names: nothing is imported to decide."""
        if job.func_name not in ALLOWED_FUNCTIONS:
            return f"{job.func_name!r} is not a CaptchaOCR job function"
        options = getattr(job, "requested_options", ())
        if options:
            return f"the job asks RQ for {', '.join(options)}, which CaptchaOCR jobs never carry"
        return None

    def before_saving(self, job: Job, refused: bool) -> None:
        if refused or not job.meta.get(KEEP_IMAGE):
            forget_image(job)
