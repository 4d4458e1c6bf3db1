"""Container health checks: ``python -m shared.healthcheck api|worker|dashboard`` exits 0 when healthy.

One image runs every role, so docker-compose.yml names the role per service and the image's own
HEALTHCHECK checks the API, its default command. The slim image has no curl, hence Python. A worker is
healthy when RQ lists a worker of this host: RQ drops a worker whose heartbeats stop, so a hung or dead
worker process turns its container unhealthy.
"""

from __future__ import annotations

import socket
import sys

import httpx
from redis import RedisError
from rq import Worker

from shared.connection import connect
from shared.settings import Settings


def http_ok(port: int, timeout_s: float) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def worker_ok(settings: Settings) -> bool:
    """True when RQ lists a live worker named after this host (see ``worker.rq_worker.worker_name``)."""
    host = socket.gethostname()
    try:
        workers = Worker.all(connection=connect(settings))
    except RedisError:
        return False
    return any(worker.name.startswith(f"{host}.") for worker in workers)


def healthy(role: str, settings: Settings) -> bool:
    if role == "api":
        return http_ok(settings.port, settings.redis_timeout_s + 1)
    if role == "dashboard":
        return http_ok(settings.dashboard_port, settings.redis_timeout_s + 1)
    if role == "worker":
        return worker_ok(settings)
    raise SystemExit(f"usage: python -m shared.healthcheck api|worker|dashboard (not {role!r})")


def main() -> None:
    role = sys.argv[1] if len(sys.argv) == 2 else ""
    sys.exit(0 if healthy(role, Settings()) else 1)


if __name__ == "__main__":
    main()
