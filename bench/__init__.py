"""Benchmarks: they measure the service; the tests (in tests/) check its behaviour."""

from pathlib import Path


def output_file(value: str) -> Path:
    """An argparse type for --markdown/--plot: the path, its folder made (bench/out/ is not in a clone)."""
    path = Path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
