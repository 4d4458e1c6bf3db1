"""The README's start and stop commands, for real: PM2 runs embedded Redis, API, workers, dashboard and
the log rotator. The test stack checks memory and log sizes every second and rotates at 2 KB, so a memory
restart and a rotation happen within the test's time."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import AuthenticationError, Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import Worker

from shared.settings import Settings
from testbed.support import PROJECT_ROOT, free_port, wait_until
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes


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
            "CAPTCHAOCR_MEMORY_CHECK_INTERVAL_S": "1",
            "CAPTCHAOCR_LOG_MAX_SIZE": "2K",
            "CAPTCHAOCR_LOG_RETAIN": "2",
            "CAPTCHAOCR_LOG_CHECK_INTERVAL_S": "1",
        }
        self.state_dir = state_dir
        self.env.pop("REDIS_URL", None)
        self.env.pop("PM2_HOME", None)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=30)
        self.dashboard = httpx.Client(base_url=f"http://127.0.0.1:{self.dashboard_port}", timeout=30)

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [f"scripts/{script}"], cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )

    def pm2(self, *args: str) -> str:
        out = subprocess.run(
            ["node_modules/.bin/pm2", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
            env={**self.env, "PM2_HOME": str(self.state_dir / "pm2")}, timeout=60,
        )
        return out.stdout

    def pm2_processes(self) -> list[dict]:
        return json.loads(self.pm2("jlist"))

    def pm2_process(self, pm_id: int) -> dict:
        return next(p for p in self.pm2_processes() if p["pm_id"] == pm_id)

    def settings(self) -> Settings:
        return Settings(state_dir=self.state_dir)


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
    assert names == ["api", "dashboard", "logrotate", "redis", "trainer", "worker", "worker"]
    assert pm2_stack.api.get("/").json()["workers"] == 2


def test_embedded_redis_is_private_to_loopback_and_the_state_dir(pm2_stack: Pm2Stack) -> None:
    password = pm2_stack.settings().embedded_redis_password
    config = Redis(port=pm2_stack.redis_port, password=password).config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert config["dir"] == pm2_stack.env["CAPTCHAOCR_STATE_DIR"] + "/redis"
    assert config["maxmemory"] == str(256 * 1024 * 1024) and config["maxmemory-policy"] == "noeviction"


def test_embedded_redis_refuses_a_client_without_the_password(pm2_stack: Pm2Stack) -> None:
    with pytest.raises(AuthenticationError):
        Redis(port=pm2_stack.redis_port).set("captchaocr-test", "x")
    with pytest.raises(AuthenticationError):
        Redis(port=pm2_stack.redis_port, password="guess").ping()
    password_file = pm2_stack.settings().embedded_redis_password_file
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(password_file.read_text().strip()) >= 32
    redis = next(p for p in pm2_stack.pm2_processes() if p["name"] == "redis")
    command_line = Path(f"/proc/{redis['pid']}/cmdline").read_bytes()  # readable by every local user
    assert password_file.read_text().strip().encode() not in command_line


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
    """Restarted once, and then it stays up and serves: a worker that crashed again after its restart
    (a crash loop) would change pid and restart count again, and the other worker would answer for it."""
    victim = next(p for p in pm2_stack.pm2_processes() if p["name"] == "worker")
    restarts = victim["pm2_env"]["restart_time"]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        again = pm2_stack.pm2_process(victim["pm_id"])
        return again["pm2_env"]["status"] == "online" and again["pid"] not in (0, victim["pid"])

    wait_until(restarted, 20, "PM2 to restart the worker")
    pid = pm2_stack.pm2_process(victim["pm_id"])["pid"]
    redis = Redis(port=pm2_stack.redis_port, password=pm2_stack.settings().embedded_redis_password)
    wait_until(lambda: any(f".{pid}." in w.name for w in Worker.all(connection=redis)), 60,
               "the restarted worker to load its models and register")  # fmt: skip
    time.sleep(5)  # a crash loop would have struck by now
    again = pm2_stack.pm2_process(victim["pm_id"])
    assert again["pid"] == pid and again["pm2_env"]["status"] == "online"
    assert again["pm2_env"]["restart_time"] == restarts + 1
    label, image = corpus_images("npm_svg_captcha", 1)[0]
    served_by: list[str] = []
    for _ in range(20):  # two idle workers share the requests: the restarted one takes some of them
        answer = pm2_stack.api.post("/ocr", json={"image_base64": image}).json()
        assert answer["text"] == label, answer
        job = Job.fetch(answer["job_id"], redis, serializer=JSONSerializer)
        served_by.append(job.latest_result().worker_name)
        if f".{pid}." in served_by[-1]:
            break
    assert f".{pid}." in served_by[-1], f"the restarted worker (pid {pid}) answered none of {served_by}"


def test_every_python_app_has_its_memory_cap(pm2_stack: Pm2Stack) -> None:
    caps = {p["name"]: p["pm2_env"].get("max_memory_restart") for p in pm2_stack.pm2_processes()}
    assert caps == {"redis": None, "api": 512 * 2**20, "worker": 2**30, "dashboard": 256 * 2**20,
                    "logrotate": 128 * 2**20, "trainer": 3 * 2**30}  # fmt: skip  (Redis: its own maxmemory)


def test_a_worker_over_its_memory_cap_is_restarted_while_the_other_answers(pm2_stack: Pm2Stack) -> None:
    victim = next(p for p in pm2_stack.pm2_processes() if p["name"] == "worker")
    assert victim["monit"]["memory"] > 100 * 2**20  # a worker with its models loaded
    pm_id = str(victim["pm_id"])
    pm2_stack.pm2("restart", pm_id, "--max-memory-restart", "100M")  # this one worker alone passes its cap
    try:
        restarts = pm2_stack.pm2_process(victim["pm_id"])["pm2_env"]["restart_time"]
        answered = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for label, image in corpus_images("npm_svg_captcha", 3):  # read above 0.96
                response = pm2_stack.api.post("/ocr", json={"image_base64": image})
                assert response.status_code == 200 and response.json()["text"] == label, response.text
                answered += 1
            if pm2_stack.pm2_process(victim["pm_id"])["pm2_env"]["restart_time"] >= restarts + 3:
                break
        again = pm2_stack.pm2_process(victim["pm_id"])
        assert again["pm2_env"]["restart_time"] >= restarts + 3, "PM2 did not keep restarting the worker"
        assert again["pid"] != victim["pid"] and answered >= 3
        # The log rotator (2K in this stack) may have rotated PM2's own log too: read every copy.
        pm2_log = "".join(path.read_text() for path in (pm2_stack.state_dir / "pm2").glob("pm2*.log"))
        assert f"Process {pm_id} restarted because it exceeds --max-memory-restart" in pm2_log
    finally:
        # PM2 refuses a restart while it is restarting that process for its cap: try again until it takes.
        wait_until(lambda: pm2_stack.pm2("restart", pm_id, "--max-memory-restart", "1G") is not None, 30,
                   "the worker's own cap back", every_s=0.5)
    wait_until(lambda: pm2_stack.api.get("/").json()["workers"] == 2, 30, "both workers back")


def test_pm2_logs_are_rotated_and_old_ones_deleted(pm2_stack: Pm2Stack) -> None:
    logs = pm2_stack.state_dir / "logs"
    label, image = corpus_images("npm_svg_captcha", 1)[0]

    def rotated() -> list[Path]:
        return sorted(logs.glob("api.*__*.log"))

    def old_ones_deleted() -> bool:
        pm2_stack.api.post("/ocr", json={"image_base64": image})  # each request logs a line
        return "has been deleted" in (logs / "logrotate.out.log").read_text()

    wait_until(old_ones_deleted, 40, "the log rotator to rotate the API's log and delete old copies", 0.2)
    assert rotated() and all(path.stat().st_size >= 2048 for path in rotated())

    def at_most_retained() -> bool:  # a copy made just before our last request may still be deleted
        names = [path.name.split("__")[0] for path in rotated()]
        return max(names.count(name) for name in names) <= 2

    wait_until(at_most_retained, 10, "at most CAPTCHAOCR_LOG_RETAIN=2 copies of each API log")
