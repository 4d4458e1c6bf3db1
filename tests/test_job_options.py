"""Jobs that name an allowed function but ask RQ for more than the call: callbacks (RQ imports and calls
any dotted name), webhooks (the worker calls any URL), retries and repeats. The worker refuses them whole:
nothing is imported, called or contacted, and it goes on answering good jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rq import Callback, Queue, Repeat, Retry, Webhook
from rq.job import JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from shared.client import CaptchaClient
from shared.contract import BATCH_FUNCTION, JOB_FUNCTION
from testbed.support import Stack
from tests.callback_target import CALLED, IMPORTED
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

LABEL, IMAGE = corpus_images("npm_svg_captcha", 1)[0]
TARGET = "tests.callback_target.leave_mark"


class WebhookReceiver:
    """A loopback HTTP server that records every request it gets (it must get none)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                received.append(f"GET {self.path}")
                self.send_response(204)
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                received.append(f"POST {self.path}")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("options"), workers=1)
    yield running
    running.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    yield running
    running.close()


OPTIONS: dict[str, tuple[str, Any]] = {
    "success callback": ("on_success", lambda _: Callback(TARGET)),
    "failure callback": ("on_failure", lambda _: Callback(TARGET)),
    "stopped callback": ("on_stopped", lambda _: Callback(TARGET)),
    "webhooks": ("webhooks", lambda hooks: [Webhook(hooks.url("finished"), "finished"),
                                            Webhook(hooks.url("failed"), "failed", method="POST")]),
    "retries": ("retry", lambda _: Retry(max=2)),
    "retries with intervals": ("retry", lambda _: Retry(max=2, interval=[1, 2])),
    "repeats": ("repeat", lambda _: Repeat(times=2)),
}  # fmt: skip


@pytest.mark.parametrize("function", [JOB_FUNCTION, BATCH_FUNCTION])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_job_carrying_more_than_the_call_is_refused_and_nothing_runs(
    stack: Stack, receiver: WebhookReceiver, function: str, option: str
) -> None:
    argument, make = OPTIONS[option]
    connection = stack.redis.client()
    queue = Queue("captchaocr", connection=connection, serializer=JSONSerializer)
    kwargs = {"image_base64": IMAGE} if function == JOB_FUNCTION else {"items": [{"image_base64": IMAGE}]}
    job = queue.enqueue(function, kwargs=kwargs, **{argument: make(receiver)})
    result = job.latest_result(timeout=10)
    assert result is not None and result.type == Result.Type.FAILED, result and result.return_value
    assert "JobNotAllowed" in result.exc_string and option.split()[0] in result.exc_string, result.exc_string
    assert "nothing ran" in result.exc_string
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id in queue.failed_job_registry.get_job_ids()
    assert IMAGE[:60] not in str(connection.hgetall(job.key))  # the image is forgotten, as for any refusal
    # The worker still answers; it takes one job at a time, so anything it would have called or sent
    # for the refused job was done by now.
    assert CaptchaClient(connection).read(IMAGE)["text"] == LABEL
    state = Path(stack.tmp)
    assert not (state / IMPORTED).exists(), "the worker imported the callback's module"
    assert not (state / CALLED).exists(), "the worker called the callback"
    assert receiver.requests == [], "the worker called a webhook"
    assert queue.count == 0 and not queue.scheduled_job_registry.get_job_ids()  # not retried or repeated


def test_job_naming_another_function_calls_none_of_its_webhooks_and_is_not_retried(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    """A refused job fails once and for all: RQ would retry it and call its "failed" webhook."""
    connection = stack.redis.client()
    queue = Queue("captchaocr", connection=connection, serializer=JSONSerializer)
    job = queue.enqueue("os.getpid", retry=Retry(max=3), webhooks=[Webhook(receiver.url("failed"), "failed")])
    result = job.latest_result(timeout=10)
    assert result is not None and "is not a CaptchaOCR job function" in result.exc_string
    assert CaptchaClient(connection).read(IMAGE)["text"] == LABEL
    assert receiver.requests == []
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert queue.count == 0 and not queue.scheduled_job_registry.get_job_ids()
