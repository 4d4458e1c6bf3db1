"""docker-compose.yml is valid Compose and runs the same processes as eco.config.js."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import PROJECT_ROOT


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
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    apps = eco_apps()
    assert set(compose) == set(apps) | {"redis"}
    assert "redis" in apps  # embedded under PM2 when REDIS_URL is unset
    for name in ("api", "worker", "dashboard"):
        program, *args = compose[name]["command"]
        assert program == "python"
        assert Path(apps[name]["script"]).name == "python"
        # Same module; the dashboard's bind address differs by design (container vs. loopback).
        assert args[:3] == apps[name]["args"][:3], name
    assert compose["worker"]["deploy"]["replicas"]
    assert apps["worker"]["instances"] >= 1


def test_pm2_worker_only_profile() -> None:
    script = "console.log(JSON.stringify(require('./eco.config.js').apps.map(a => a.name)))"
    out = subprocess.run(
        ["node", "-e", script], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "CAPTCHAOCR_APPS": "worker", "REDIS_URL": "redis://redis-host:6379/0"},
    )
    assert json.loads(out.stdout) == ["worker"]
