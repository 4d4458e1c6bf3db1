"""Throughput of a site with its own model against the generic reader, on the same images, in one run.

Starts a stack of its own (Redis, the API, W workers, the trainer), teaches a site N labelled images of
one generator of ../shared/sites/, waits for its model, stops the trainer, then alternates closed-loop
runs at each concurrency over the generator's ../shared/corpus/ images: without a site (the generic
reader at the service's default settings) and with the site. The ratio is taken within each pair of runs,
so a machine that slows down between hours slows both sides.

    .venv/bin/python -m bench.site_throughput --folder py_captcha --markdown bench/out/site_throughput.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

from bench import output_file, publish
from bench.learning import TRAINING_TIMEOUT_S, image_b64, upload
from testbed.loadgen import LoadResult, ocr_requests, run_load
from testbed.support import CORPUS, Stack

SITE = "bench.throughput"
SITES = CORPUS.parent / "sites"


def teach(stack: Stack, folder: str, samples: int) -> dict:
    """Upload the samples, train, and return the promoted model's status (or stop: nothing to compare)."""
    upload(stack.http, SITE, sorted((SITES / folder).glob("*.png"))[:samples])
    stack.http.post(f"/sites/{SITE}/train").raise_for_status()
    status = stack.trained(SITE, timeout_s=TRAINING_TIMEOUT_S)
    if status["model"] is None:
        raise SystemExit(f"the site model was not promoted: {status['last_training']}")
    return status


def measure(stack: Stack, requests: list[bytes], concurrency: int, seconds: float) -> LoadResult:
    return asyncio.run(run_load("127.0.0.1", stack.port, requests, concurrency, seconds, warmup_s=3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="py_captcha")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--limit", type=int, default=100, help="corpus images sent (cycled)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs; the median ratio is reported")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", type=output_file, default=None)
    args = parser.parse_args()
    images = [image_b64(p) for p in sorted((CORPUS / args.folder).glob("*.png"))[:args.limit]]
    lines = ["| concurrency | generic req/s | site req/s | ratio (median of pairs) | generic p50 ms | site p50 ms |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), workers=args.workers, trainer=True, learn_min_samples="1000000")
        try:
            status = teach(stack, args.folder, args.samples)
            print(f"model v{status['model']['version']}: {status['model']['validation']}", flush=True)
            if stack.trainer is not None:
                stack.trainer.stop()  # idle now; its process must not share the cores with the runs
            generic = ocr_requests("127.0.0.1", stack.port, images)
            site = ocr_requests("127.0.0.1", stack.port, images, site=SITE)
            for concurrency in args.concurrency:
                pairs = [(measure(stack, generic, concurrency, args.seconds),
                          measure(stack, site, concurrency, args.seconds)) for _ in range(args.runs)]
                ratio = statistics.median(s.requests_per_s / g.requests_per_s for g, s in pairs)
                g = statistics.median(g.requests_per_s for g, _ in pairs)
                s = statistics.median(s.requests_per_s for _, s in pairs)
                g50 = statistics.median(g.percentile_ms(50) for g, _ in pairs)
                s50 = statistics.median(s.percentile_ms(50) for _, s in pairs)
                lines.append(f"| {concurrency} | {g:.1f} | {s:.1f} | {ratio:.2f}x | {g50:.0f} | {s50:.0f} |")
                print(lines[-1], flush=True)
        finally:
            stack.close()
    publish(lines, args.markdown)


if __name__ == "__main__":
    main()
