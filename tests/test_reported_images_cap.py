"""Reported images are kept up to ``reported_images_max_files``: past it the oldest are deleted, so
reports cannot fill the disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from testbed.support import Stack
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

KEY = "crawler-key"
IMAGES = corpus_images("npm_svg_captcha", 4)


def solve(stack: Stack, image: str) -> int:
    task_id = stack.http.post(
        "/createTask", json={"clientKey": KEY, "task": {"type": "ImageToTextTask", "body": image}}
    ).json()["taskId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = stack.http.post("/getTaskResult", json={"clientKey": KEY, "taskId": task_id}).json()
        if answer.get("status") == "ready":
            return task_id
        time.sleep(0.05)
    raise TimeoutError(f"task {task_id} not ready")


def test_only_the_newest_reported_images_are_kept(tmp_path: Path) -> None:
    folder = tmp_path / "reported"
    stack = Stack(tmp_path, workers=1, keep_reported_images="true", reported_images_dir=str(folder),
                  reported_images_max_files="2")  # fmt: skip
    try:
        folder.mkdir()
        (folder / "notes.txt").write_text("the operator's own file: not a reported image")
        reported = []
        for _, image in IMAGES:
            task_id = solve(stack, image)
            report = {"clientKey": KEY, "taskId": task_id}
            assert stack.http.post("/reportIncorrectImageCaptcha", json=report).json()["status"] == "success"
            reported.append(task_id)
        kept = sorted(path.name.split("_")[0] for path in folder.glob("*_answered-*"))
        assert kept == sorted(str(task_id) for task_id in reported[-2:])
        assert (folder / "notes.txt").exists()
    finally:
        stack.close()
