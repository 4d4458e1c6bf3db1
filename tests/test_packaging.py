"""What ``pip install`` gives: the product (api, worker, shared), not the benches or the tests; and the
installed ``captchaocr bench`` says what it needs instead of failing with a Python traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from testbed.support import PROJECT_ROOT

pytestmark = pytest.mark.slow  # builds a wheel

# Not sources: what the checkout's tools, runs and builds leave beside them.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "node_modules", "build", "dist", "*.egg-info",
                                     ".state", "__pycache__", ".pytest_cache", "out")  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (an in-tree build/ folder may hold stale files)."""
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(PROJECT_ROOT, tmp / "src", ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(tmp / "src")], check=True, timeout=300)  # fmt: skip
    return next((tmp / "dist").glob("captchaocr-*.whl"))


def test_the_wheel_holds_only_the_product(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {"api", "worker", "shared"} <= tops
    assert not tops & {"bench", "testbed", "tests", "scripts"}, tops


def test_installed_bench_command_says_it_needs_a_source_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # the installed files, ahead of the checkout on the path
    run = "import sys; from shared.cli import app; sys.argv[0] = 'captchaocr'; app()"
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", run, "bench", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "source checkout" in done.stderr and "Traceback" not in done.stderr
