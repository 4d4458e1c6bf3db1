"""The one settings object of CaptchaOCR, read from the environment (prefix ``CAPTCHAOCR_``).

Every process (API, worker, dashboard launcher, ``eco.config.js`` through ``python -m shared.settings``)
reads the same object, so a knob is defined and documented once.
"""

from __future__ import annotations

import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Knobs of the service; each one is listed in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="CAPTCHAOCR_", extra="ignore", frozen=True)

    # Redis and the queue
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "CAPTCHAOCR_REDIS_URL"),
        description="Redis to use; unset means the start command runs an embedded one.",
    )
    embedded_redis_port: int = Field(6390, description="Port of the embedded Redis (127.0.0.1 only).")
    queue_name: str = Field("captchaocr", description="RQ queue the API and crawlers enqueue on.")
    redis_timeout_s: float = Field(
        2.0, gt=0,
        description="Connect timeout, and how long any Redis reply may take beyond a command's own "
        "blocking time: a Redis that stops answering is reported (503) within it. Waits for results "
        "are not bound by it.",
    )
    # noeviction: a full Redis refuses new jobs (the API answers 503) rather than dropping queued ones.
    redis_max_memory: str = Field(
        "256mb", pattern=r"^[0-9]+(kb|mb|gb)$", description="Most memory the embedded Redis may hold."
    )

    # HTTP API
    host: str = Field("127.0.0.1", description="Address the API binds.")
    port: int = Field(8000, description="Port the API listens on.")
    tls_certfile: Path | None = Field(
        None, description="PEM certificate (chain): with tls_keyfile set, the API speaks HTTPS on its port "
        "(2captcha-python only speaks https://).",
    )  # fmt: skip
    tls_keyfile: Path | None = Field(None, description="PEM private key of tls_certfile.")
    wait_timeout_s: float = Field(10.0, gt=0, description="How long POST /ocr waits for a result: then 503.")
    max_queue_depth: int = Field(1000, ge=1, description="Jobs waiting beyond which new requests get 503 at once.")
    batch_max_images: int = Field(64, ge=1, description="Most images one POST /ocr/batch may carry.")
    collect_max_requests: int = Field(
        16, ge=1, le=64, description="Most POST /ocr requests collected into one job while every worker is busy (1: never)."
    )
    # 10, not 2: a held request could not start before one of this API's jobs ends (a model read, ~12 ms)
    # anyway; 2 ms cut bursts into small jobs (32 clients: 1.4 ms API CPU a request, 0.9 ms at 10).
    collect_wait_ms: float = Field(
        10.0, ge=0, description="Longest a request is held to be collected with others while every worker is busy."
    )

    # Anti-Captcha-compatible task API (/createTask, /getTaskResult, ...)
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="clientKey values the task API accepts, comma-separated; empty accepts any key."
    )
    keep_reported_images: bool = Field(
        False, description="Save the image and answer of each task reported incorrect (off: nothing is kept)."
    )
    reported_images_dir: Path | None = Field(
        None, description="Folder for kept reported images; unset means <state_dir>/reported."
    )
    reported_images_max_files: int = Field(
        1000, ge=1, description="Most reported images kept; past it the oldest are deleted."
    )

    # Dashboard
    dashboard_host: str = Field("127.0.0.1", description="Address rq-dashboard binds.")
    dashboard_port: int = Field(9181, description="Port rq-dashboard listens on.")
    # Flask refuses any other Host header (400): a web page that re-points its own name at 127.0.0.1
    # (DNS rebinding) cannot reach the dashboard.
    dashboard_trusted_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.1", "localhost"),
        description="Host names the dashboard answers to, comma-separated; add yours behind a proxy.",
    )

    # Process supervision (PM2): memory caps per role and log rotation
    # The seed's ceiling against the memory ONNX Runtime accumulates in a long-lived worker.
    worker_max_memory: str = Field(
        "1G", pattern=r"^[0-9]+[KMG]$", description="PM2 restarts a worker whose memory passes it."
    )
    api_max_memory: str = Field(
        "512M", pattern=r"^[0-9]+[KMG]$", description="PM2 restarts the API when its memory passes it."
    )
    dashboard_max_memory: str = Field(
        "256M", pattern=r"^[0-9]+[KMG]$", description="PM2 restarts the dashboard above it."
    )
    # A training of 500 samples peaks near 2 GB resident (torch's allocator keeps what it freed): the cap
    # leaves room above that, so only a runaway trainer is restarted, not every training that peaks.
    trainer_max_memory: str = Field(
        "3G", pattern=r"^[0-9]+[KMG]$", description="PM2 restarts the trainer above it (it trains again)."
    )
    log_rotator_max_memory: str = Field(
        "128M", pattern=r"^[0-9]+[KMG]$", description="PM2 restarts the log rotator above it."
    )
    memory_check_interval_s: float = Field(
        30, gt=0, description="How often PM2 compares each process's memory with its cap."
    )
    log_max_size: str = Field(
        "10M", pattern=r"^[0-9]+[KMG]?$", description="A PM2 log file is rotated once it is this big."
    )
    log_retain: int = Field(5, ge=1, description="Rotated files kept per PM2 log; older ones are deleted.")
    log_check_interval_s: int = Field(30, ge=1, description="How often the log rotator checks the sizes.")

    # Workers and the recognizer
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="Worker processes.",
        json_schema_extra={"default_text": "one per core"},  # the README's settings table shows this
    )
    ort_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per worker.")
    models: Annotated[tuple[str, ...], NoDecode] = Field(
        ("common_old", "digits_crnn"),
        description="Models to read with, comma-separated: ddddocr's common_old and common, our digits_crnn.",
    )
    retry_below: float = Field(
        0.7, ge=0, le=1, description="Confidence under which the recognizer tries more readings (0: never)."
    )
    confirm_below: float = Field(
        0.99, ge=0, le=1,
        description="Confidence under which the other models read the first view too; their agreement "
        "raises it (0: never).",
    )
    # Chosen on ../shared/corpus (2100 images, 7 generators): answers at or above 0.96 are right 98.0%
    # of the time; pooled precision stays at 0.98 down to 0.959 (bench/accuracy.py prints it).
    min_confidence: float = Field(0.96, ge=0, le=1, description="Answers below it are refused (422).")
    default_digits: int = Field(4, ge=1, le=8, description="Digits in a captcha when a request says none.")
    job_timeout_s: int = Field(
        10, ge=1, description="RQ job timeout: a job running longer fails (a read takes tens of ms)."
    )
    maintenance_interval_s: int = Field(
        30, ge=1, description="How often workers clean RQ's registries (abandoned jobs become failed)."
    )
    # An idle worker waits this long for a job between heartbeats: one blocking dequeue and one heartbeat a
    # beat, nothing on the per-job path. Its registration lives 3 beats, so a dead worker drops out of the
    # live count (GET /, the collector) that soon after its last beat.
    worker_heartbeat_s: int = Field(
        1, ge=1, le=60, description="How often an idle worker tells Redis it is alive; dead ones drop out in 3."
    )
    result_ttl_s: int = Field(300, ge=1, description="How long a finished job's result stays in Redis.")
    failure_ttl_s: int = Field(3600, ge=1, description="How long a failed job stays in the failed registry.")

    # Site learning: samples, the trainer, site models
    site_max_samples: int = Field(
        2000, ge=20, description="Most samples kept per site; past it the oldest are dropped."
    )
    learn_min_samples: int = Field(
        200, ge=20, description="Samples a site needs before the trainer trains it by itself."
    )
    learn_retrain_after: int = Field(
        100, ge=1, description="New samples since a site's last training that make the trainer train it again."
    )
    learn_max_minutes: float = Field(5.0, gt=0, description="Time budget of one site's training.")
    site_model_precision: float = Field(
        0.99, gt=0, le=1, description="A site model's confidence is calibrated so that its answers at "
        "min_confidence claim this precision, without more mistakes on the site's held-back samples than "
        "that claim makes plausible (answering as many as it can)."
    )
    # A handful of right held-back answers says nothing of a precision of 0.99 (docs/site-learning.md).
    site_model_min_answers: int = Field(
        10, ge=1, description="Held-back samples a site model must answer, at site_model_precision, "
        "before its confidence may reach min_confidence (otherwise it answers only with the generic reader)."
    )
    learn_scan_interval_s: float = Field(
        10.0, gt=0, description="How often the trainer looks for sites with enough new samples."
    )
    trainer_nice: int = Field(10, ge=0, le=19, description="CPU niceness of the trainer: requests come first.")
    trainer_threads: int = Field(2, ge=1, description="torch threads the trainer uses.")
    # 0.999, not the answer threshold: a wrong label teaches a site's model a wrong style.
    self_label_min_confidence: float = Field(
        0.999, ge=0, le=1, description="Answers for a site at least this sure become samples of it (1: never)."
    )
    site_model_check_s: float = Field(
        2.0, gt=0, description="How often a worker asks Redis whether a site it reads has a newer model."
    )

    # Input limits
    max_body_bytes: int = Field(4 * 1024 * 1024, description="Largest HTTP request body (413 above).")
    max_image_bytes: int = Field(2 * 1024 * 1024, description="Largest decoded image file.")
    max_image_side: int = Field(4096, description="Longest allowed image side in pixels.")
    max_image_pixels: int = Field(8_000_000, description="Most pixels an image may decode to.")

    log_format: Literal["text", "json"] = Field(
        "text",
        validation_alias=AliasChoices("LOG_FORMAT", "CAPTCHAOCR_LOG_FORMAT"),
        description="json writes one JSON object per log line.",
    )

    # Where the start command keeps Redis data, PM2 state and logs
    state_dir: Path = Field(PROJECT_ROOT / ".state", description="Folder for embedded Redis data and logs.")

    @field_validator("models", "api_keys", "dashboard_trusted_hosts", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        """Accept ``common_old,common`` (or ``key1,key2``) from the environment as well as a list."""
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @cached_property
    def effective_redis_url(self) -> str:
        """The configured Redis, or the embedded one the start command runs (with its password)."""
        if self.redis_url:
            return self.redis_url
        return f"redis://:{self.embedded_redis_password}@127.0.0.1:{self.embedded_redis_port}/0"

    @property
    def embedded_redis_password_file(self) -> Path:
        return self.state_dir / "redis-password"

    @cached_property
    def embedded_redis_password(self) -> str:
        """The embedded Redis's password: made on first use, then read back, so every process agrees.

        Without it any local process, or a web page speaking to 127.0.0.1, could write a job hash.
        The file is written aside (mode 0600) and linked into place, so a concurrent reader never sees
        half a password and the first of two concurrent writers wins.
        """
        path = self.embedded_redis_password_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()

    @property
    def effective_reported_images_dir(self) -> Path:
        """Where reported images are kept when ``keep_reported_images`` is on."""
        return self.reported_images_dir or self.state_dir / "reported"

    @property
    def embedded_redis(self) -> bool:
        """True when no Redis is configured, so the stack must start its own."""
        return self.redis_url is None


def main() -> None:
    """Print the resolved settings as JSON, for ``eco.config.js`` (one source of truth)."""
    settings = Settings()
    data = settings.model_dump(mode="json")
    data["effective_redis_url"] = settings.effective_redis_url
    data["embedded_redis"] = settings.embedded_redis
    print(json.dumps(data))


if __name__ == "__main__":
    main()
