"""An Anti-Captcha-compatible task API, so crawlers in any language keep their solver client code.

``POST /createTask`` -> ``POST /getTaskResult`` until ``ready``; plus ``/getBalance`` and
``/reportIncorrectImageCaptcha``. Like the paid service, every answer is HTTP 200 and errors are
``{errorId, errorCode, errorDescription}`` bodies: client libraries read ``errorId``, not the status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import create_model
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from api.admission import QueueFull
from api.auth import key_is_accepted
from api.body_limit import BodyTooLarge
from api.dependencies import ServicesDep
from api.protocols.anticaptcha.schemas import (
    AntiCaptchaError,
    AntiCaptchaFailure,
    BalanceRequest,
    BalanceResponse,
    CreateTaskRequest,
    CreateTaskResponse,
    ErrorResponse,
    ImageToTextTask,
    ReportResponse,
    TaskRequest,
    TaskResultResponse,
)
from api.ocr.waiting import wait_for_result
from api.protocols.anticaptcha.tasks import (
    JobOptions, create_task, job_options, report_incorrect, task_job_id, task_result,
)  # fmt: skip
from shared.settings import Settings

BALANCE = 1_000_000.0  # self-hosted: reading costs nothing, so the balance never runs out
# A request that is not even a JSON object lacks the one field each method cannot do without.
_UNREADABLE_REQUEST = {
    "createTask": AntiCaptchaError.ERROR_TASK_ABSENT,
    "getTaskResult": AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID,
    "reportIncorrectImageCaptcha": AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID,
    "getBalance": AntiCaptchaError.ERROR_KEY_DOES_NOT_EXIST,
}


class AntiCaptchaRoute(APIRoute):
    """Turns request validation errors and :class:`AntiCaptchaFailure` into the protocol's error body."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                failure = _validation_failure(exc, self.path)
            except AntiCaptchaFailure as exc:
                failure = exc
            except QueueFull as exc:
                failure = AntiCaptchaFailure(AntiCaptchaError.ERROR_NO_SLOT_AVAILABLE, str(exc))
            except BodyTooLarge as exc:
                failure = AntiCaptchaFailure(AntiCaptchaError.ERROR_TOO_BIG_CAPTCHA_FILESIZE, exc.detail)
            except HTTPException as exc:  # FastAPI's 400 for a body that is not UTF-8 text
                failure = AntiCaptchaFailure(_unreadable(self.path), f"request: {exc.detail}")
            except (RedisConnectionError, RedisTimeoutError) as exc:  # still HTTP 200: clients retry on it
                failure = AntiCaptchaFailure(AntiCaptchaError.ERROR_NO_SLOT_AVAILABLE, f"Redis away: {exc}")
            request.state.outcome = failure.error.name
            return JSONResponse(failure.body())

        return route_handler


def _validation_failure(exc: RequestValidationError, path: str) -> AntiCaptchaFailure:
    """The protocol error naming the first invalid field."""
    error = exc.errors()[0]
    loc = [part for part in error["loc"][1:] if isinstance(part, str)]  # field names below "body"
    where = ".".join(loc) or "request"
    description = f"{where}: {error['msg']}"
    if loc[:1] == ["clientKey"]:
        return AntiCaptchaFailure(AntiCaptchaError.ERROR_KEY_DOES_NOT_EXIST, description)
    if loc[:1] == ["taskId"]:
        return AntiCaptchaFailure(AntiCaptchaError.ERROR_NO_SUCH_CAPCHA_ID, description)
    if loc[:1] == ["task"] and len(loc) > 1:
        return AntiCaptchaFailure(AntiCaptchaError.ERROR_TASK_NOT_SUPPORTED, description)
    if loc[:1] == ["task"]:
        return AntiCaptchaFailure(AntiCaptchaError.ERROR_TASK_ABSENT, description)
    return AntiCaptchaFailure(_unreadable(path), description)


def _unreadable(path: str) -> AntiCaptchaError:
    """The error of a request to ``path`` (``/createTask``, or ``/<prefix>/createTask``) that is not JSON."""
    return _UNREADABLE_REQUEST[path.rpartition("/")[2]]


def authorize(settings: Settings, client_key: str | None) -> None:
    """Accept any key when none is configured, else only a configured one (constant-time comparison)."""
    if not key_is_accepted(settings, client_key):
        raise AntiCaptchaFailure(AntiCaptchaError.ERROR_KEY_DOES_NOT_EXIST, "clientKey is not a key of this service")


ANSWER = "The method's answer, or {errorId, errorCode, errorDescription}: every request is answered with 200."


@dataclass(frozen=True)
class TaskProtocol:
    """A solver service whose API is Anti-Captcha's (CapMonster's and CapSolver's are): its task's fields,
    their one mapping onto job options, and whether ``createTask`` waits for the answer (CapSolver)."""

    prefix: str
    tag: str
    task: type[ImageToTextTask]
    options: Callable[[Any, Settings], JobOptions]
    answer_at_once: bool = False

    def create_request(self) -> type[CreateTaskRequest]:
        """``createTask``'s body, holding this protocol's task."""
        if self.task is ImageToTextTask:
            return CreateTaskRequest
        task = (self.task | None, None)
        return create_model(f"{self.task.__name__}Request", __base__=CreateTaskRequest, task=task)


def task_router(protocol: TaskProtocol) -> APIRouter:
    """The four methods of the task API, under ``protocol.prefix``, reading and answering through the
    same code whichever service a client believes it talks to."""
    router = APIRouter(route_class=AntiCaptchaRoute, prefix=protocol.prefix, tags=[protocol.tag])

    @router.post("/createTask", response_model=CreateTaskResponse | ErrorResponse,
                 response_model_exclude_none=True, response_description=ANSWER)  # fmt: skip
    async def create_task_route(body: CreateTaskRequest, services: ServicesDep) -> CreateTaskResponse:
        """Queue an ImageToTextTask; poll ``/getTaskResult`` with the returned ``taskId`` (CapSolver's
        answer already holds the solution when a worker read it within ``wait_timeout_s``)."""
        authorize(services.settings, body.clientKey)
        if body.task is None:
            raise AntiCaptchaFailure(AntiCaptchaError.ERROR_TASK_ABSENT, "the request has no task")
        options = protocol.options(body.task, services.settings)
        task_id = await run_in_threadpool(create_task, services, body.task.body, options)
        if not protocol.answer_at_once:
            return CreateTaskResponse(taskId=task_id)
        await wait_for_result(services.async_redis, task_job_id(task_id), services.settings.wait_timeout_s)
        result = await run_in_threadpool(task_result, services, task_id)
        return CreateTaskResponse(taskId=task_id, status=result.status, solution=result.solution)

    # The body's model is the protocol's: set after the definition, as annotations are strings here.
    create_task_route.__annotations__["body"] = protocol.create_request()

    @router.post("/getTaskResult", response_model=TaskResultResponse | ErrorResponse,
                 response_model_exclude_none=True, response_description=ANSWER)  # fmt: skip
    async def get_task_result_route(body: TaskRequest, services: ServicesDep) -> TaskResultResponse:
        """``processing`` until a worker read the image, then ``ready`` with ``solution.text``."""
        authorize(services.settings, body.clientKey)
        return await run_in_threadpool(task_result, services, body.taskId)

    @router.post("/getBalance", response_model=BalanceResponse | ErrorResponse, response_description=ANSWER)
    async def get_balance_route(services: ServicesDep, body: BalanceRequest | None = None) -> BalanceResponse:
        """A constant large balance: clients that check it before working keep working."""
        authorize(services.settings, body.clientKey if body else None)
        return BalanceResponse(balance=BALANCE)

    @router.post("/reportIncorrectImageCaptcha", response_model=ReportResponse | ErrorResponse,
                 response_description=ANSWER)  # fmt: skip
    async def report_incorrect_route(body: TaskRequest, services: ServicesDep) -> ReportResponse:
        """Count a wrong answer (once per task) and, when the operator enabled it, keep the image."""
        authorize(services.settings, body.clientKey)
        await run_in_threadpool(report_incorrect, services, body.taskId)
        return ReportResponse()

    return router


ANTICAPTCHA = TaskProtocol(prefix="", tag="Anti-Captcha task API", task=ImageToTextTask, options=job_options)
router = task_router(ANTICAPTCHA)
