"""Run one worker process: load the models, then take jobs until stopped (``python -m worker``)."""

from __future__ import annotations

import logging
import os
import time

os.environ.setdefault("ORT_LOGGING_LEVEL", "3")

from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402
from rq import Queue  # noqa: E402
from rq.exceptions import StopRequested  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from shared.logs import configure_logging  # noqa: E402
from shared.connection import connect  # noqa: E402
from shared.queue import make_queue  # noqa: E402
from shared.settings import Settings  # noqa: E402
from worker.jobs import load_models  # noqa: E402
from shared.rq_internals import WorkerJob  # noqa: E402
from worker.rq_worker import CaptchaWorker, worker_name  # noqa: E402

log = logging.getLogger("captchaocr.worker")
RESTART_AFTER_S = 1.0


def new_worker(queue: Queue, settings: Settings) -> CaptchaWorker:
    """A fresh RQ worker on the process's queue (its constructor already talks to Redis)."""
    return CaptchaWorker(
        [queue],
        connection=queue.connection,
        name=worker_name(),
        serializer=JSONSerializer,
        job_class=WorkerJob,
        log_job_description=False,
        default_result_ttl=settings.result_ttl_s,
        maintenance_interval=settings.maintenance_interval_s,
        heartbeat_s=settings.worker_heartbeat_s,
    )


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    load_models(settings)
    queue = make_queue(connect(settings), settings)
    log.info("models %s loaded; listening on %s", ",".join(settings.models), settings.queue_name)
    try:
        while True:
            try:
                worker = new_worker(queue, settings)
                worker.work(logging_level="WARNING")
                if worker.stop_requested():
                    return
                # RQ's loop ends on a Redis error outside its idle wait (saving a result, say).
                log.warning("worker loop ended; starting a new one in %.0f s", RESTART_AFTER_S)
            except RedisConnectionError as error:  # RQ's start talks to Redis before its loop handles errors
                log.warning("Redis unreachable (%s); trying again in %.0f s", error, RESTART_AFTER_S)
            time.sleep(RESTART_AFTER_S)  # then a fresh worker, with the models still loaded
    except StopRequested:  # SIGTERM/SIGINT outside RQ's loop, through the signal handlers it installed
        return


if __name__ == "__main__":
    main()
