"""A callback that jobs in tests/test_job_options.py name: importing this module or calling its function
leaves a file in the worker's state folder, so a test can tell whether a worker imported or ran it."""

from __future__ import annotations

import os
from pathlib import Path

IMPORTED = "callback_target_imported"
CALLED = "callback_target_called"


def _state_dir() -> Path | None:
    folder = os.environ.get("CAPTCHAOCR_STATE_DIR")
    return Path(folder) if folder else None


def leave_mark(*_: object) -> None:
    """An RQ callback (success, failure or stopped): any signature."""
    if (folder := _state_dir()) is not None:
        (folder / CALLED).touch()


if (_folder := _state_dir()) is not None:
    (_folder / IMPORTED).touch()
