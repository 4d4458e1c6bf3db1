"""The dashboard as PM2 and compose start it: it never unpickles, and other web pages cannot drive it.

A real dashboard process reads a throwaway Redis in which a job was written with RQ's pickle serializer,
its data, meta and result each a pickle whose loading would create a marker file.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.results import Result
from rq.serializers import JSONSerializer

from testbed.support import PROJECT_ROOT, RedisServer, ServiceProcess, free_port, wait_until

pytestmark = pytest.mark.slow  # starts real processes

# The dashboard's module in eco.config.js and docker-compose.yml (test_deployment_files.py checks both).
DASHBOARD_MODULE = "shared.dashboard"
QUEUE = "captchaocr"
REGISTRIES = ("queued", "failed", "finished", "started", "deferred", "scheduled", "canceled")


class Planted:
    """Unpickling it runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class Dashboard:
    def __init__(self, tmp: Path) -> None:
        self.redis_server = RedisServer().start()
        self.redis = self.redis_server.client()
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        env = {"REDIS_URL": self.redis_server.url, "CAPTCHAOCR_DASHBOARD_PORT": str(self.port),
               "CAPTCHAOCR_STATE_DIR": str(tmp)}  # fmt: skip
        self.process = ServiceProcess(DASHBOARD_MODULE, env, tmp / "dashboard.log")
        self.http = httpx.Client(base_url=self.origin, timeout=30)
        wait_until(lambda: self.http.get("/").status_code == 200, 30, "the dashboard")

    def close(self) -> None:
        self.http.close()
        self.process.stop()
        self.redis_server.stop()


@pytest.fixture()
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    running = Dashboard(tmp_path)
    yield running
    running.close()


def plant_pickled_job(redis: Redis, marker: Path) -> str:
    """A job hash as a pickling RQ client writes it: data, meta and result are pickles that run code."""
    queue = Queue(QUEUE, connection=redis)  # RQ's default serializer: pickle
    job = queue.enqueue("builtins.print", Planted(marker), meta={"planted": Planted(marker)})
    Result.create(job, Result.Type.SUCCESSFUL, ttl=600, return_value=Planted(marker))
    FailedJobRegistry(QUEUE, connection=redis).add(job, ttl=600, exc_string="planted")
    FinishedJobRegistry(QUEUE, connection=redis).add(job, ttl=600)
    busy = Worker([queue], connection=redis, name="planted")  # a worker whose current job is the planted one
    busy.register_birth()
    busy.set_current_job_id(job.id)
    pickle.loads(redis.hget(job.key, "meta") or b"")  # the planted hash does run code when unpickled
    assert marker.exists()
    marker.unlink()
    return job.id


def read_only_routes(job_id: str) -> list[str]:
    views = ["/", "/0/view/queues", "/0/view/workers", "/0/view/jobs", f"/0/view/job/{job_id}"]
    views += [f"/0/view/jobs/{QUEUE}/{registry}/8/asc/1" for registry in REGISTRIES]
    data = ["/0/data/queues.json", "/0/data/workers.json", f"/0/data/job/{job_id}.json"]
    data += [f"/0/data/jobs/{QUEUE}/{registry}/100/{order}/1.json" for registry in REGISTRIES
             for order in ("asc", "dsc")]  # fmt: skip
    return views + data


def test_no_route_unpickles_a_planted_job(dashboard: Dashboard, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    job_id = plant_pickled_job(dashboard.redis, marker)
    for route in read_only_routes(job_id):
        dashboard.http.get(route)
        assert not marker.exists(), f"GET {route} unpickled the planted job"
    own_page = {"Origin": dashboard.origin}
    for route in [f"/job/{job_id}/requeue", f"/requeue/{QUEUE}", f"/queue/{QUEUE}/compact",
                  f"/queue/{QUEUE}/failed/empty", f"/job/{job_id}/delete"]:  # fmt: skip
        dashboard.http.post(route, headers=own_page)
        assert not marker.exists(), f"POST {route} unpickled the planted job"


def failed_json_job(redis: Redis) -> Job:
    """A job as this project writes them (JSON), in the failed registry."""
    job = Queue(QUEUE, connection=redis, serializer=JSONSerializer).enqueue("builtins.print", "x")
    Queue(QUEUE, connection=redis, serializer=JSONSerializer).remove(job)
    FailedJobRegistry(QUEUE, connection=redis, serializer=JSONSerializer).add(job, ttl=600, exc_string="x")
    return job


def test_requeue_needs_a_post_from_the_dashboard_itself(dashboard: Dashboard) -> None:
    job = failed_json_job(dashboard.redis)
    failed = FailedJobRegistry(QUEUE, connection=dashboard.redis, serializer=JSONSerializer)
    requeue = f"/requeue/{QUEUE}"
    assert dashboard.http.get(requeue).status_code == 405  # an <img src> on any page
    assert dashboard.http.post(requeue).status_code == 403  # no Origin: not a browser on our page
    assert dashboard.http.post(requeue, headers={"Origin": "http://evil.example"}).status_code == 403
    assert dashboard.http.post(requeue, headers={"Referer": "http://evil.example/x"}).status_code == 403
    for route in [f"/job/{job.id}/delete", f"/job/{job.id}/requeue", f"/queue/{QUEUE}/failed/empty",
                  f"/queue/{QUEUE}/compact"]:  # fmt: skip
        assert dashboard.http.post(route, headers={"Origin": "http://evil.example"}).status_code == 403, route
    assert job.id in failed.get_job_ids()
    response = dashboard.http.post(requeue, headers={"Origin": dashboard.origin})
    assert response.status_code == 200 and response.json() == {"count": 1, "status": "OK"}
    assert job.id not in failed.get_job_ids()
    assert job.id in Queue(QUEUE, connection=dashboard.redis).get_job_ids()


def test_an_untrusted_host_name_is_refused(dashboard: Dashboard) -> None:
    """DNS rebinding: a page on evil.example re-points its name at 127.0.0.1, so Origin matches Host."""
    rebound = {"Host": f"evil.example:{dashboard.port}", "Origin": f"http://evil.example:{dashboard.port}"}
    assert dashboard.http.post(f"/requeue/{QUEUE}", headers=rebound).status_code == 400
    assert dashboard.http.get("/0/data/queues.json", headers=rebound).status_code == 400
    trusted = {"Host": f"localhost:{dashboard.port}"}
    assert dashboard.http.get("/0/data/queues.json", headers=trusted).is_success



def test_the_compose_health_check_sees_the_dashboard(dashboard: Dashboard) -> None:
    check = [sys.executable, "-m", "shared.healthcheck", "dashboard"]
    env = {**os.environ, "CAPTCHAOCR_DASHBOARD_PORT": str(dashboard.port)}
    assert subprocess.run(check, cwd=PROJECT_ROOT, env=env, timeout=60).returncode == 0
