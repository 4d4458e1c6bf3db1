"""Throughput and latency benchmark: what the queue costs next to the model.

Measures in one run, on the same images:
  floor       the recognizer called in-process, in as many processes as workers (no HTTP, no queue);
  seed        bench/seed_app.py: FastAPI calling ddddocr in the request (what the product started from);
  captchaocr  HTTP -> API -> Redis -> W workers -> API -> HTTP, as deployed.
for each recognizer mode (``same-work``: one model, no extra readings, the seed's model work; and
``default``: the service's default settings), at each concurrency, and prints a Markdown table with
p50/p95/p99 latency, requests/s, CPU ms per request by process, Redis memory, and the ratios.

    python -m bench.throughput --images ../shared/corpus/py_captcha --seconds 30 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import output_file
from shared.settings import PROJECT_ROOT
from testbed.loadgen import LoadResult, ocr_requests, run_load
from testbed.support import Stack, free_port, wait_until

MODES = {
    "same-work": {"CAPTCHAOCR_MODELS": "common_old", "CAPTCHAOCR_RETRY_BELOW": "0"},
    "default": {},
}
DESIGNS = ["seed", "floor", "captchaocr"]


@dataclass
class Measurement:
    design: str
    mode: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms: dict[str, float]
    redis_kb: tuple[float, float] | None = None
    errors: int = 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def measure_http(design: str, mode: str, port: int, requests: list[bytes], concurrency: int, seconds: float,
                 roles: dict[str, list[int]], redis_client=None) -> Measurement:  # fmt: skip
    """Warm up, then one timed closed-loop run, with CPU time per process role over the timed part."""
    asyncio.run(run_load("127.0.0.1", port, requests, concurrency, seconds=min(3.0, seconds), warmup_s=0))
    memory_before = redis_client.info("memory")["used_memory"] / 1024 if redis_client else None
    cpu_before = {role: cpu_seconds(pids) for role, pids in roles.items()}
    result: LoadResult = asyncio.run(run_load("127.0.0.1", port, requests, concurrency, seconds, warmup_s=0))
    count = len(result.latencies_s) or 1
    cpu_ms = {role: (cpu_seconds(pids) - cpu_before[role]) * 1000 / count for role, pids in roles.items()}
    memory = (memory_before, redis_client.info("memory")["used_memory"] / 1024) if redis_client else None
    errors = sum(n for status, n in result.statuses.items() if status >= 500)
    return Measurement(design, mode, concurrency, result.requests_per_s, result.percentile_ms(50),
                       result.percentile_ms(95), result.percentile_ms(99), cpu_ms, memory, errors)  # fmt: skip


def _floor_process(env: dict[str, str], images: list[str], seconds: float, queue: multiprocessing.Queue) -> None:
    os.environ.update(env)
    from shared.contract import OcrJob
    from shared.settings import Settings
    from worker.answering import Answerer

    answerer = Answerer(Settings())
    jobs = [OcrJob(image_base64=image) for image in images]
    for job in jobs[:5]:
        answerer.answer_job(job)
    latencies = []
    cpu_start = time.process_time()
    deadline = time.perf_counter() + seconds
    index = 0
    while (started := time.perf_counter()) < deadline:
        answerer.answer_job(jobs[index % len(jobs)])
        latencies.append(time.perf_counter() - started)
        index += 1
    queue.put((latencies, time.process_time() - cpu_start))


def measure_floor(mode: str, images: list[str], processes: int, concurrency: int, seconds: float) -> Measurement:
    """The recognizer alone: min(concurrency, processes) processes reading back to back."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()
    count = min(concurrency, processes)
    workers = [context.Process(target=_floor_process, args=(MODES[mode], images, seconds, results))
               for _ in range(count)]  # fmt: skip
    for worker in workers:
        worker.start()
    gathered = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = LoadResult(latencies_s=[x for lat, _ in gathered for x in lat], duration_s=seconds)
    cpu_ms = sum(cpu for _, cpu in gathered) * 1000 / (len(latencies.latencies_s) or 1)
    return Measurement("floor", mode, concurrency, latencies.requests_per_s, latencies.percentile_ms(50),
                       latencies.percentile_ms(95), latencies.percentile_ms(99), {"workers": cpu_ms})  # fmt: skip


def measure_seed(images: list[str], concurrencies: list[int], seconds: float) -> list[Measurement]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.seed_app", "--port", str(port)], cwd=PROJECT_ROOT)
    try:
        import httpx

        wait_until(lambda: httpx.post(f"http://127.0.0.1:{port}/ocr", json={"image_base64": images[0]})
                   .status_code in (200, 422), 60, "the seed app")  # fmt: skip
        requests = ocr_requests("127.0.0.1", port, images)
        return [measure_http("seed", "same-work", port, requests, c, seconds, {"api": [process.pid]})
                for c in concurrencies]  # fmt: skip
    finally:
        process.terminate()
        process.wait(10)


def measure_captchaocr(mode: str, images: list[str], workers: int, concurrencies: list[int],
                       seconds: float) -> list[Measurement]:  # fmt: skip
    settings = {key.removeprefix("CAPTCHAOCR_").lower(): value for key, value in MODES[mode].items()}
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), workers=workers, **settings)
        try:
            requests = ocr_requests("127.0.0.1", stack.port, images)
            roles = {"api": [stack.api.pid], "workers": [w.pid for w in stack.workers],
                     "redis": [stack.redis.process.pid]}  # fmt: skip
            return [measure_http("captchaocr", mode, stack.port, requests, c, seconds, roles, stack.redis.client())
                    for c in concurrencies]  # fmt: skip
        finally:
            stack.close()


def one_run(images: list[str], workers: int, concurrencies: list[int], seconds: float,
            designs: list[str], modes: list[str]) -> list[Measurement]:  # fmt: skip
    found = measure_seed(images, concurrencies, seconds) if "seed" in designs else []
    for mode in modes:
        if "floor" in designs:
            found += [measure_floor(mode, images, workers, c, seconds) for c in concurrencies]
        if "captchaocr" in designs:
            found += measure_captchaocr(mode, images, workers, concurrencies, seconds)
    return found


def median_of(runs: list[list[Measurement]]) -> list[Measurement]:
    """Per row, the median of each figure over the runs (the machines are noisy)."""
    rows = []
    for same in zip(*runs, strict=True):
        first = same[0]
        med = lambda get: statistics.median(get(m) for m in same)  # noqa: E731
        cpu = {role: med(lambda m, r=role: m.cpu_ms[r]) for role in first.cpu_ms}
        memory = (med(lambda m: m.redis_kb[0]), med(lambda m: m.redis_kb[1])) if first.redis_kb else None
        rows.append(Measurement(first.design, first.mode, first.concurrency, med(lambda m: m.requests_per_s),
                                med(lambda m: m.p50_ms), med(lambda m: m.p95_ms), med(lambda m: m.p99_ms), cpu,
                                memory, max(m.errors for m in same)))  # fmt: skip
    return rows


def markdown(rows: list[Measurement]) -> str:
    lines = ["| design | mode | conc. | req/s | p50 ms | p95 ms | p99 ms | CPU ms/req (api / workers / redis) "
             "| Redis KiB before → after | 5xx |", "|" + "---|" * 10]  # fmt: skip
    for m in rows:
        cpu = " / ".join(f"{m.cpu_ms[r]:.1f}" if r in m.cpu_ms else "-" for r in ("api", "workers", "redis"))
        memory = f"{m.redis_kb[0]:.0f} → {m.redis_kb[1]:.0f}" if m.redis_kb else "-"
        lines.append(f"| {m.design} | {m.mode} | {m.concurrency} | {m.requests_per_s:.1f} | {m.p50_ms:.1f} | "
                     f"{m.p95_ms:.1f} | {m.p99_ms:.1f} | {cpu} | {memory} | {m.errors} |")  # fmt: skip
    return "\n".join(lines)


def ratios(rows: list[Measurement], concurrencies: list[int]) -> str:
    get = {(m.design, m.mode, m.concurrency): m for m in rows}
    low, high = min(concurrencies), max(concurrencies)
    lines = []
    for mode in sorted({m.mode for m in rows if m.design == "captchaocr"}):
        if ("floor", mode, high) not in get or ("seed", "same-work", high) not in get:
            continue  # a partial run (--designs): no ratios to give
        ours_high, floor_high = get[("captchaocr", mode, high)], get[("floor", mode, high)]
        seed_high = get[("seed", "same-work", high)]
        ours_low, floor_low = get[("captchaocr", mode, low)], get[("floor", mode, low)]
        lines.append(
            f"- {mode}: throughput at {high} = {ours_high.requests_per_s / floor_high.requests_per_s:.2f} x floor, "
            f"{ours_high.requests_per_s / seed_high.requests_per_s:.2f} x seed; p50 at {low} = floor "
            f"{ours_low.p50_ms - floor_low.p50_ms:+.1f} ms"
        )
    return "\n".join(lines)


def plot(rows: list[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for design, mode in sorted({(m.design, m.mode) for m in rows}):
        points = sorted((m.concurrency, m.p50_ms) for m in rows if (m.design, m.mode) == (design, mode))
        axis.plot(*zip(*points, strict=True), marker="o", label=f"{design} ({mode})")
    axis.set(xscale="log", xlabel="concurrent clients", ylabel="p50 latency (ms)", title="Latency vs concurrency")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=PROJECT_ROOT.parent / "shared" / "corpus" / "py_captcha")
    parser.add_argument("--limit", type=int, default=100, help="images used (cycled)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=30.0, help="timed part of each measurement")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many runs")
    parser.add_argument("--designs", nargs="+", choices=DESIGNS, default=DESIGNS, help="measure only these")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="recognizer modes")
    parser.add_argument("--markdown", type=output_file, help="also write the table here")
    parser.add_argument("--plot", type=output_file, help="PNG of p50 latency against concurrency")
    args = parser.parse_args()

    paths = sorted(args.images.glob("*.png"))[: args.limit]
    images = [base64.b64encode(p.read_bytes()).decode() for p in paths]
    runs = [one_run(images, args.workers, args.concurrency, args.seconds, args.designs, args.modes)
            for _ in range(args.runs)]  # fmt: skip
    rows = median_of(runs)
    text = f"{markdown(rows)}\n\n{ratios(rows, args.concurrency)}\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
