"""Soak test: many clients for a long while against API + W workers, checking answers, memory and Redis.

Starts its own stack (a private Redis, W workers, the API; ``testbed.support.Stack``), computes what the
recognizer answers for each image in this process first (same settings as the stack), then runs N
closed-loop keep-alive clients (``testbed/loadgen.py``) for S seconds, or until ``--jobs`` answers, and
checks:
- no 5xx but the deliberate 503 (no worker in time, queue full, Redis away);
- every 200 is the recognizer's own answer for that image, and every 422 its own refusal;
- the workers are still alive, and no job failed;
- worker resident memory (psutil RSS) after the first ``--rss-after`` jobs and at the end; with
  ``--jobs`` the end must be within ``--rss-tolerance`` (10%) of the first figure, worker by worker;
- afterwards every ``rq:job:*`` and ``rq:results:*`` key in Redis has a TTL no longer than the
  setting that governs it (``CAPTCHAOCR_RESULT_TTL_S``, ``CAPTCHAOCR_FAILURE_TTL_S`` for failed jobs):
  none is persistent, so Redis holds no more than the TTLs allow;
- Redis ``used_memory`` every ``--sample-every`` seconds; when the run lasts at least twice
  ``CAPTCHAOCR_RESULT_TTL_S``, memory must be flat once results expire: the mean of the last TTL-long
  window within ``--redis-tolerance`` (10%) of the window before it.

``python -m bench.soak`` runs it from the command line; tests/test_soak.py runs a short one.

    python -m bench.soak                                    # 64 clients, 60 s, 2 workers
    python -m bench.soak --jobs 20000 --markdown bench/out/soak.md   # until 20,000 answers; RSS checked
    python -m bench.soak --seconds 100 --set result_ttl_s=30         # Redis memory flat after the TTL
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from redis import Redis

from shared.contract import OcrAnswer, OcrJob, OcrRefusal
from shared.settings import PROJECT_ROOT, Settings
from testbed.loadgen import LoadResult, ocr_requests, run_load
from testbed.support import PLUMBING_SETTINGS, SERVICE_THRESHOLD, Stack

DEFAULT_IMAGES = PROJECT_ROOT.parent / "shared" / "corpus" / "py_captcha"
MIB = 1024 * 1024


@dataclass
class SoakOptions:
    clients: int = 64
    seconds: float = 60.0
    jobs: int | None = None  # run until this many answers instead of for ``seconds``
    workers: int = 2
    images: Path = DEFAULT_IMAGES
    limit: int = 100  # images used, cycled
    rss_after: int = 1000  # jobs after which the first RSS figure is taken
    rss_tolerance: float = 0.10
    warmup_s: float = 2.0  # left out of the latency figures (answers are checked all the same)
    settings: dict[str, str] = field(default_factory=dict)  # extra CAPTCHAOCR_* settings, lower-case names
    sample_every_s: float = 5.0  # Redis used_memory sampling period
    redis_tolerance: float = 0.10


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SoakReport:
    options: SoakOptions
    load: LoadResult
    answers: int
    statuses: Counter
    duration_s: float
    mismatches: list[str]
    rss_first: dict[int, int] | None  # worker pid -> bytes, after ``rss_after`` jobs
    rss_first_jobs: int | None
    rss_end: dict[int, int]
    api_rss_end: int
    redis_keys: dict[str, dict[str, int]]
    failed_jobs: int
    ttl_limits: str
    redis_memory: list[tuple[float, int]]  # (seconds since the load started, used_memory bytes)
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def markdown(self) -> str:
        o = self.options
        lines = [
            f"## Soak: {o.clients} clients, {o.workers} workers, "
            + (f"until {o.jobs} jobs" if o.jobs else f"{o.seconds:g} s")
            + f", {o.limit} images of `{o.images.name}`",
            "",
            "| answers | duration s | req/s | p50 ms | p95 ms | p99 ms | statuses |",
            "|---|---|---|---|---|---|---|",
            f"| {self.answers} | {self.duration_s:.1f} | {self.load.requests_per_s:.1f} "
            f"| {self.load.percentile_ms(50):.1f} | {self.load.percentile_ms(95):.1f} "
            f"| {self.load.percentile_ms(99):.1f} | "
            + ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
            + " |",
            "",
            f"Latency and req/s over the {len(self.load.latencies_s)} answers after the {o.warmup_s:g} s warm-up; "
            "every answer is checked.",
            "",
            "| worker pid | RSS MiB after " + (f"{self.rss_first_jobs} jobs" if self.rss_first_jobs else "-")
            + " | RSS MiB at the end | change |",
            "|---|---|---|---|",
        ]
        for pid, end in self.rss_end.items():
            first = (self.rss_first or {}).get(pid)
            change = f"{(end - first) / first * 100:+.1f}%" if first else "-"
            first_text = f"{first / MIB:.1f}" if first else "-"
            lines.append(f"| {pid} | {first_text} | {end / MIB:.1f} | {change} |")
        lines += [
            "",
            f"API RSS at the end: {self.api_rss_end / MIB:.1f} MiB; failed jobs: {self.failed_jobs}.",
            "",
            f"| Redis keys after the run | count | persistent | longest TTL s (limit: {self.ttl_limits}) |",
            "|---|---|---|---|",
        ]
        for pattern, figures in self.redis_keys.items():
            lines.append(f"| `{pattern}` | {figures['count']} | {figures['persistent']} | {figures['max_ttl']} |")
        if self.redis_memory:
            lines += ["", "| s since start | " + " | ".join(f"{t:.0f}" for t, _ in self.redis_memory) + " |",
                      "|---|" + "---|" * len(self.redis_memory),
                      "| Redis used_memory MiB | " + " | ".join(f"{b / MIB:.1f}" for _, b in self.redis_memory) + " |"]
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {'ok' if c.ok else '**FAILED**'} | {c.detail} |" for c in self.checks]
        if self.mismatches:
            lines += ["", "First mismatches:", *(f"- {m}" for m in self.mismatches[:10])]
        return "\n".join(lines) + "\n"


def stack_settings(options: SoakOptions) -> dict[str, str]:
    """What the stack is started with (keyword arguments of :class:`Stack`)."""
    return {**SERVICE_THRESHOLD, **options.settings}  # the service as deployed


def reader_settings(options: SoakOptions) -> Settings:
    """The settings the stack's workers run with: Stack's own defaults, then ours (as Stack merges them)."""
    env = {**PLUMBING_SETTINGS, **{f"CAPTCHAOCR_{k.upper()}": v for k, v in stack_settings(options).items()}}
    return Settings(**{key.removeprefix("CAPTCHAOCR_").lower(): value for key, value in env.items()})


def load_images(options: SoakOptions) -> list[str]:
    paths = sorted(options.images.glob("*.png"))[: options.limit]
    if not paths:
        raise SystemExit(f"no .png images in {options.images}")
    return [base64.b64encode(path.read_bytes()).decode() for path in paths]


def expected_answers(images: list[str], settings: Settings) -> list[OcrAnswer | OcrRefusal]:
    """What the recognizer answers for each image alone, in this process."""
    from worker.answering import Answerer

    answerer = Answerer(settings)
    return [answerer.answer_job(OcrJob(image_base64=image)) for image in images]


class RedisMemorySampler:
    """Samples Redis ``used_memory`` in a thread while the load runs (its own connection)."""

    def __init__(self, client: Redis, every_s: float) -> None:
        self.client, self.every_s = client, every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RedisMemorySampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.samples.append((time.perf_counter() - self._started, int(self.client.info("memory")["used_memory"])))

    def _run(self) -> None:
        while not self._stop.wait(0 if not self.samples else self.every_s):
            self._sample()


def redis_memory_check(samples: list[tuple[float, int]], ttl_s: float, tolerance: float) -> Check | None:
    """Flat once results expire: the last TTL-long window's mean within ``tolerance`` of the one before it.
    None when the run was too short to tell (under twice the TTL)."""
    end = samples[-1][0] if samples else 0.0
    if end < 2 * ttl_s:
        return None
    last = [b for t, b in samples if t > end - ttl_s]
    before = [b for t, b in samples if end - 2 * ttl_s < t <= end - ttl_s]
    if not last or not before:
        return None
    change = (sum(last) / len(last)) / (sum(before) / len(before)) - 1
    return Check(f"Redis memory flat once results expire (last {ttl_s:g} s against the {ttl_s:g} s before)",
                 abs(change) <= tolerance, f"{change:+.1%}")  # fmt: skip


def rss(pids: list[int]) -> dict[int, int]:
    return {pid: psutil.Process(pid).memory_info().rss for pid in pids}


FAILED_STATES = {"failed", "stopped", "canceled"}


def redis_key_report(client: Redis, settings: Settings) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Count job and result keys with their TTLs; name every key that outlives its setting.

    A job's hash and its result stream live ``result_ttl_s`` once finished (less while queued: its wait
    limit) and ``failure_ttl_s`` once failed; a key without a TTL (-1) would stay for ever.
    """
    job_keys = [key for key in client.scan_iter(match="rq:job:*", count=1000) if key.count(b":") == 2]
    result_keys = list(client.scan_iter(match="rq:results:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in job_keys:
        pipe.ttl(key)
        pipe.hget(key, "status")
    for key in result_keys:
        pipe.ttl(key)
    replies = pipe.execute()
    status_of: dict[str, str | None] = {}
    ttls: dict[bytes, int] = {}
    for index, key in enumerate(job_keys):
        ttls[key] = replies[2 * index]
        raw = replies[2 * index + 1]
        status_of[key.decode().removeprefix("rq:job:")] = raw.decode() if raw else None
    for index, key in enumerate(result_keys):
        ttls[key] = replies[2 * len(job_keys) + index]

    report: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for pattern, keys, prefix in (("rq:job:*", job_keys, "rq:job:"), ("rq:results:*", result_keys, "rq:results:")):
        persistent, max_ttl = 0, 0
        for key in keys:
            ttl = ttls[key]
            status = status_of.get(key.decode().removeprefix(prefix))
            limit = settings.failure_ttl_s if status in FAILED_STATES or status is None else settings.result_ttl_s
            if ttl == -1:
                persistent += 1
                problems.append(f"{key.decode()} (status {status}) has no TTL")
            elif ttl > limit:
                problems.append(f"{key.decode()} (status {status}) has TTL {ttl} s > {limit} s")
            max_ttl = max(max_ttl, ttl)
        report[pattern] = {"count": len(keys), "persistent": persistent, "max_ttl": max_ttl}
    return report, problems


def run_soak(options: SoakOptions, tmp: Path, log=print) -> SoakReport:  # noqa: ANN001
    images = load_images(options)
    settings = reader_settings(options)
    log(f"soak: computing the recognizer's answers for {len(images)} images in this process")
    expected = expected_answers(images, settings)
    log(f"soak: starting Redis, {options.workers} workers and the API")
    stack = Stack(tmp, workers=options.workers, **stack_settings(options))
    try:
        requests = ocr_requests("127.0.0.1", stack.port, images)
        by_request = {id(request): answer for request, answer in zip(requests, expected, strict=True)}
        worker_pids = [worker.pid for worker in stack.workers]
        statuses: Counter = Counter()
        mismatches: list[str] = []
        state: dict = {"answers": 0, "rss_first": None, "rss_first_jobs": None}

        def on_response(request: bytes, status: int, body: bytes) -> None:
            state["answers"] += 1
            statuses[status] += 1
            want = by_request[id(request)]
            if status == 200:
                got = json.loads(body)
                if not isinstance(want, OcrAnswer) or got.get("text") != want.text or got.get("number") != want.number:
                    mismatches.append(f"200 {got.get('text')!r}, the recognizer alone: {_describe(want)}")
            elif status == 422:
                got = json.loads(body)
                if not isinstance(want, OcrRefusal) or got.get("error") != want.error.value:
                    mismatches.append(f"422 {got.get('error')!r}, the recognizer alone: {_describe(want)}")
            if state["rss_first"] is None and state["answers"] >= options.rss_after:
                state["rss_first"], state["rss_first_jobs"] = rss(worker_pids), state["answers"]

        stop = (lambda: state["answers"] >= options.jobs) if options.jobs else None
        seconds = float("inf") if options.jobs else options.seconds
        log(f"soak: {options.clients} clients, " + (f"until {options.jobs} jobs" if options.jobs else f"{seconds:g} s"))
        started = time.perf_counter()
        with RedisMemorySampler(stack.redis.client(), options.sample_every_s) as sampler:
            load = asyncio.run(run_load("127.0.0.1", stack.port, requests, options.clients, seconds,
                                        warmup_s=options.warmup_s, on_response=on_response, stop=stop))  # fmt: skip
        duration = time.perf_counter() - started
        alive = [worker.alive() for worker in stack.workers]
        rss_end = rss([pid for pid, up in zip(worker_pids, alive, strict=True) if up])
        api_rss = psutil.Process(stack.api.pid).memory_info().rss
        client = stack.redis.client()
        from rq.registry import FailedJobRegistry

        failed = FailedJobRegistry(settings.queue_name, connection=client).count
        redis_keys, key_problems = redis_key_report(client, settings)
    finally:
        stack.close()

    unexpected_5xx = {status: n for status, n in statuses.items() if status >= 500 and status != 503}
    other = {status: n for status, n in statuses.items() if status not in (200, 422) and status < 500}
    checks = [
        Check("no 5xx but deliberate 503s", not unexpected_5xx,
              f"503: {statuses.get(503, 0)}; other 5xx: {unexpected_5xx or 0}"),
        Check("only 200, 422 and 503 answers", not other, f"others: {other or 0}"),
        Check("answers equal the recognizer's", not mismatches,
              f"{statuses.get(200, 0)} answered and {statuses.get(422, 0)} refused checked, {len(mismatches)} differ"),
        Check("workers alive, no failed job", all(alive) and failed == 0,
              f"{sum(alive)}/{len(alive)} alive, {failed} failed jobs"),
        Check("Redis keys all expire within their TTL", not key_problems,
              "; ".join(key_problems[:5]) or f"{sum(r['count'] for r in redis_keys.values())} keys, all expiring"),
    ]  # fmt: skip
    if (memory_check := redis_memory_check(sampler.samples, settings.result_ttl_s, options.redis_tolerance)):
        checks.append(memory_check)
    if options.jobs:
        first = state["rss_first"]
        if first is None:
            checks.append(Check("worker RSS stable", False, f"fewer than {options.rss_after} jobs ran"))
        else:
            growth = {pid: (rss_end[pid] - first[pid]) / first[pid] for pid in rss_end if pid in first}
            worst = max(growth.values(), default=0.0)
            checks.append(Check(
                f"worker RSS within {options.rss_tolerance:.0%} of the figure after {state['rss_first_jobs']} jobs",
                bool(growth) and all(abs(g) <= options.rss_tolerance for g in growth.values()),
                f"largest change {worst:+.1%} after {state['answers']} jobs",
            ))  # fmt: skip
    return SoakReport(options, load, state["answers"], statuses, duration, mismatches, state["rss_first"],
                      state["rss_first_jobs"], rss_end, api_rss, redis_keys, failed,
                      f"{settings.result_ttl_s} s finished, {settings.failure_ttl_s} s failed", sampler.samples,
                      checks)  # fmt: skip


def _describe(answer: OcrAnswer | OcrRefusal) -> str:
    if isinstance(answer, OcrAnswer):
        return f"answer {answer.text!r} ({answer.confidence})"
    return f"refusal {answer.error.value} ({answer.confidence})"
