"""Benchmarks: they measure the service; the tests (in tests/) check its behaviour."""

from pathlib import Path


def output_file(value: str) -> Path:
    """An argparse type for --markdown/--plot: the path, its folder made (bench/out/ is not in a clone)."""
    path = Path(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def publish(lines: list[str], markdown: Path | None) -> None:
    """Print a bench's Markdown table, and write it to ``markdown`` when given."""
    table = "\n".join(lines)
    print(table)
    if markdown:
        markdown.write_text(table + "\n")
