"""Soak test from the command line: ``testbed/soak.py`` runs it (its docstring lists the checks); this
prints the Markdown summary and exits 1 when a check failed.

    python -m bench.soak                                    # 64 clients, 60 s, 2 workers
    python -m bench.soak --jobs 20000 --markdown bench/out/soak.md   # until 20,000 answers; RSS checked
    python -m bench.soak --seconds 100 --set result_ttl_s=30         # Redis memory flat after the TTL
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import output_file
from testbed.soak import SoakOptions, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = SoakOptions()
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="how long to run")
    parser.add_argument("--jobs", type=int, help="run until this many answers instead (and check RSS growth)")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--images", type=Path, default=defaults.images, help="folder of .png captchas")
    parser.add_argument("--limit", type=int, default=defaults.limit, help="images used (cycled)")
    parser.add_argument("--rss-after", type=int, default=defaults.rss_after, help="jobs before the first RSS figure")
    parser.add_argument("--rss-tolerance", type=float, default=defaults.rss_tolerance)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a CAPTCHAOCR_ setting for the stack, e.g. --set result_ttl_s=60")  # fmt: skip
    parser.add_argument("--sample-every", type=float, default=defaults.sample_every_s,
                        help="seconds between Redis used_memory samples")  # fmt: skip
    parser.add_argument("--redis-tolerance", type=float, default=defaults.redis_tolerance)
    parser.add_argument("--markdown", type=output_file, help="also write the summary here")
    args = parser.parse_args(argv)
    options = SoakOptions(
        clients=args.clients, seconds=args.seconds, jobs=args.jobs, workers=args.workers, images=args.images,
        limit=args.limit, rss_after=args.rss_after, rss_tolerance=args.rss_tolerance,
        settings=dict(item.split("=", 1) for item in args.set), sample_every_s=args.sample_every,
        redis_tolerance=args.redis_tolerance,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="captchaocr-soak-") as tmp:
        report = run_soak(options, Path(tmp), log=lambda text: print(text, file=sys.stderr))
    text = report.markdown()
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
