"""The captchaocr command: in-process reading, reading through a running service, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.support import Stack
from tests.prerequisites import corpus_folder

CLI = [str(Path(sys.executable).parent / "captchaocr")]
SVG = sorted(corpus_folder("npm_svg_captcha").glob("*.png"))[:3]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def label(path: Path) -> str:
    return path.stem.split("_")[1]


def test_solve_in_process_prints_the_numbers() -> None:
    done = run("solve", *map(str, SVG))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{p}: {label(p)}" for p in SVG]


def test_solve_json_reports_refusals_with_exit_code_1(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    done = run("solve", "--json", str(SVG[0]), str(not_image))
    assert done.returncode == 1
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["ok"] is True and first["text"] == label(SVG[0])
    assert second["detail"].startswith("not a decodable image")
    assert second == {"file": str(not_image), "ok": False, "error": "not_an_image",
                      "detail": second["detail"], "confidence": None}


def test_solve_missing_file_is_a_usage_error() -> None:
    done = run("solve", "/no/such/captcha.png")
    assert done.returncode == 2
    assert "no such file" in done.stderr


@pytest.mark.slow
def test_solve_through_a_running_service(stack: Stack) -> None:
    done = run("solve", "--url", str(stack.http.base_url), "--json", str(SVG[1]))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["text"] == label(SVG[1]) and answer["job_id"]


def test_solve_with_service_down_exits_3() -> None:
    done = run("solve", "--url", "http://127.0.0.1:9", str(SVG[0]))
    assert done.returncode == 3
    assert "cannot reach CaptchaOCR" in done.stderr


def test_bench_runs_the_accuracy_benchmark_from_any_folder(tmp_path: Path) -> None:
    """From a checkout the command runs bench/accuracy.py whatever the current folder
    (tests/test_packaging.py: an installed copy says it needs a checkout)."""
    done = run("bench", str(SVG[0].parent), "--limit", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| npm_svg_captcha | 3 |" in done.stdout
