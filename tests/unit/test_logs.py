"""LOG_FORMAT=json turns every log line into one JSON object with the request's fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import logging
from shared.logs import configure_logging
from shared.settings import Settings
configure_logging(Settings().log_format)
logging.getLogger("captchaocr.api").info("POST /ocr 200", extra={"outcome": "solved", "job_id": "j1"})
logging.getLogger("rq.worker").info("Job OK")
"""


def run(log_format: str | None) -> str:
    """The script's log output with LOG_FORMAT set to ``log_format``, or unset (None)."""
    env = {key: value for key, value in os.environ.items() if key != "LOG_FORMAT"}
    if log_format is not None:
        env["LOG_FORMAT"] = log_format
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True).stderr


def test_json_format_writes_one_object_per_line() -> None:
    lines = run("json").splitlines()
    assert len(lines) == 1  # rq's per-job INFO line is silenced
    record = json.loads(lines[0])
    assert record["message"] == "POST /ocr 200"
    assert record["outcome"] == "solved" and record["job_id"] == "j1"
    assert record["levelname"] == "INFO"


def test_text_format_is_the_default() -> None:
    lines = run(None).splitlines()
    assert len(lines) == 1 and lines[0].endswith("INFO captchaocr.api POST /ocr 200")
