"""Run one worker process: load the models, then take jobs until stopped (``python -m worker``)."""

from __future__ import annotations

import logging
import os
import time

os.environ.setdefault("ORT_LOGGING_LEVEL", "3")

from rq.serializers import JSONSerializer  # noqa: E402

from shared.logs import configure_logging  # noqa: E402
from shared.queue import connect, make_queue  # noqa: E402
from shared.settings import Settings  # noqa: E402
from worker.jobs import load_models  # noqa: E402
from worker.worker import CaptchaWorker, worker_name  # noqa: E402

log = logging.getLogger("captchaocr.worker")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    load_models(settings)
    connection = connect(settings)
    queue = make_queue(connection, settings)
    log.info("models %s loaded; listening on %s", ",".join(settings.models), settings.queue_name)
    while True:
        worker = CaptchaWorker(
            [queue],
            connection=connection,
            name=worker_name(),
            serializer=JSONSerializer,
            log_job_description=False,
            default_result_ttl=settings.result_ttl_s,
            maintenance_interval=settings.maintenance_interval_s,
        )
        worker.work(logging_level="WARNING")
        if worker._stop_requested or worker._shutdown_requested_date:
            return
        # The loop ended on a Redis error: start a fresh worker, keeping the loaded models.
        log.warning("worker loop ended unexpectedly; restarting it in 1 s")
        time.sleep(1)


if __name__ == "__main__":
    main()
