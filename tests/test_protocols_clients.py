"""2Captcha, CapMonster Cloud and CapSolver clients from PyPI, unmodified, against the running service over
HTTPS with a certificate made here: a captcha solved, a refusal as the client's own error, a report
counted once, a wrong key refused, a balance read; and hostile files refused in each protocol's terms.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from redis import Redis
from starlette.datastructures import FormData

from api.protocols.capmonster.protocol import CapMonsterImageTask
from api.protocols.capmonster.protocol import job_options as capmonster_options
from api.protocols.capsolver.protocol import CapSolverImageTask
from api.protocols.capsolver.protocol import job_options as capsolver_options
from api.protocols.reports import CORRECT_REPORTS_KEY, INCORRECT_REPORTS_KEY
from api.protocols.twocaptcha.routes import job_options as twocaptcha_options
from shared.settings import Settings
from testbed.support import CORPUS, PROJECT_ROOT, Stack
from tests import hostile_images
from tests.prerequisites import corpus_images, unavailable

pytestmark = pytest.mark.slow  # starts real processes

KEY = "crawler-key"
SVG = corpus_images("npm_svg_captcha", 6)
# Letters drawn from all 62 characters (the label keeps their case), and arithmetic (the label is its value).
# The letters-only image is one whose case the model reads (it answers most of them in lower case).
ALNUM = CORPUS.parent / "corpus_alnum" / "npm_svg_captcha"
MATH = CORPUS.parent / "corpus_math" / "npm_svg_captcha_math"
# A valid image with nothing to read (unsolvable), as BMP: a blank PNG is under the protocols' 100 bytes.
WHITE = hostile_images.saved(Image.new("RGB", (160, 60), "white"), "BMP")
# A few of the files /ocr refuses (test_hostile_files.py has them all): each protocol's error, never a 5xx.
LETTERS_ONLY, WITH_DIGITS, SUM = "0030_mXXr.png", "0003_r8Se.png", "0000_13.png"
HOSTILE = {
    "empty": b"",
    "not an image": b"hello, this is plain text and not any image at all " * 4,
    "tiff": hostile_images.every_format(Image.new("RGB", (60, 30), "white"))["TIFF"],
    "png bomb": hostile_images.png_claiming(60000, 60000),
    "truncated png": hostile_images.saved(Image.new("RGB", (160, 60), "gray"), "PNG")[:60],
}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, as the README tells an operator to make."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("protocols")
    certificate = make_certificate(tmp)
    running = Stack(tmp, workers=2, tls=certificate, api_keys=f"other-key,{KEY}", result_ttl_s="120")
    yield running
    running.close()


def run_client(stack: Stack, client: str, call: str, key: str = KEY, **args: Any) -> dict[str, Any]:
    """Run one client call in a process of its own, configured as a crawler would: by environment."""
    cert = stack.env["CAPTCHAOCR_TLS_CERTFILE"]
    servers = {"2captcha": f"127.0.0.1:{stack.port}", "capmonster": f"{stack.base_url}/capmonster"}
    env = {**os.environ, "REQUESTS_CA_BUNDLE": cert, "SSL_CERT_FILE": cert, "CLIENT_KEY": key,
           "SERVER": servers.get(client, ""), "CAPSOLVER_API_BASE": f"{stack.base_url}/capsolver",
           "CAPSOLVER_API_KEY": key}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tests.protocol_clients", client, call, json.dumps(args)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def ocr_text(stack: Stack, image: str) -> str:
    """What POST /ocr reads in the image: every protocol must answer the same."""
    response = stack.http.post("/ocr", json={"image_base64": image}, headers={"X-API-Key": KEY})
    assert response.status_code == 200, response.text
    return response.json()["text"]


def labelled(folder: Path, name: str) -> tuple[str, str]:
    """(label, base64) of one image of the team's letter or arithmetic corpus."""
    path = folder / name
    if not path.is_file():
        unavailable(f"no {path}: is ../shared beside the project?")
    return path.stem.split("_")[1], base64.b64encode(path.read_bytes()).decode()


def reports(stack: Stack, key: str = INCORRECT_REPORTS_KEY) -> int:
    return int(Redis.from_url(stack.redis.url).get(key) or 0)


def test_plain_http_is_refused_when_tls_is_on(stack: Stack) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{stack.port}/", timeout=5)


# 2Captcha: 2captcha-python 2.1.2


def test_2captcha_solves_a_file_and_base64(stack: Stack, tmp_path: Path) -> None:
    _label, image = SVG[0]
    path = tmp_path / "captcha.png"
    path.write_bytes(base64.b64decode(image))
    expected = ocr_text(stack, image)
    by_file = run_client(stack, "2captcha", "normal", file=str(path))  # method=post
    by_base64 = run_client(stack, "2captcha", "normal", file=image, numeric=1, minLen=len(expected),
                           maxLen=len(expected))  # fmt: skip
    assert by_file["value"]["code"] == by_base64["value"]["code"] == expected
    assert by_file["value"]["captchaId"].isdigit()


def test_2captcha_unsolvable_report_key_and_balance(stack: Stack) -> None:
    white = base64.b64encode(WHITE).decode()
    assert run_client(stack, "2captcha", "normal", file=white) == {
        "error": "ApiException", "message": "ERROR_CAPTCHA_UNSOLVABLE"
    }  # fmt: skip
    task_id = run_client(stack, "2captcha", "normal", file=SVG[1][1])["value"]["captchaId"]
    before, good_before = reports(stack), reports(stack, CORRECT_REPORTS_KEY)
    for correct in (False, False, True, True):
        reported = run_client(stack, "2captcha", "report", id=task_id, correct=correct)
        assert reported["value"] == "OK_REPORT_RECORDED"
    # Each kind once per task, however often reported.
    assert (reports(stack), reports(stack, CORRECT_REPORTS_KEY)) == (before + 1, good_before + 1)
    unknown = run_client(stack, "2captcha", "report", id="12345", correct=False)
    assert unknown["message"] == "ERROR_WRONG_CAPTCHA_ID"
    wrong_key = run_client(stack, "2captcha", "normal", key="wrong", file=SVG[1][1])
    assert wrong_key["message"] == "ERROR_WRONG_USER_KEY"
    assert run_client(stack, "2captcha", "balance", key="wrong")["message"] == "ERROR_WRONG_USER_KEY"
    assert run_client(stack, "2captcha", "balance")["value"] == 1_000_000.0


def test_2captcha_pageurl_names_the_site_and_its_reports_teach_it(stack: Stack) -> None:
    site, headers = "shop.example", {"X-API-Key": KEY}
    page = "https://Shop.example:8443/login?next=/"
    good = run_client(stack, "2captcha", "normal", file=SVG[3][1], pageurl=page)["value"]["captchaId"]
    bad = run_client(stack, "2captcha", "normal", file=SVG[4][1], pageurl=page)["value"]["captchaId"]
    for task_id, correct in ((good, True), (good, True), (bad, False)):
        assert run_client(stack, "2captcha", "report", id=task_id, correct=correct)["value"] == "OK_REPORT_RECORDED"
    status = stack.http.get(f"/sites/{site}", headers=headers).json()
    assert status["samples_by_source"]["feedback"] == 1, status  # reportgood: the answer, once
    metrics = stack.http.get("/metrics", headers=headers).text
    assert f'captchaocr_site_feedback_total{{site="{site}",verdict="right"}} 1.0' in metrics
    assert f'captchaocr_site_feedback_total{{site="{site}",verdict="wrong"}} 1.0' in metrics
    assert stack.http.delete(f"/sites/{site}", headers=headers).status_code == 204


def test_2captcha_json_answers(stack: Stack) -> None:
    _label, image = SVG[2]
    form = {"key": KEY, "method": "base64", "body": image, "json": "1"}
    created = stack.http.post("/in.php", data=form).json()
    assert created["status"] == 1
    answer = {"status": 0, "request": "CAPCHA_NOT_READY"}
    while answer["request"] == "CAPCHA_NOT_READY":
        params = {"key": KEY, "action": "get", "id": created["request"], "json": "1"}
        answer = stack.http.get("/res.php", params=params).json()
    assert answer == {"status": 1, "request": ocr_text(stack, image)}
    wrong = stack.http.get("/res.php", params={"key": "wrong", "action": "getbalance", "json": "1"}).json()
    assert (wrong["status"], wrong["request"]) == (0, "ERROR_WRONG_USER_KEY")


def test_2captcha_reads_letters_case_and_math(stack: Stack) -> None:
    """numeric 2 reads letters, 4 letters and digits, calc the value; caseSensitive (regsense) keeps case,
    which the generic reader only guesses, so it refuses."""
    letters, mixed, total = labelled(ALNUM, LETTERS_ONLY), labelled(ALNUM, WITH_DIGITS), labelled(MATH, SUM)
    asked = [(letters[1], {"numeric": 2}), (mixed[1], {"numeric": 4, "minLen": 4, "maxLen": 4}),
             (letters[1], {"numeric": 2, "caseSensitive": 1}), (total[1], {"calc": 1})]  # fmt: skip
    read = [run_client(stack, "2captcha", "normal", file=image, **fields) for image, fields in asked]
    read = [answer.get("value", {}).get("code", answer) for answer in read]
    assert [str(read[0]).lower(), str(read[1]).lower(), read[3]] == [
        letters[0].lower(), mixed[0].lower(), total[0]]  # fmt: skip
    assert "ERROR_CAPTCHA_UNSOLVABLE" in str(read[2]), read[2]


@pytest.mark.parametrize("fields, reading", [
    ({}, {"digits": 4, "max_digits": None, "case": None}),
    ({"numeric": "0", "regsense": "0"}, {"digits": 4, "max_digits": None, "case": None}),
    ({"numeric": "3", "min_len": "5"}, {"digits": 5, "max_digits": 8, "case": None}),
    ({"numeric": "2", "regsense": "1", "min_len": "5", "max_len": "6"},
     {"charset": "letters", "case": True, "length": {"min": 5, "max": 6}}),
    ({"numeric": "4", "max_len": "6"}, {"charset": "alnum", "case": None, "length": {"min": 1, "max": 6}}),
    ({"calc": "1", "numeric": "1", "min_len": "3"}, {"math": True}),
])  # fmt: skip
def test_2captcha_fields_map_to_the_job(fields: dict, reading: dict) -> None:
    assert twocaptcha_options(FormData(fields), Settings()).reading() == {"site": None, **reading}


@pytest.mark.parametrize("fields, site", [
    ({"pageurl": "https://Shop.example:8443/login"}, "shop.example"),
    ({"pageurl": "shop.example/login", "site": "my-site"}, "my-site"),
    ({"pageurl": "not a url at all"}, None),
    ({"site": "bad site!"}, None),
])  # fmt: skip
def test_2captcha_site_and_pageurl_name_the_site(fields: dict, site: str | None) -> None:
    assert twocaptcha_options(FormData(fields), Settings()).site == site


# CapMonster Cloud: capmonstercloudclient 4.3.1


def test_capmonster_solves_and_its_threshold_refuses(stack: Stack) -> None:
    _label, image = SVG[3]
    solved = run_client(stack, "capmonster", "solve", image=image, numeric=1)
    assert solved == {"value": {"text": ocr_text(stack, image)}}
    strict = run_client(stack, "capmonster", "solve", image=base64.b64encode(WHITE).decode(), threshold=90)
    assert strict["error"] == "GetResultError" and "ERROR_CAPTCHA_UNSOLVABLE" in strict["message"]


def test_capmonster_reads_math_and_letters(stack: Stack) -> None:
    """Its client sends math and Case but refuses numeric 2 (its ImageToTextRequest allows 0 or 1): the
    value of an expression through the client, letters through the API itself (with Case, refused: the
    generic reader only guesses a letter's case)."""
    total, letters = labelled(MATH, SUM), labelled(ALNUM, LETTERS_ONLY)
    solved = run_client(stack, "capmonster", "solve", image=total[1], math=True)
    assert solved == {"value": {"text": total[0]}}
    texts = []
    for fields in ({"numeric": 2}, {"numeric": 2, "Case": True}):
        task = {"type": "ImageToTextTask", "body": letters[1], **fields}
        created = stack.http.post("/capmonster/createTask", json={"clientKey": KEY, "task": task}).json()
        task_id = created["taskId"]
        answer = {"status": "processing"}
        while answer.get("status") == "processing":
            poll = {"clientKey": KEY, "taskId": task_id}
            answer = stack.http.post("/capmonster/getTaskResult", json=poll).json()
        texts.append(answer.get("solution", {}).get("text", answer))
    assert str(texts[0]).lower() == letters[0].lower()
    assert texts[1]["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE", texts[1]  # case kept: only guessed, refused


@pytest.mark.parametrize("fields, reading", [
    ({"numeric": 1, "Case": True}, {"digits": 4, "max_digits": None, "case": True}),
    ({"numeric": 2, "Case": True, "maxLength": 6},
     {"charset": "letters", "case": True, "length": {"min": 1, "max": 6}}),
    ({"numeric": 2, "case": False}, {"charset": "letters", "case": False, "length": 4}),
    ({"math": True, "numeric": 1}, {"math": True}),
    ({"websiteURL": "https://shop.example/login"},
     {"digits": 4, "max_digits": None, "case": None, "site": "shop.example"}),
])  # fmt: skip
def test_capmonster_fields_map_to_the_job(fields: dict, reading: dict) -> None:
    task = CapMonsterImageTask.model_validate({"type": "ImageToTextTask", **fields})
    assert capmonster_options(task, Settings()).reading() == {"site": None, **reading}


def test_capmonster_threshold_is_the_jobs_min_confidence(stack: Stack) -> None:
    """The same image at threshold 0 is answered and at 100 refused: the threshold reached the worker."""
    _label, image = SVG[4]
    body = {"clientKey": KEY, "softId": 55, "callbackUrl": None, "languagePool": "en"}
    answers = []
    for threshold in (0, 100):
        task = {"type": "ImageToTextTask", "body": image, "recognizingThreshold": threshold, "Case": True}
        task_id = stack.http.post("/capmonster/createTask", json={**body, "task": task}).json()["taskId"]
        answer = {"status": "processing"}
        while answer.get("status") == "processing":
            poll = {"clientKey": KEY, "taskId": task_id}
            answer = stack.http.post("/capmonster/getTaskResult", json=poll).json()
        answers.append(answer.get("errorCode", "solved"))
    assert answers == ["solved", "ERROR_CAPTCHA_UNSOLVABLE"]


def test_capmonster_report_key_and_balance(stack: Stack) -> None:
    """capmonstercloudclient has no report call: the report is the API's own method, over HTTPS."""
    _label, image = SVG[5]
    task = {"type": "ImageToTextTask", "body": image}
    created = stack.http.post("/capmonster/createTask", json={"clientKey": KEY, "task": task}).json()
    task_id = created["taskId"]
    assert run_client(stack, "capmonster", "solve", image=image)["value"]["text"]
    while stack.http.post("/capmonster/getTaskResult", json={"clientKey": KEY, "taskId": task_id}).json().get(
        "status") == "processing":  # fmt: skip
        pass
    before = reports(stack)
    report = {"clientKey": KEY, "taskId": task_id}
    for _ in range(2):
        answer = stack.http.post("/capmonster/reportIncorrectImageCaptcha", json=report).json()
        assert answer["status"] == "success"
    assert reports(stack) == before + 1
    wrong = run_client(stack, "capmonster", "solve", key="wrong", image=image)
    assert wrong["error"] == "GetTaskError" and "ERROR_KEY_DOES_NOT_EXIST" in wrong["message"]
    assert run_client(stack, "capmonster", "balance", key="wrong")["error"] == "GetBalanceError"
    assert run_client(stack, "capmonster", "balance")["value"]["balance"] == 1_000_000.0


# CapSolver: capsolver 1.0.7


def test_capsolver_answers_in_create_task(stack: Stack) -> None:
    _label, image = SVG[0]
    solved = run_client(stack, "capsolver", "solve", body=image, score=0.5)
    assert solved == {"value": {"text": ocr_text(stack, image)}}
    answer = stack.http.post("/capsolver/createTask", json={"clientKey": KEY, "task": {
        "type": "ImageToTextTask", "body": image, "module": "common"}}).json()  # fmt: skip
    assert answer["status"] == "ready" and answer["solution"]["text"] == ocr_text(stack, image)


def test_capsolver_reads_letters_case_and_math(stack: Stack) -> None:
    """Its client sends the task's fields as given: numeric 2, case and math reach the reading."""
    letters, total = labelled(ALNUM, LETTERS_ONLY), labelled(MATH, SUM)
    asked = [(letters[1], {"numeric": 2}), (letters[1], {"numeric": 2, "case": True}), (total[1], {"math": True})]
    read = [run_client(stack, "capsolver", "solve", body=image, **fields) for image, fields in asked]
    read = [answer.get("value", {}).get("text", answer) for answer in read]
    assert [str(read[0]).lower(), read[2]] == [letters[0].lower(), total[0]]
    assert "low confidence" in str(read[1]), read[1]  # case kept: only guessed, refused


@pytest.mark.parametrize("fields, reading", [
    ({"score": 0.5}, {"digits": None, "max_digits": None, "case": None}),
    ({"numeric": 2, "case": True}, {"charset": "letters", "case": True, "length": None}),
    ({"math": True, "numeric": 2}, {"math": True}),
    ({"math": True, "websiteURL": "http://shop.example"}, {"math": True, "site": "shop.example"}),
])  # fmt: skip
def test_capsolver_fields_map_to_the_job(fields: dict, reading: dict) -> None:
    task = CapSolverImageTask.model_validate({"type": "ImageToTextTask", **fields})
    assert capsolver_options(task, Settings()).reading() == {"site": None, **reading}


def test_capsolver_refusal_key_and_balance(stack: Stack) -> None:
    refused = run_client(stack, "capsolver", "solve", body=SVG[0][1], score=1.0)
    assert refused["error"] == "UnknownError" and "confidence" in refused["message"]
    unsolvable = stack.http.post("/capsolver/createTask", json={"clientKey": KEY, "task": {
        "type": "ImageToTextTask", "body": base64.b64encode(WHITE).decode()}}).json()  # fmt: skip
    assert unsolvable["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE"
    assert run_client(stack, "capsolver", "solve", key="wrong", body=SVG[0][1])["error"] == "UnknownError"
    assert run_client(stack, "capsolver", "balance")["value"]["balance"] == 1_000_000.0


# Hostile input


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_get_each_protocols_error(stack: Stack, name: str) -> None:
    data = HOSTILE[name]
    image = base64.b64encode(data).decode()
    files = {"file": ("captcha.png", data, "image/png")}
    posted = stack.http.post("/in.php", data={"key": KEY, "method": "post"}, files=files)
    as_base64 = stack.http.post("/in.php", data={"key": KEY, "method": "base64", "body": image})
    for answer in (posted, as_base64):
        assert answer.status_code == 200 and answer.text.startswith("ERROR_"), (name, answer.text)
    for prefix in ("/capmonster", "/capsolver"):
        task = {"type": "ImageToTextTask", "body": image}
        answer = stack.http.post(f"{prefix}/createTask", json={"clientKey": KEY, "task": task})
        assert answer.status_code == 200 and answer.json()["errorId"] > 0, (name, prefix, answer.text)


def test_malformed_requests_get_each_protocols_error(stack: Stack) -> None:
    too_big = b"0" * (5 * 1024 * 1024)  # over the default max_body_bytes
    answers = [
        stack.http.post("/in.php", content=b"\xff\xfe", headers={"Content-Type": "multipart/form-data"}),
        stack.http.post("/in.php", data={"key": KEY, "method": "base64", "body": "x", "numeric": "many"}),
        stack.http.post("/in.php", files={"file": ("a.png", too_big)}, data={"key": KEY, "method": "post"}),
        stack.http.get("/res.php", params={"key": KEY, "action": "get", "id": "not-a-number"}),
        stack.http.get("/res.php", params={"key": KEY, "action": "launch"}),
    ]
    for answer in answers:
        assert answer.status_code == 200 and answer.text.startswith("ERROR_"), answer.text
    for prefix in ("/capmonster", "/capsolver"):
        task = {"type": "ImageToTextTask", "recognizingThreshold": 500, "score": 5}
        for body in (b"[", json.dumps({"clientKey": KEY, "task": task}).encode()):
            answer = stack.http.post(f"{prefix}/createTask", content=body)
            assert answer.status_code == 200 and answer.json()["errorId"] > 0, answer.text


def test_a_full_queue_is_each_protocols_no_slot_error(tmp_path: Path) -> None:
    """The same admission as /ocr: past max_queue_depth, 2Captcha and the task APIs say no slot."""
    full = Stack(tmp_path, workers=0, tls=make_certificate(tmp_path), max_queue_depth="1")
    try:
        image = SVG[0][1]
        form = {"method": "base64", "body": image}
        assert full.http.post("/in.php", data=form).text.startswith("OK|")
        assert full.http.post("/in.php", data=form).text == "ERROR_NO_SLOT_AVAILABLE"
        for prefix in ("", "/capmonster", "/capsolver"):
            task = {"type": "ImageToTextTask", "body": image}
            answer = full.http.post(f"{prefix}/createTask", json={"task": task}).json()
            assert answer["errorCode"] == "ERROR_NO_SLOT_AVAILABLE", prefix
    finally:
        full.close()
