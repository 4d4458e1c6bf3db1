"""Schema fuzzing with schemathesis: every answer of the running API is one its OpenAPI schema documents.

Two real stacks, each fuzzed on every operation of its ``/openapi.json`` (examples, coverage and fuzzing
phases, valid and invalid data):
- up (Redis and one worker, wait limit 2 s): no 5xx at all, and every status code, content type, header
  and body is a documented one. Invalid input must be refused with a 4xx, except on the Anti-Captcha
  routes, whose protocol answers every request with HTTP 200 and an error body.
- Redis away: the same conformance checks; a 503 is the deliberate answer there, so it passes only
  where the operation documents it (any undocumented status, 5xx included, fails).

schemathesis runs as its CLI (``st run``) in a subprocess: its pytest integration (``from_fixture``)
does not run under pytest 9. Bounded for CI (about 15 s for both): a fixed seed (the same cases every
run), at most ``MAX_EXAMPLES`` generated cases per operation in the fuzzing phase, no shrinking, no
per-example deadline, one request at a time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.support import Stack

pytestmark = pytest.mark.slow  # starts real processes

SEED = 20251125
MAX_EXAMPLES = 50
CHECKS = ["status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance"]  # fmt: skip
# The protocols of these routes answer invalid requests with HTTP 200 and {errorId, errorCode, ...}.
TASK_API_TAGS = ("Anti-Captcha task API", "CapMonster Cloud task API", "CapSolver task API")


def config_toml(checks: list[str], refuse_invalid: bool) -> str:
    enabled = checks + (["negative_data_rejection"] if refuse_invalid else [])
    lines = [
        f"seed = {SEED}",
        "max-failures = 20",
        "request-timeout = 30",
        "workers = 1",
        "",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "no-shrink = true",
        'database = "none"',
        "",
        "[phases]",
        "stateful.enabled = false",
        "",
        "[checks]",
        "enabled = false",
        *(f"{name}.enabled = true" for name in enabled),
    ]
    for tag in TASK_API_TAGS if refuse_invalid else ():
        lines += ["", "[[operations]]", f'include-tag = "{tag}"', "checks.negative_data_rejection.enabled = false"]
    return "\n".join(lines) + "\n"


def run_schemathesis(stack: Stack, tmp: Path, checks: list[str], refuse_invalid: bool) -> None:
    config = tmp / "schemathesis.toml"
    config.write_text(config_toml(checks, refuse_invalid))
    st = Path(sys.executable).with_name("st")
    command = [str(st), "--config-file", str(config), "--no-color", "run",
               f"http://127.0.0.1:{stack.port}/openapi.json", "--report", "junit",
               "--report-dir", str(tmp / "report")]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_ANALYTICS": "false", "COLUMNS": "200"}
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    print(output)  # shown by pytest on failure (and with -s)
    assert done.returncode == 0, f"schemathesis found problems (exit {done.returncode}):\n{output[-12000:]}"
    tested = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert tested and int(tested[1]) == int(tested[2]) == int(tested[3]) > 0, f"not every operation ran:\n{output}"


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("fuzz-live"), workers=1, wait_timeout_s="2")
    yield stack
    stack.close()


def test_live_api_answers_only_what_its_schema_documents(live_stack: Stack, tmp_path: Path) -> None:
    run_schemathesis(live_stack, tmp_path, ["not_a_server_error", *CHECKS], refuse_invalid=True)
    assert live_stack.api.alive() and all(worker.alive() for worker in live_stack.workers)


def test_api_without_redis_answers_documented_503s_only(tmp_path_factory: pytest.TempPathFactory,
                                                        tmp_path: Path) -> None:  # fmt: skip
    stack = Stack(tmp_path_factory.mktemp("fuzz-redis-away"), workers=0, wait_timeout_s="2")
    try:
        stack.redis.stop()  # the API is up; every Redis call from now on fails
        run_schemathesis(stack, tmp_path, CHECKS, refuse_invalid=False)
        assert stack.api.alive()
    finally:
        stack.close()
