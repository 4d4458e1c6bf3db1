"""Prometheus metrics and the one log line per request.

Routes name their outcome in ``request.state.outcome`` (``solved``, a 422 cause, ...); a middleware
turns it, the status and the time into a counter, a latency histogram and a log line without image bytes.
Queue depth and live workers are read from Redis when Prometheus scrapes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from rq import Queue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contract import OcrAnswer, OcrRefusal
from shared.outcome import Outcome
from shared.rq_internals import workers_key
from shared.worker_liveness import count_live_workers_now

log = logging.getLogger("captchaocr.api")

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5, 10)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


class Metrics:
    """The API's metrics, in a registry of their own (one per app, so tests can build several apps)."""

    def __init__(self, queue: Queue, redis: Redis) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "captchaocr_requests", "Requests by route and outcome.", ["route", "outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "captchaocr_request_seconds", "End-to-end time inside the API.", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.model_time = Histogram(
            "captchaocr_model_seconds", "Time workers spent reading an image (reported with each result).",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.confidence = Histogram(
            "captchaocr_confidence", "Confidence of the readings, answered or refused.",
            buckets=CONFIDENCE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.site_reads = Counter(
            "captchaocr_site_reads", "Captchas read for a site, answered or refused.", ["site", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.site_feedback = Counter(
            "captchaocr_site_feedback", "Feedback per site: the answer was right, wrong, or the job refused.",
            ["site", "verdict"], registry=self.registry,
        )  # fmt: skip
        self.registry.register(QueueCollector(queue, redis))

    def observe_outcome(self, outcome: Outcome, site: str | None = None) -> None:
        """Record what a worker reported with its answer or refusal (and, for a site, whether it answered)."""
        if isinstance(outcome, OcrAnswer):
            self.model_time.observe(outcome.model_ms / 1000)
        if isinstance(outcome, OcrAnswer | OcrRefusal) and outcome.confidence is not None:
            self.confidence.observe(outcome.confidence)
        if site is not None and isinstance(outcome, OcrAnswer | OcrRefusal):
            self.site_reads.labels(site, "answered" if isinstance(outcome, OcrAnswer) else "refused").inc()

    def observe_feedback(self, site: str, answer_was_right: bool | None) -> None:
        verdict = {True: "right", False: "wrong", None: "refused"}[answer_was_right]
        self.site_feedback.labels(site, verdict).inc()


class QueueCollector(Collector):
    """Gauges read from Redis at scrape time, so they are right whatever process changed them."""

    def __init__(self, queue: Queue, redis: Redis) -> None:
        self.queue = queue
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("captchaocr_queue_depth", "Jobs waiting in the queue.", value=self.queue.count)
        workers = count_live_workers_now(self.redis, workers_key(self.queue.name))
        yield GaugeMetricFamily("captchaocr_workers_alive", "Live workers of the queue.", value=workers)


class ObserveRequests:
    """Count, time and log every request: a pure ASGI middleware (Starlette's ``BaseHTTPMiddleware``
    costs a task group and a streamed response per request: about a tenth of the API's CPU per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # what routes write as request.state
        status_code = 500  # unless a response starts: an exception became Starlette's 500

        async def observed_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, state, status_code, time.perf_counter() - started)

    @staticmethod
    def _record(scope: Scope, state: dict, status_code: int, elapsed: float) -> None:
        path = getattr(scope.get("route"), "path", "unmatched")
        outcome = state.get("outcome") or str(status_code)
        job_id = state.get("job_id")
        metrics: Metrics | None = getattr(scope["app"].state, "metrics", None) if "app" in scope else None
        if metrics is not None:
            metrics.requests.labels(path, outcome).inc()
            metrics.latency.labels(path).observe(elapsed)
        log.info(
            "%s %s %s %s %.1fms job=%s", scope["method"], path, status_code, outcome, elapsed * 1000, job_id or "-",
            extra={"route": path, "status": status_code, "outcome": outcome, "ms": round(elapsed * 1000, 2),
                   "job_id": job_id},
        )  # fmt: skip
