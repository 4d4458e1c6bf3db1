"""The Anti-Captcha-compatible task API against real clients: python-anticaptcha, plain HTTP, a crawler.

Its own stack: two workers (so tasks spread), API keys configured and reported images kept.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import python_anticaptcha.sync_client
from PIL import Image
from python_anticaptcha import AnticaptchaClient, AnticaptchaException, ImageToTextTask
from redis import Redis

from api.protocols.anticaptcha.schemas import ImageToTextTask as ImageToTextTaskFields
from api.protocols.anticaptcha.tasks import job_options
from api.protocols.reports import INCORRECT_REPORTS_KEY
from shared.settings import Settings
from testbed.support import Stack
from tests.prerequisites import corpus_images, unavailable

pytestmark = pytest.mark.slow  # starts real processes

KEY = "crawler-key"
SVG = corpus_images("npm_svg_captcha", 50)
GREGWAR = corpus_images("php_gregwar_captcha", 50)


@pytest.fixture(scope="module")
def task_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("anticaptcha")
    running = Stack(
        tmp, workers=2, api_keys=f"other-key,{KEY}", keep_reported_images="true",
        reported_images_dir=str(tmp / "reported"), result_ttl_s="120",
    )  # fmt: skip
    yield running
    running.close()


@pytest.fixture
def client(task_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[AnticaptchaClient]:
    """The PyPI client pointed at the service, polling every 50 ms instead of every 3 s."""
    monkeypatch.setattr(python_anticaptcha.sync_client, "SLEEP_EVERY_CHECK_FINISHED", 0.05)
    with AnticaptchaClient(KEY, host=f"127.0.0.1:{task_stack.port}", use_ssl=False) as running:
        yield running


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def create(stack: Stack, task: dict | None, key: str | None = KEY) -> dict:
    return stack.http.post("/createTask", json={"clientKey": key, "task": task}).json()


def image_task(body: str, **fields: object) -> dict:
    return {"type": "ImageToTextTask", "body": body, **fields}


def wait_result(stack: Stack, task_id: int, timeout_s: float = 60) -> dict:
    """Poll like a crawler until the task is no longer processing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = stack.http.post("/getTaskResult", json={"clientKey": KEY, "taskId": task_id}).json()
        if answer.get("status") != "processing":
            return answer
        time.sleep(0.05)
    raise TimeoutError(f"task {task_id} still processing after {timeout_s} s")


def test_python_anticaptcha_solves_corpus_images(client: AnticaptchaClient) -> None:
    assert client.getBalance() > 0
    for label, image in SVG[:5]:
        job = client.create_task(ImageToTextTask(base64.b64decode(image), numeric=1, min_length=4, max_length=4))
        job.join(maximum_time=60)
        assert job.get_captcha_text() == label
        assert job._last_result["cost"] == "0" and job._last_result["endTime"] >= job._last_result["createTime"]


def test_python_anticaptcha_reports_an_answer_and_the_image_is_kept(
    client: AnticaptchaClient, task_stack: Stack
) -> None:
    label, image = SVG[5]
    redis = task_stack.redis.client()
    before = int(redis.get(INCORRECT_REPORTS_KEY) or 0)
    job = client.create_task(ImageToTextTask(base64.b64decode(image)))
    job.join(maximum_time=60)
    assert job.report_incorrect_image() is True
    assert job.report_incorrect_image() is True  # accepted again, but one task counts once
    assert int(redis.get(INCORRECT_REPORTS_KEY)) == before + 1
    kept = Path(task_stack.env["CAPTCHAOCR_REPORTED_IMAGES_DIR"]) / f"{job.task_id}_answered-{label}.png"
    assert kept.read_bytes() == base64.b64decode(image)


def test_python_anticaptcha_raises_the_protocol_error(task_stack: Stack) -> None:
    with AnticaptchaClient("wrong-key", host=f"127.0.0.1:{task_stack.port}", use_ssl=False) as wrong:
        with pytest.raises(AnticaptchaException) as raised:
            wrong.create_task(ImageToTextTask(base64.b64decode(SVG[0][1])))
    assert raised.value.error_code == "ERROR_KEY_DOES_NOT_EXIST"
    assert raised.value.error_id == 1


@pytest.mark.parametrize(
    ("body", "error_id", "code"),
    [
        ({"clientKey": "wrong", "task": image_task(SVG[0][1])}, 1, "ERROR_KEY_DOES_NOT_EXIST"),
        ({"task": image_task(SVG[0][1])}, 1, "ERROR_KEY_DOES_NOT_EXIST"),
        ({"clientKey": KEY, "task": image_task(base64.b64encode(b"x" * 50).decode())}, 3, "ERROR_ZERO_CAPTCHA_FILESIZE"),
        ({"clientKey": KEY, "task": image_task("")}, 3, "ERROR_ZERO_CAPTCHA_FILESIZE"),
        ({"clientKey": KEY, "task": image_task(png_base64(Image.new("RGB", (5000, 20))))}, 4,
         "ERROR_TOO_BIG_CAPTCHA_FILESIZE"),
        ({"clientKey": KEY, "task": image_task(base64.b64encode(b"\0" * 3_000_000).decode())}, 4,
         "ERROR_TOO_BIG_CAPTCHA_FILESIZE"),
        ({"clientKey": KEY, "task": image_task("A" * 5_000_000)}, 4, "ERROR_TOO_BIG_CAPTCHA_FILESIZE"),
        ({"clientKey": KEY, "task": image_task(base64.b64encode(b"not an image " * 20).decode())}, 15,
         "ERROR_IMAGE_TYPE_NOT_SUPPORTED"),
        ({"clientKey": KEY}, 22, "ERROR_TASK_ABSENT"),
        ({"clientKey": KEY, "task": None}, 22, "ERROR_TASK_ABSENT"),
        ({"clientKey": KEY, "task": {"type": "RecaptchaV2TaskProxyless", "websiteURL": "x"}}, 23,
         "ERROR_TASK_NOT_SUPPORTED"),
        ({"clientKey": KEY, "task": image_task(SVG[0][1], minLength=9)}, 23, "ERROR_TASK_NOT_SUPPORTED"),
    ],
    ids=["wrong-key", "no-key", "under-100-bytes", "empty-body", "too-many-pixels", "too-many-bytes", "over-body-limit",
         "not-an-image", "no-task", "null-task", "other-type", "too-long"],
)  # fmt: skip
def test_create_task_errors(task_stack: Stack, body: dict, error_id: int, code: str) -> None:
    response = task_stack.http.post("/createTask", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["errorId"], answer["errorCode"]) == (error_id, code)
    assert answer["errorDescription"] and "taskId" not in answer


def test_every_method_checks_the_key(task_stack: Stack) -> None:
    task_id = create(task_stack, image_task(SVG[0][1]))["taskId"]
    for method in ("/getTaskResult", "/reportIncorrectImageCaptcha", "/getBalance"):
        answer = task_stack.http.post(method, json={"clientKey": "wrong", "taskId": task_id}).json()
        assert answer["errorCode"] == "ERROR_KEY_DOES_NOT_EXIST", method


def test_unreadable_captcha_is_unsolvable(task_stack: Stack) -> None:
    task_id = create(task_stack, image_task(png_base64(Image.new("RGB", (160, 60), "white"))))["taskId"]
    answer = wait_result(task_stack, task_id)
    assert (answer["errorId"], answer["errorCode"]) == (12, "ERROR_CAPTCHA_UNSOLVABLE")
    assert "low confidence" in answer["errorDescription"]


def test_task_ids_are_random_positive_integers_not_a_counter(task_stack: Stack) -> None:
    """Counted ids let anyone read other clients' answers by counting; random ones are not guessable
    (and stay within JavaScript's exact integers, 2**53 - 1, and int64)."""
    task_ids = [create(task_stack, image_task(SVG[0][1]))["taskId"] for _ in range(8)]
    assert all(isinstance(task_id, int) and 0 < task_id < 2**53 for task_id in task_ids)
    gaps = sorted(abs(b - a) for a in task_ids for b in task_ids if a != b)
    assert len(set(task_ids)) == 8 and gaps[0] > 2**20, task_ids
    assert max(task_ids) > 2**32  # drawn from the whole range, not from a small one


def test_unknown_and_expired_tasks(task_stack: Stack) -> None:
    task_id = create(task_stack, image_task(SVG[1][1]))["taskId"]
    assert wait_result(task_stack, task_id)["status"] == "ready"
    task_stack.redis.client().delete(f"rq:job:task-{task_id}")  # what RQ does when the result TTL ends
    for method in ("/getTaskResult", "/reportIncorrectImageCaptcha"):
        for unknown in (task_id, 10**9, "not-a-number", None):
            answer = task_stack.http.post(method, json={"clientKey": KEY, "taskId": unknown}).json()
            assert (answer["errorId"], answer["errorCode"]) == (16, "ERROR_NO_SUCH_CAPCHA_ID"), (method, unknown)


def test_null_optional_fields_and_unknown_fields_are_accepted(task_stack: Stack) -> None:
    label, image = SVG[2]
    task = image_task(image, phrase=None, case=None, numeric=None, math=None, minLength=None, maxLength=None,
                      comment=None, websiteUrl="https://example.org")  # fmt: skip
    body = {"clientKey": KEY, "task": task, "softId": 847, "languagePool": "en", "callbackUrl": None}
    task_id = task_stack.http.post("/createTask", json=body).json()["taskId"]
    assert wait_result(task_stack, task_id)["solution"] == {"text": label}


@pytest.mark.parametrize(("low", "high", "lengths"), [(4, 4, {4}), (3, 5, {3, 4, 5}), (6, 6, {6})])
def test_min_and_max_length_bound_the_answer(task_stack: Stack, low: int, high: int, lengths: set[int]) -> None:
    label, image = SVG[3]
    answer = wait_result(task_stack, create(task_stack, image_task(image, minLength=low, maxLength=high))["taskId"])
    if answer["errorId"]:
        assert answer["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE"
        assert 6 in lengths  # only a forced wrong length may be refused
    else:
        assert len(answer["solution"]["text"]) in lengths
        if 4 in lengths:
            assert answer["solution"]["text"] == label  # the right length is the most probable one


def test_crawler_run_500_tasks_16_threads(task_stack: Stack) -> None:
    """Every task answered exactly once, none lost, answers equal to the sync endpoint's."""
    unique = SVG + GREGWAR
    expected = {}
    for _label, image in unique:
        response = task_stack.http.post("/ocr", json={"image_base64": image}, headers={"X-API-Key": KEY})
        assert response.status_code in (200, 422)
        expected[image] = response.json().get("text")  # None where /ocr refuses: the task must be unsolvable
    images = [unique[i % len(unique)][1] for i in range(500)]
    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(lambda image: create(task_stack, image_task(image)), images))
        task_ids = [answer["taskId"] for answer in created]
        assert len(set(task_ids)) == 500
        answers = list(pool.map(lambda task_id: wait_result(task_stack, task_id), task_ids))
    for image, answer in zip(images, answers, strict=True):
        if expected[image] is None:
            assert answer["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE"
        else:
            assert answer.get("solution", {}).get("text") == expected[image], answer
    redis = task_stack.redis.client()
    assert all(redis.xlen(f"rq:results:task-{task_id}") == 1 for task_id in task_ids)


def test_without_keys_any_key_works_and_no_image_is_kept(stack: Stack) -> None:
    """The shared stack has no API keys and keeps nothing: reports only count."""
    label, image = SVG[4]
    task_id = create(stack, image_task(image), key="anything")["taskId"]
    assert wait_result(stack, task_id)["solution"]["text"] == label
    assert stack.http.post("/reportIncorrectImageCaptcha", json={"taskId": task_id}).json()["status"] == "success"
    assert not (Path(stack.env["CAPTCHAOCR_STATE_DIR"]) / "reported").exists()
    redis = stack.redis.client()  # nor in Redis: no value of any key holds the image
    kept = [key for key, value in stored_values(redis) if image[:60].encode() in value]
    assert not kept, kept


def stored_values(redis: Redis) -> Iterator[tuple[bytes, bytes]]:
    """Every value Redis holds, key by key, whatever the key's type."""
    for key in redis.scan_iter():
        kind = redis.type(key)
        if kind == b"string":
            yield key, redis.get(key)
        elif kind == b"hash":
            yield from ((key, value) for value in redis.hvals(key))
        elif kind == b"list":
            yield from ((key, value) for value in redis.lrange(key, 0, -1))
        elif kind == b"set":
            yield from ((key, value) for value in redis.smembers(key))
        elif kind == b"zset":
            yield from ((key, value) for value in redis.zrange(key, 0, -1))
        elif kind == b"stream":
            yield from ((key, value) for _, fields in redis.xrange(key) for value in fields.values())


def test_letters_and_math_tasks_are_read(task_stack: Stack) -> None:
    """numeric 2 reads letters, math answers the expression's value; with case kept, the generic reader
    only guesses each letter's case and refuses (no site model learned it)."""
    shared = Path(__file__).resolve().parents[2] / "shared"
    flask = shared / "corpus_alnum" / "py_flask_simple_captcha" / "0000_WPYNZW.png"
    total = shared / "corpus_math" / "npm_svg_captcha_math" / "0000_13.png"  # "7+6"
    if not flask.is_file() or not total.is_file():
        unavailable(f"no letter or arithmetic corpus in {shared}")
    tasks = [image_task(base64.b64encode(flask.read_bytes()).decode(), numeric=2, minLength=6, maxLength=6),
             image_task(base64.b64encode(flask.read_bytes()).decode(), numeric=2, case=True, minLength=6),
             image_task(base64.b64encode(total.read_bytes()).decode(), math=True)]  # fmt: skip
    answers = []
    for task in tasks:
        created = task_stack.http.post("/createTask", json={"clientKey": KEY, "task": task}).json()
        assert created["errorId"] == 0, created
        answers.append(wait_result(task_stack, created["taskId"]))
    texts = [a.get("solution", {}).get("text") for a in answers]
    assert texts[0] == "wpynzw" and texts[2] == "13", answers
    assert answers[1]["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE", answers[1]


@pytest.mark.parametrize("fields, reading", [
    ({}, {"digits": 4, "max_digits": None, "case": None}),
    ({"numeric": 1, "minLength": 5}, {"digits": 5, "max_digits": 8, "case": None}),
    ({"numeric": 2, "case": True, "minLength": 5, "maxLength": 6},
     {"charset": "letters", "case": True, "length": {"min": 5, "max": 6}}),
    ({"numeric": 2, "maxLength": 6}, {"charset": "letters", "case": None, "length": {"min": 1, "max": 6}}),
    ({"math": True, "numeric": 1, "minLength": 3}, {"math": True}),
    ({"websiteURL": "https://Shop.example:8443/login"},
     {"digits": 4, "max_digits": None, "case": None, "site": "shop.example"}),
    ({"websiteURL": "https://shop.example/", "site": "shop-b"},
     {"digits": 4, "max_digits": None, "case": None, "site": "shop-b"}),
])  # fmt: skip
def test_task_fields_map_to_the_job(fields: dict, reading: dict) -> None:
    task = ImageToTextTaskFields.model_validate(image_task("x", **fields))
    assert job_options(task, Settings()).reading() == {"site": None, **reading}
