"""Hostile image files (every format Pillow opens, bombs, truncated copies) on every way in: POST /ocr,
POST /ocr/batch, the Anti-Captcha task API and jobs enqueued directly (which skip the API's checks).

Each one must be refused on its own (a 4xx, the protocol's error or a refusal result) within 2 s, while
good images sent with it, even collected into the same ``read_captchas`` job, are still read, and the
API's and workers' memory stays bounded.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from rq import Queue
from rq.serializers import JSONSerializer

from shared.client import CaptchaClient
from shared.contract import BATCH_FUNCTION, JOB_FUNCTION, ErrorCode
from testbed.support import Stack
from tests import hostile_images
from tests.prerequisites import corpus_images

pytestmark = pytest.mark.slow  # starts real processes

GOOD = corpus_images("npm_svg_captcha", 12)
SOURCE = Image.open(io.BytesIO(base64.b64decode(GOOD[0][1]))).convert("RGB")
FORMATS = hostile_images.every_format(SOURCE)
OTHER_FORMATS = {fmt: data for fmt, data in FORMATS.items() if fmt not in hostile_images.ALLOWED}
BOMBS = hostile_images.bombs()
LARGE = hostile_images.large_images()  # valid: only their truncated copies are hostile
ALLOWED = hostile_images.ALLOWED
READ = {name: data for name, data in {**FORMATS, **BOMBS, **LARGE}.items()
        if name.split("-")[0].upper() in ALLOWED}  # fmt: skip
HOSTILE = {
    **{f"{fmt.lower()}-sample": data for fmt, data in OTHER_FORMATS.items()},
    **BOMBS,
    **hostile_images.truncated(OTHER_FORMATS, (0.5,)),  # refused by their format, however cut
    **hostile_images.truncated(READ, (0, 0.3, 0.6, 0.9)),
}
ENCODED = {name: base64.b64encode(data).decode() for name, data in HOSTILE.items()}
REFUSED_AS = {"not_an_image", "image_too_large"}
LIMIT_S = 2.0
RSS_GROWTH_LIMIT_MB = 40


@pytest.fixture(scope="module")
def hostile_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two workers, so that concurrent requests find both busy and are collected into shared jobs."""
    running = Stack(tmp_path_factory.mktemp("hostile"), workers=2, collect_wait_ms="100")
    yield running
    running.close()


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=str(stack.http.base_url), timeout=30)


def body(response: httpx.Response) -> dict:
    """The JSON object of a response; a 5xx may not have one."""
    try:
        return dict(response.json())
    except ValueError:
        return {}


def ocr(stack: Stack, image: str) -> tuple[str | None, str]:
    """(text, outcome) of POST /ocr: the text when read, else the status and error (never a 5xx)."""
    with client(stack) as http:
        response = http.post("/ocr", json={"image_base64": image})
    return body(response).get("text"), f"{response.status_code} {body(response).get('error')}"


def batch(stack: Stack, image: str) -> tuple[str | None, str]:
    """The image as the middle one of three in POST /ocr/batch; its neighbours must still be read."""
    (first_label, first), (last_label, last) = GOOD[1], GOOD[2]
    with client(stack) as http:
        response = http.post("/ocr/batch", json={"images": [first, image, last]})
    if response.status_code != 200:
        return None, f"{response.status_code} batch"
    results = response.json()["results"]
    if [results[0].get("text"), results[2].get("text")] != [first_label, last_label]:
        return None, f"neighbours harmed: {results}"
    return results[1].get("text"), f"422 {results[1].get('error')}"


def task(stack: Stack, image: str) -> tuple[str | None, str]:
    """/createTask then /getTaskResult until it is no longer processing: the text or the protocol error."""
    with client(stack) as http:
        task_body = {"type": "ImageToTextTask", "body": image}
        created = http.post("/createTask", json={"clientKey": "k", "task": task_body})
        answer, deadline = body(created), time.monotonic() + 10
        while created.status_code == 200 and answer.get("errorId") == 0 and answer.get("status") != "ready" \
                and time.monotonic() < deadline:
            time.sleep(0.02)
            polled = http.post("/getTaskResult", json={"clientKey": "k", "taskId": created.json()["taskId"]})
            answer = body(polled)
    if created.status_code != 200 or answer.get("errorId") != 0:
        return None, f"{created.status_code} {answer.get('errorCode')}"
    return answer["solution"]["text"], "ready"


def direct(stack: Stack, image: str) -> tuple[str | None, str]:
    """Enqueued by a crawler with :class:`CaptchaClient`: no API check on the way."""
    result = CaptchaClient(stack.redis.client()).read(image, timeout_s=5)
    if result is None:
        return None, "no result: the job failed or timed out"
    return result.get("text"), f"ok={result['ok']} {result.get('error')}"


WAYS: dict[str, Callable[[Stack, str], tuple[str | None, str]]] = {
    "ocr": ocr, "batch": batch, "task": task, "direct": direct,
}  # fmt: skip


def refused(way: str, outcome: str) -> bool:
    """Whether ``outcome`` is a refusal, as each way in gives it (a lying header over a few pixels may be
    decoded, then refused as low_confidence: that is fine too, being read as a number would not)."""
    if way == "task":
        return outcome.startswith("200 ERROR_")
    return outcome in {f"{'ok=False' if way == 'direct' else '422'} {code}" for code in ErrorCode}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for {pid}")


def send(stack: Stack, hostile: dict[str, str], threads: int, limit_s: float) -> list[str]:
    """Send every hostile file every way, ``threads`` at a time, a good image after every third one (so
    with several threads they are collected into the same jobs); the problems, each in a line."""
    calls = [(way, name, image, None) for name, image in hostile.items() for way in WAYS]
    for index in range(0, len(calls), 4):
        label, image = GOOD[index % len(GOOD)]
        calls.insert(index, (list(WAYS)[index % len(WAYS)], "good", image, label))

    def call(way: str, name: str, image: str, label: str | None) -> str | None:
        started = time.monotonic()
        text, outcome = WAYS[way](stack, image)
        elapsed = time.monotonic() - started
        if label is not None and text != label:
            return f"{way} good image: {outcome}, read {text!r} instead of {label!r}"
        if label is None and (text is not None or not refused(way, outcome)):
            return f"{way} {name}: {outcome} (read {text!r})"
        if elapsed > limit_s:
            return f"{way} {name}: {elapsed:.2f} s"
        return None

    with ThreadPoolExecutor(threads) as pool:
        return [problem for problem in pool.map(lambda args: call(*args), calls) if problem]


def test_the_fuzz_offers_every_format_pillow_opens() -> None:
    Image.init()
    hostile_images.check_identified(FORMATS)
    assert set(Image.OPEN) <= set(FORMATS)


def test_hostile_files_are_refused_on_every_way_in_and_harm_no_one(hostile_stack: Stack) -> None:
    """One at a time, each is refused within 2 s. Then those that get past the API's header check are
    sent 16 at a time with good images that share their jobs: none harms another (the time limit then
    covers queueing on 2 shared cores, hence 10 s). Memory: RSS growth of the API and the workers."""
    processes = {"api": hostile_stack.api.pid}
    processes |= {f"worker{i}": worker.pid for i, worker in enumerate(hostile_stack.workers)}
    warm_up = dict(list(ENCODED.items())[:: max(1, len(ENCODED) // 12)])
    send(hostile_stack, warm_up, threads=16, limit_s=60)  # first imports and caches are not growth
    before = {name: rss_mb(pid) for name, pid in processes.items()}
    problems = send(hostile_stack, ENCODED, threads=1, limit_s=LIMIT_S)
    past_the_api = {name: image for name, image in ENCODED.items() if name.split("-")[0].upper() in ALLOWED}
    problems += send(hostile_stack, past_the_api, threads=16, limit_s=10)
    after = {name: rss_mb(pid) for name, pid in processes.items()}
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(problems))
    assert all(w.alive() for w in hostile_stack.workers) and hostile_stack.api.alive()
    grown = {name: round(after[name] - before[name], 1) for name in processes}
    print(f"RSS before {before} MB, grown {grown} MB")
    assert max(grown.values()) < RSS_GROWTH_LIMIT_MB, (before, after)


def test_hostile_items_of_a_read_captchas_job_are_refused_one_by_one(hostile_stack: Stack) -> None:
    """A crawler enqueues ``read_captchas`` itself: no API check, every item reaches the worker."""
    queue = Queue("captchaocr", connection=hostile_stack.redis.client(), serializer=JSONSerializer)
    names = list(ENCODED)
    for start in range(0, len(names), 16):
        chunk = names[start : start + 16]
        goods = GOOD[: len(chunk) // 2 + 1]
        images = [image for _, image in goods] + [ENCODED[name] for name in chunk]
        items = [{"image_base64": image} for image in images]
        started = time.monotonic()
        result = queue.enqueue(BATCH_FUNCTION, kwargs={"items": items}).latest_result(timeout=30)
        assert result is not None and result.type == result.Type.SUCCESSFUL, (chunk, result)
        assert time.monotonic() - started < 10  # 16 hostile and 9 good items, behind other jobs
        answers = result.return_value["results"]
        assert [a.get("text") for a in answers[: len(goods)]] == [label for label, _ in goods], answers
        assert not [(n, a) for n, a in zip(chunk, answers[len(goods) :], strict=True) if a["ok"]]


def test_an_icns_bomb_fails_no_one_collected_with_it(hostile_stack: Stack) -> None:
    """The issue's case (81 bytes here): 32 concurrent POST /ocr, every 4th an ICNS whose 128x128 slot is
    a PNG header claiming 14000x14000; while both workers are busy they are collected into shared jobs."""
    bomb = ENCODED["icns-bomb-png-slot"]
    images = [bomb if index % 4 == 3 else GOOD[index % len(GOOD)][1] for index in range(32)]
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(lambda image: ocr(hostile_stack, image), images))
    for index, (text, outcome) in enumerate(outcomes):
        if index % 4 == 3:
            assert text is None and outcome in {"422 not_an_image", "422 image_too_large"}, outcome
        else:
            assert text == GOOD[index % len(GOOD)][0], outcome
    # What reaches a worker in spite of the API (a crawler enqueues it) is refused there on its own.
    queue = Queue("captchaocr", connection=hostile_stack.redis.client(), serializer=JSONSerializer)
    items = [{"image_base64": image} for image in images[:8]]
    result = queue.enqueue(BATCH_FUNCTION, kwargs={"items": items}).latest_result(timeout=15)
    assert result is not None and result.type == result.Type.SUCCESSFUL, result and result.exc_string
    answers = result.return_value["results"]
    assert [a.get("text") for a in answers] == [None if i % 4 == 3 else GOOD[i][0] for i in range(8)]
    assert {answers[3]["error"], answers[7]["error"]} <= REFUSED_AS
    single = queue.enqueue(JOB_FUNCTION, kwargs={"image_base64": bomb}).latest_result(timeout=15)
    assert single is not None and single.type == single.Type.SUCCESSFUL and single.return_value["ok"] is False


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_only_the_formats_captchas_come_in_are_read(hostile_stack: Stack, fmt: str) -> None:
    """PNG, JPEG, GIF, BMP and WEBP are read; every other format Pillow knows is refused as not_an_image,
    over HTTP and enqueued directly, however valid the file (TIFF, PSD, EPS, ICO, ICNS...)."""
    image = base64.b64encode(FORMATS[fmt]).decode()
    text, outcome = ocr(hostile_stack, image)
    _, direct_outcome = direct(hostile_stack, image)
    if fmt in hostile_images.ALLOWED:
        assert outcome != "422 not_an_image", outcome
        assert direct_outcome.startswith("ok=True"), direct_outcome
    else:
        assert (text, outcome, direct_outcome) == (None, "422 not_an_image", "ok=False not_an_image")
