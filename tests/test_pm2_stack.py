"""The README's start and stop commands, for real: PM2 runs embedded Redis, API, workers, dashboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import PROJECT_ROOT, corpus_images, free_port, wait_until


class Pm2Stack:
    def __init__(self, state_dir: Path) -> None:
        self.api_port, self.dashboard_port, self.redis_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "CAPTCHAOCR_STATE_DIR": str(state_dir),
            "CAPTCHAOCR_PORT": str(self.api_port),
            "CAPTCHAOCR_DASHBOARD_PORT": str(self.dashboard_port),
            "CAPTCHAOCR_EMBEDDED_REDIS_PORT": str(self.redis_port),
            "CAPTCHAOCR_WORKERS": "2",
        }
        self.env.pop("REDIS_URL", None)
        self.env.pop("PM2_HOME", None)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=30)
        self.dashboard = httpx.Client(base_url=f"http://127.0.0.1:{self.dashboard_port}", timeout=30)

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [f"scripts/{script}"], cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )

    def pm2_processes(self) -> list[dict]:
        out = subprocess.run(
            ["node_modules/.bin/pm2", "jlist"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
            env={**self.env, "PM2_HOME": self.env["CAPTCHAOCR_STATE_DIR"] + "/pm2"},
        )
        return json.loads(out.stdout)


@pytest.fixture(scope="module")
def pm2_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pm2Stack]:
    stack = Pm2Stack(tmp_path_factory.mktemp("pm2"))
    started = stack.run("up.sh")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield stack
    finally:
        stopped = stack.run("down.sh")
        assert stopped.returncode == 0, stopped.stderr


def test_up_starts_every_app_under_pm2(pm2_stack: Pm2Stack) -> None:
    names = sorted(p["name"] for p in pm2_stack.pm2_processes() if p["pm2_env"]["status"] == "online")
    assert names == ["api", "dashboard", "redis", "worker", "worker"]
    assert pm2_stack.api.get("/").json()["workers"] == 2


def test_embedded_redis_is_private_to_loopback_and_the_state_dir(pm2_stack: Pm2Stack) -> None:
    from redis import Redis

    config = Redis(port=pm2_stack.redis_port).config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["dir"] == pm2_stack.env["CAPTCHAOCR_STATE_DIR"] + "/redis"


def test_ocr_through_the_pm2_stack(pm2_stack: Pm2Stack) -> None:
    for label, image in corpus_images("npm_svg_captcha", 3):
        response = pm2_stack.api.post("/ocr", json={"image_base64": image})
        assert response.status_code == 200 and response.json()["text"] == label


def test_dashboard_shows_queue_workers_and_jobs(pm2_stack: Pm2Stack) -> None:
    label, image = corpus_images("npm_svg_captcha", 1)[0]
    job_id = pm2_stack.api.post("/ocr", json={"image_base64": image}).json()["job_id"]
    assert pm2_stack.dashboard.get("/").status_code == 200
    queues = pm2_stack.dashboard.get("/0/data/queues.json").json()["queues"]
    assert "captchaocr" in [q["name"] for q in queues]
    workers = pm2_stack.dashboard.get("/0/data/workers.json").json()["workers"]
    assert len(workers) == 2 and all(w["queues"] == ["captchaocr"] for w in workers)
    job = pm2_stack.dashboard.get(f"/0/data/job/{job_id}.json").json()  # saved without zlib, read by RQ
    assert job["status"] == "finished" and job["origin"] == "captchaocr" and job["result"]["text"] == label
    finished = pm2_stack.dashboard.get("/0/data/jobs/captchaocr/finished/100/desc/1.json").json()["jobs"]
    assert job_id in [listed["id"] for listed in finished]


def test_killed_worker_is_restarted_by_pm2(pm2_stack: Pm2Stack) -> None:
    victim = next(p for p in pm2_stack.pm2_processes() if p["name"] == "worker")
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        again = next(p for p in pm2_stack.pm2_processes() if p["pm_id"] == victim["pm_id"])
        return again["pm2_env"]["status"] == "online" and again["pid"] not in (0, victim["pid"])

    wait_until(restarted, 20, "PM2 to restart the worker")
    label, image = corpus_images("npm_svg_captcha", 1)[0]
    wait_until(lambda: pm2_stack.api.post("/ocr", json={"image_base64": image}).json()["text"] == label,
               30, "an answer after the restart")
