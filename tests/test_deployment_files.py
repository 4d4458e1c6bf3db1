"""docker-compose.yml is valid Compose and runs the same processes as eco.config.js, with the same memory
caps and log limits; the Dockerfile is pinned and checks its health."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from shared.settings import Settings
from testbed.support import PROJECT_ROOT, RedisServer, Stack, free_port

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def size_bytes(text: str) -> int:
    """``1G``, ``512m``, ``256mb`` -> bytes (PM2, Docker and Redis spell sizes their own ways)."""
    match = re.fullmatch(r"([0-9]+)([kmg]b?)", str(text).lower())
    assert match, text
    return int(match.group(1)) * UNITS[match.group(2).upper()]


def eco_apps() -> dict[str, dict]:
    script = "console.log(JSON.stringify(require('./eco.config.js').apps))"
    out = subprocess.run(["node", "-e", script], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    return {app["name"]: app for app in json.loads(out.stdout)}


def test_compose_file_matches_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_run_what_pm2_runs() -> None:
    compose = COMPOSE["services"]
    apps = eco_apps()
    # Docker rotates container logs itself (see below), so compose has no log rotator.
    assert set(compose) == set(apps) - {"logrotate"} | {"redis"}
    assert "redis" in apps  # embedded under PM2 when REDIS_URL is unset
    for name in ("api", "worker", "dashboard", "trainer"):
        program, *args = compose[name]["command"]
        assert program == "python"
        assert Path(apps[name]["script"]).name == "python"
        assert args == apps[name]["args"], name
    assert compose["worker"]["deploy"]["replicas"] == "${CAPTCHAOCR_WORKER_REPLICAS:-2}"
    assert apps["worker"]["instances"] == Settings().workers


def test_every_app_has_its_roles_memory_cap_under_pm2_and_compose() -> None:
    settings, apps, compose = Settings(), eco_apps(), COMPOSE["services"]
    caps = {
        "api": settings.api_max_memory,
        "worker": settings.worker_max_memory,
        "dashboard": settings.dashboard_max_memory,
        "logrotate": settings.log_rotator_max_memory,
        "trainer": settings.trainer_max_memory,
    }
    assert size_bytes(settings.worker_max_memory) == 2**30  # the seed's 1G
    assert size_bytes(settings.api_max_memory) < 2**30 and size_bytes(settings.dashboard_max_memory) < 2**30
    for name, cap in caps.items():
        assert apps[name]["max_memory_restart"] == cap, name
        if name in compose:
            assert size_bytes(compose[name]["mem_limit"]) == size_bytes(cap), name
    redis_command = compose["redis"]["command"]
    redis_max = redis_command[redis_command.index("--maxmemory") + 1]
    assert size_bytes(redis_max) == size_bytes(settings.redis_max_memory)
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "noeviction"
    assert size_bytes(compose["redis"]["mem_limit"]) > size_bytes(redis_max)


def test_compose_rotates_every_services_logs_like_pm2() -> None:
    settings = Settings()
    for name, service in COMPOSE["services"].items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert size_bytes(logging["options"]["max-size"]) == size_bytes(settings.log_max_size), name
        assert int(logging["options"]["max-file"]) == settings.log_retain, name
    rotator = eco_apps()["logrotate"]
    assert rotator["script"] == str(PROJECT_ROOT / "node_modules" / "pm2-logrotate" / "app.js")
    config = json.loads(rotator["env"]["pm2-logrotate"])
    assert config["max_size"] == settings.log_max_size and config["retain"] == settings.log_retain
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    assert package["devDependencies"]["pm2-logrotate"] == "3.0.0"  # installed by bootstrap's `npm ci`


def test_compose_checks_every_services_health() -> None:
    services = COMPOSE["services"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("api", "worker", "dashboard"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "shared.healthcheck", name]
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}, name


def test_dockerfile_pins_its_base_and_checks_the_apis_health() -> None:
    lines = [line.strip() for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines()]
    base = next(line.split()[1] for line in lines if line.startswith("FROM "))
    assert re.fullmatch(r"python:3\.11\.[0-9]+-slim-[a-z]+", base), base
    install = next(line for line in lines if line.startswith("RUN pip install"))
    assert install.startswith("RUN pip install --constraint requirements.lock ")
    assert install.endswith('".[trainer]"') and "download.pytorch.org/whl/cpu" in install  # the CPU torch
    start = next(index for index, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    healthcheck = " ".join(lines[start:])
    assert 'CMD ["python", "-m", "shared.healthcheck", "api"]' in healthcheck
    assert re.fullmatch(r"redis:[0-9]+\.[0-9]+\.[0-9]+-alpine", COMPOSE["services"]["redis"]["image"])


def runtime_requirements(name: str, seen: set[str]) -> None:
    """Every distribution ``name`` needs at run time (extras and other platforms' markers left out)."""
    for text in distribution(name).requires or []:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = requirement.name.lower().replace("_", "-")
        if key not in seen:
            seen.add(key)
            try:
                runtime_requirements(requirement.name, seen)
            except PackageNotFoundError:
                seen.discard(key)  # optional on this platform and not installed


def test_the_image_installs_the_versions_the_tests_ran_with() -> None:
    lock = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        lock[name.lower().replace("_", "-")] = version
    needed: set[str] = set()
    runtime_requirements("captchaocr", needed)
    assert {"rq", "redis", "onnxruntime", "fastapi", "rq-dashboard"} <= needed
    for name in sorted(needed):
        assert lock.get(name) == distribution(name).version, f"{name} is not pinned to the tested version"


def test_pm2_worker_only_profile() -> None:
    script = "console.log(JSON.stringify(require('./eco.config.js').apps.map(a => a.name)))"
    out = subprocess.run(
        ["node", "-e", script], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "CAPTCHAOCR_APPS": "worker", "REDIS_URL": "redis://redis-host:6379/0"},
    )
    assert json.loads(out.stdout) == ["worker", "logrotate"]  # logs grow on a worker-only machine too


def healthcheck(role: str, env: dict[str, str]) -> int:
    """Exit code of the compose health check of ``role``, run as Docker runs it."""
    command = [sys.executable, "-m", "shared.healthcheck", role]
    return subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, **env}, timeout=60).returncode


@pytest.mark.slow
def test_health_checks_pass_on_a_running_stack_and_fail_without_it(stack: Stack) -> None:
    assert healthcheck("api", stack.env) == 0
    assert healthcheck("worker", stack.env) == 0
    nothing = str(free_port())
    assert healthcheck("api", {**stack.env, "CAPTCHAOCR_PORT": nothing}) == 1
    assert healthcheck("dashboard", {**stack.env, "CAPTCHAOCR_DASHBOARD_PORT": nothing}) == 1
    assert healthcheck("worker", {**stack.env, "REDIS_URL": f"redis://127.0.0.1:{nothing}/0"}) == 1
    no_worker_here = RedisServer().start()  # a Redis where no worker of this host is registered
    try:
        assert healthcheck("worker", {**stack.env, "REDIS_URL": no_worker_here.url}) == 1
    finally:
        no_worker_here.stop()
