"""Real processes for the tests: a throwaway Redis on a free port, RQ workers, the API over HTTP.

Nothing here touches the machine's own Redis on 6379: every server gets a free port and is stopped
by its pid.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from redis import Redis

from shared.embedded_redis import redis_server_binary
from shared.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"


# The service tests check the plumbing (right number through HTTP, queue and workers), so they accept
# any answer the recognizer itself would give at a moderate threshold; the default threshold's
# refusals are tested in test_recognizer.py and by the PM2 stack, which runs with the defaults.
PLUMBING_SETTINGS = {"CAPTCHAOCR_MIN_CONFIDENCE": "0.5"}
# A stack that runs as deployed (the soak; the trainer, which calibrates and promotes a site model at the
# service's own threshold) overrides it with the default (keyword arguments of :class:`Stack`).
SERVICE_THRESHOLD = {"min_confidence": str(Settings.model_fields["min_confidence"].default)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def wait_trained(http: httpx.Client, site: str, timeout_s: float) -> dict:
    """The site's status (GET /sites/{site}) once the trainer ran and went idle again."""
    def done() -> bool:
        status = http.get(f"/sites/{site}").json()
        return status["training"] in ("idle", "failed") and status["last_training"] is not None

    wait_until(done, timeout_s, f"the trainer to train {site}", every_s=1)
    return http.get(f"/sites/{site}").json()


class CorpusMissing(FileNotFoundError):
    """The team's corpus (../shared/corpus, beside every checkout CI runs) is not where it should be."""


def corpus_images(folder: str, count: int) -> list[tuple[str, str]]:
    """(label, base64) of the first ``count`` images of a corpus folder."""
    paths = sorted((CORPUS / folder).glob("*.png"))[:count]
    if len(paths) < count:
        expected = f"{count} images of {folder} expected in {CORPUS}"
        raise CorpusMissing(f"{expected}: is ../shared beside the project?")
    return [(p.stem.split("_")[1], base64.b64encode(p.read_bytes()).decode()) for p in paths]


class RedisServer:
    """A private redis-server on a free loopback port that keeps nothing on disk, unless given a
    ``snapshot_dir``: then it saves there (``SAVE``, and at shutdown) and a restart loads the snapshot."""

    def __init__(self, port: int | None = None, snapshot_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.snapshot_dir = snapshot_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", "/tmp"]  # fmt: skip
        if self.snapshot_dir is not None:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            args += ["--save", "3600 1", "--dir", str(self.snapshot_dir)]  # the later options win
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_until(lambda: Redis.from_url(self.url).ping(), 10, f"redis on {self.port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self) -> Redis:
        return Redis.from_url(self.url)


class ServiceProcess:
    """One project process (``python -m api`` or ``python -m worker``) with its own environment."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.log_path = log_path
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module], cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Stack:
    """Redis + W workers + the API (and the trainer, when asked), as separate real processes, driven
    over HTTP."""

    def __init__(
        self, tmp: Path, workers: int = 1, redis_snapshots: bool = False,
        tls: tuple[Path, Path] | None = None, trainer: bool = False, **settings: str,
    ) -> None:
        """``tls``: (certificate, key) the API serves HTTPS with; its client trusts that certificate."""
        self.tmp = tmp
        self.redis = RedisServer(snapshot_dir=tmp / "redis" if redis_snapshots else None).start()
        self.port = free_port()
        self.env = {
            "REDIS_URL": self.redis.url,
            "CAPTCHAOCR_PORT": str(self.port),
            "CAPTCHAOCR_STATE_DIR": str(tmp),
            **PLUMBING_SETTINGS,
            **{f"CAPTCHAOCR_{key.upper()}": value for key, value in settings.items()},
        }
        if tls:
            self.env |= {"CAPTCHAOCR_TLS_CERTFILE": str(tls[0]), "CAPTCHAOCR_TLS_KEYFILE": str(tls[1])}
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.workers = [self.start_worker() for _ in range(workers)]
        self.api = ServiceProcess("api", self.env, tmp / "api.log")
        self.trainer = self.start_trainer() if trainer else None
        verify = ssl.create_default_context(cafile=tls[0]) if tls else True
        self.http = httpx.Client(base_url=self.base_url, timeout=30, verify=verify)
        try:
            wait_until(lambda: self.http.get("/").status_code == 200 or not workers, 60, "the API")
            wait_until(lambda: self.http.get("/").json()["workers"] == workers, 60, "the workers")
        except TimeoutError:
            self.close()  # a stack that never came up must not outlive the test
            raise

    def start_worker(self) -> ServiceProcess:
        return ServiceProcess("worker", self.env, self.tmp / "worker.log")

    def start_trainer(self) -> ServiceProcess:
        return ServiceProcess("trainer", self.env, self.tmp / "trainer.log")

    def ocr(self, **body: object) -> httpx.Response:
        return self.http.post("/ocr", json=body)

    def trained(self, site: str, timeout_s: float = 600) -> dict:
        return wait_trained(self.http, site, timeout_s)

    def close(self) -> None:
        self.http.close()
        for process in [p for p in (self.api, *self.workers, self.trainer) if p is not None]:
            process.stop()
        self.redis.stop()
