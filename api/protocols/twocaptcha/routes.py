"""2Captcha's classic API: ``POST /in.php`` queues a captcha, ``GET /res.php`` answers, reports, balance.

2captcha-python (``TwoCaptcha(key, server="host:port")``, always over https) and most crawlers speak it.
Every answer is HTTP 200 with ``OK|<value>`` or an error string (``{"status", "request"}`` with
``json=1``): clients read the text, not the status. The task itself is the task API's (reading, ids,
reports), so only the names of its fields and errors are 2Captcha's here.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from api.admission import QueueFull
from api.auth import key_is_accepted
from api.body_limit import BodyTooLarge
from api.dependencies import Services, ServicesDep
from api.protocols.anticaptcha.routes import BALANCE
from api.protocols.anticaptcha.schemas import AntiCaptchaError, AntiCaptchaFailure
from api.protocols.anticaptcha.tasks import (
    JobOptions, answered_task, create_task, length_range, report_incorrect, task_result,
)  # fmt: skip
from api.protocols.reports import record_correct
from shared.settings import Settings
from shared.sites import site_of

OK = "OK|"
NOT_READY = "CAPCHA_NOT_READY"  # sic: 2Captcha's spelling, which its clients compare against
REPORTED = "OK_REPORT_RECORDED"
# The task API's errors under the names 2Captcha documents for them.
_ERRORS = {
    AntiCaptchaError.ERROR_KEY_DOES_NOT_EXIST: "ERROR_WRONG_USER_KEY",
    AntiCaptchaError.ERROR_NO_SLOT_AVAILABLE: "ERROR_NO_SLOT_AVAILABLE",
    AntiCaptchaError.ERROR_ZERO_CAPTCHA_FILESIZE: "ERROR_ZERO_CAPTCHA_FILESIZE",
    AntiCaptchaError.ERROR_TOO_BIG_CAPTCHA_FILESIZE: "ERROR_TOO_BIG_CAPTCHA_FILESIZE",
    AntiCaptchaError.ERROR_CAPTCHA_UNSOLVABLE: "ERROR_CAPTCHA_UNSOLVABLE",
    AntiCaptchaError.ERROR_IMAGE_TYPE_NOT_SUPPORTED: "ERROR_IMAGE_TYPE_NOT_SUPPORTED",
    AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID: "ERROR_WRONG_CAPTCHA_ID",
    AntiCaptchaError.ERROR_TASK_ABSENT: "ERROR_ZERO_CAPTCHA_FILESIZE",
    AntiCaptchaError.ERROR_TASK_NOT_SUPPORTED: "ERROR_BAD_PARAMETERS",
}
# numeric's values that read more than digits (2Captcha: 2 letters only, 4 letters and digits).
_CHARSETS = {2: "letters", 4: "alnum"}
MAX_FIELDS = 100  # 2captcha-python sends about ten; a form of thousands is not a captcha

router = APIRouter(tags=["2Captcha classic API"])


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _number(form: FormData, name: str) -> int | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip().isdigit():
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_TASK_NOT_SUPPORTED, f"{name} is not a number")
    return int(value)


def job_options(form: FormData, settings: Settings) -> JobOptions:
    """2Captcha's fields as job options: numeric 2 (letters only) reads letters, 4 (letters and digits)
    both, regsense=1 tells upper from lower case, calc=1 answers the expression's value. numeric 0
    (unset), 1 and 3 (digits or letters) read digits, as Anti-Captcha's 0: crawlers of numeric captchas
    send them, and reading letters too would change their answers. `site` (ours) or the host of
    `pageurl` names the site that learns the captcha."""
    site = site_of(_text(form, "site"), _text(form, "pageurl"))
    if _number(form, "calc") == 1:
        return JobOptions(math=True, site=site)
    charset = _CHARSETS.get(_number(form, "numeric"))
    digits, max_digits = length_range(_number(form, "min_len"), _number(form, "max_len"), settings)
    case = True if _number(form, "regsense") == 1 else None
    return JobOptions(digits, max_digits, charset=charset, case=case, site=site)


def _image_base64(form: FormData, file: bytes | None) -> str | None:
    """The image of ``method=post`` (a file) or ``method=base64`` (the ``body`` field)."""
    if form.get("method") == "post":
        return base64.b64encode(file).decode() if file else None
    body = form.get("body")
    return body if isinstance(body, str) else None


def _submit(services: Services, form: FormData, file: bytes | None) -> str:
    """in.php (runs in a thread): ``OK|<the new captcha's id>``."""
    options = job_options(form, services.settings)
    return f"{OK}{create_task(services, _image_base64(form, file), options)}"


def _task_id(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 20 else None


def _result(services: Services, params: dict[str, str]) -> str:
    """res.php (runs in a thread): ``action=get`` (``OK|<text>`` or not ready) and the reports."""
    action, task_id = params.get("action"), _task_id(params.get("id"))
    if action == "get":
        result = task_result(services, task_id)
        return NOT_READY if result.solution is None else f"{OK}{result.solution.text}"
    if action == "reportbad":
        report_incorrect(services, task_id)
        return REPORTED
    if action == "reportgood":
        record_correct(services, *answered_task(services, task_id))
        return REPORTED
    raise AntiCaptchaFailure(AntiCaptchaError.ERROR_TASK_NOT_SUPPORTED, f"action {action!r} is not supported")


def _reply(ok: bool, value: str, as_json: bool, description: str = "") -> Response:
    """The text 2Captcha answers (``OK|value``, a bare value, an error), or with ``json=1`` that text as
    ``{"status": 1 or 0, "request": value without "OK|"}``."""
    if as_json:
        content: dict[str, Any] = {"status": 1 if ok else 0, "request": value.removeprefix(OK)}
        if description:
            content["error_text"] = description
        return JSONResponse(content)
    return PlainTextResponse(value)


def _failure(request: Request, error: AntiCaptchaError, description: str, as_json: bool) -> Response:
    code = _ERRORS[error]
    request.state.outcome = code
    return _reply(False, code, as_json, description)


async def _answer(
    request: Request, services: Services, params: dict[str, str], work: Any, *args: Any
) -> Response:
    """Run ``work`` with the key checked, answering every failure as 2Captcha's error string."""
    as_json = params.get("json") == "1"
    try:
        if not key_is_accepted(services.settings, params.get("key")):
            raise AntiCaptchaFailure(AntiCaptchaError.ERROR_KEY_DOES_NOT_EXIST, "not a key of this service")
        value = await work(*args)
    except AntiCaptchaFailure as exc:
        return _failure(request, exc.error, exc.description, as_json)
    except QueueFull as exc:
        return _failure(request, AntiCaptchaError.ERROR_NO_SLOT_AVAILABLE, str(exc), as_json)
    except (RedisConnectionError, RedisTimeoutError) as exc:  # clients retry on it
        return _failure(request, AntiCaptchaError.ERROR_NO_SLOT_AVAILABLE, f"Redis away: {exc}", as_json)
    return _reply(value != NOT_READY, value, as_json)


async def _read_form(request: Request) -> tuple[FormData, bytes | None]:
    """The form and its ``file``, read within the body limit."""
    form = await request.form(max_files=2, max_fields=MAX_FIELDS)
    upload = form.get("file")
    return form, (await upload.read() if isinstance(upload, UploadFile) else None)


@router.post("/in.php", response_class=PlainTextResponse)
async def in_php(request: Request, services: ServicesDep) -> Response:
    """Queue a captcha: ``method=post`` with a ``file``, or ``method=base64`` with ``body``; ``OK|<id>``."""
    try:
        form, file = await _read_form(request)
    except BodyTooLarge as exc:
        return _failure(request, AntiCaptchaError.ERROR_TOO_BIG_CAPTCHA_FILESIZE, exc.detail, False)
    except HTTPException as exc:  # not a form: no captcha in it
        error = AntiCaptchaError.ERROR_ZERO_CAPTCHA_FILESIZE
        return _failure(request, error, f"request: {exc.detail}", False)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    return await _answer(request, services, params, run_in_threadpool, _submit, services, form, file)


@router.get("/res.php", response_class=PlainTextResponse)
@router.post("/res.php", response_class=PlainTextResponse, operation_id="res_php_post")
async def res_php(request: Request, services: ServicesDep) -> Response:
    """``action=get`` (``OK|<text>`` or ``CAPCHA_NOT_READY``), getbalance, reportbad, reportgood."""
    params = dict(request.query_params)
    if params.get("action") == "getbalance":
        return await _answer(request, services, params, _balance)
    return await _answer(request, services, params, run_in_threadpool, _result, services, params)


async def _balance() -> str:
    return str(BALANCE)
