"""Run the trainer process (``python -m trainer``): fine-tunes site models while the workers serve."""

from __future__ import annotations

import logging
import os
import signal
import time

os.environ.setdefault("ORT_LOGGING_LEVEL", "3")

import torch  # noqa: E402 - the trainer alone imports torch; workers and the API never do

from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402
from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: E402

from shared.connection import connect  # noqa: E402
from shared.logs import configure_logging  # noqa: E402
from shared.settings import Settings  # noqa: E402
from trainer.loop import Trainer  # noqa: E402

log = logging.getLogger("captchaocr.trainer")
RETRY_AFTER_S = 1.0


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format)
    os.nice(settings.trainer_nice)  # the workers' requests come first
    torch.set_num_threads(settings.trainer_threads)
    torch.set_flush_denormal(True)
    signal.signal(signal.SIGTERM, _stop)
    trainer = Trainer(connect(settings, blocking_s=settings.learn_scan_interval_s), settings)
    log.info("trainer ready: %d sites known", len(trainer.store.sites()))
    while True:
        try:
            trainer.step()
        except (RedisConnectionError, RedisTimeoutError) as error:  # Redis away: wait, as the workers do
            log.warning("Redis unreachable (%s); trying again in %.0f s", error, RETRY_AFTER_S)
            time.sleep(RETRY_AFTER_S)


if __name__ == "__main__":
    main()
