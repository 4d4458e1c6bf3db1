"""A short soak in CI: testbed/soak.py's checks, with 48 clients for 10 s against the API and 2 workers.

The long run (64 clients for 60 s, or ``--jobs 20000`` with the memory check) is ``python -m bench.soak``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.soak import SoakOptions, run_soak
from tests.prerequisites import corpus_folder

pytestmark = pytest.mark.slow


def test_short_soak_answers_right_without_5xx_and_leaves_only_expiring_keys(tmp_path: Path) -> None:
    options = SoakOptions(clients=48, seconds=10, workers=2, images=corpus_folder("py_captcha"), limit=30,
                          rss_after=200, warmup_s=1)  # fmt: skip
    report = run_soak(options, tmp_path, log=lambda text: None)
    print(report.markdown())
    failed = [f"{check.name}: {check.detail}" for check in report.checks if not check.ok]
    assert not failed, report.markdown()
    # Two workers keep up with 48 clients well within the wait limit: a 503 here is a fault, not load.
    assert report.statuses.get(503, 0) == 0, report.markdown()
    # The run did real work through the whole path, and both kinds of answer were compared.
    assert report.answers >= 200, report.markdown()
    assert report.statuses[200] > 0 and report.statuses[422] > 0, report.markdown()
    assert report.rss_first is not None and set(report.rss_end) == set(report.rss_first)
    assert report.redis_keys["rq:job:*"]["count"] > 0
