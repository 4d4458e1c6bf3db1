"""What shared/rq_internals.py takes from RQ's insides is still there, unchanged since it was checked.

Each override or replica is tied to the RQ sources it copies or depends on, by a fingerprint of their
text: an RQ release that changes one fails here, naming it and the code to re-check. Private names are
checked for existence and signature, and the job hash fields and worker-key format by what RQ writes.
"""

from __future__ import annotations

import hashlib
import inspect
import signal
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import fakeredis
import pytest
import rq
from rq import Callback, Queue, Repeat, Retry, SimpleWorker
from rq import executions, serializers, worker_registration
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job, _job_stack
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker, WorkerStatus

from shared.rq_internals import RQ_OPTION_FIELDS, TunedSimpleWorker, UncompressedJob, WorkerJob, workers_key

CHECKED_VERSION = "2.12.0"

# Our code -> {the RQ source it copies or relies on: sha256 of that source, first 16 hex digits}.
FINGERPRINTS: dict[str, dict[str, str]] = {
    "UncompressedJob.to_dict": {
        "Job.to_dict": "2287fa954c9fa916",
        "Job.data": "7b6b6e3c008b4eb5",
        "Job.restore": "b81242d7b8dc260a",
    },
    "WorkerJob.perform": {"Job.perform": "d86f4829a8d297be", "Job._execute": "d49a6f89c0857bc4"},
    "WorkerJob.restore": {"Job.restore": "b81242d7b8dc260a", "Job.to_dict": "2287fa954c9fa916"},
    "TunedSimpleWorker.handle_job_success": {
        "BaseWorker.handle_job_success": "d3a8e0ee111a7a5a",
        "Job._handle_success": "35b96f8229b6053d",
    },
    "TunedSimpleWorker.prepare_execution": {
        "BaseWorker.prepare_execution": "899b4eaa689fcf35",
        "executions.prepare_execution": "67351870bec3fddb",
        "Execution.create": "11d84f7f0f523489",
    },
    "TunedSimpleWorker.prepare_job_execution": {
        "BaseWorker.prepare_job_execution": "783c9dc74a37560b",
        "BaseWorker.perform_job": "8f75687c851037b7",
        "SimpleWorker.execute_job": "d8a40d49f515b558",
    },
    "TunedSimpleWorker.handle_execution_ended": {"BaseWorker.handle_execution_ended": "23748b027980a6cd"},
    "TunedSimpleWorker.teardown": {
        "BaseWorker.teardown": "bfc2572817e5fbf9",
        "BaseWorker.unsubscribe": "16e9db30b9c54c46",
    },
    "TunedSimpleWorker.check_for_suspension": {"BaseWorker.check_for_suspension": "e8095ae1fcf966bd"},
    "TunedSimpleWorker.set_state": {"BaseWorker.set_state": "bb8d4f1d93ff078b"},
    "TunedSimpleWorker.execute_job": {"SimpleWorker.execute_job": "d8a40d49f515b558"},
    "TunedSimpleWorker.handle_job_failure": {"BaseWorker.handle_job_failure": "ecfeb052c99ac675"},
    "TunedSimpleWorker.dequeue_timeout": {
        "BaseWorker.dequeue_timeout": "62cbfcfcde523452",
        "BaseWorker.connection_timeout": "d430e6acca2e4eef",
        "BaseWorker._set_connection": "38ebd371028aad20",
        "BaseWorker.__init__": "e3ed8b85f3864b20",
    },
    "TunedSimpleWorker.register_birth": {"BaseWorker.register_birth": "4690ab4f7b74ffb2"},
    "TunedSimpleWorker.get_heartbeat_ttl": {"SimpleWorker.get_heartbeat_ttl": "1ca53202c2d19241"},
    "TunedSimpleWorker.heartbeat": {"BaseWorker.heartbeat": "d00c83971db2d72f"},
    "TunedSimpleWorker.max_connection_wait_time": {
        "BaseWorker.dequeue_job_and_maintain_ttl": "0c0b1bc6c8734ffa",
    },
    "TunedSimpleWorker.stop_requested": {
        "BaseWorker.request_stop": "f934e7e7e6eecfee",
        "BaseWorker.__init__": "e3ed8b85f3864b20",
    },
    "workers_key": {"worker_registration.register": "757bc1c839a259c8"},
    "shared/results.py and api/ocr/waiting.py": {
        "Result.get_key": "bc4968e1662dbcb2",
        "Result.restore": "1086f31b9583db57",
    },
    "shared/dashboard.py's JSON-only DefaultSerializer": {
        "serializers.DefaultSerializer": "20eb8cc336a5d05f",
        "serializers.resolve_serializer": "b7e9d7f07791306c",
    },
}
NAMESPACE: dict[str, Any] = {
    "Job": Job, "BaseWorker": BaseWorker, "SimpleWorker": SimpleWorker, "Execution": Execution,
    "Result": Result, "executions": executions, "serializers": serializers,
    "worker_registration": worker_registration,
}


def rq_source(dotted: str) -> str:
    owner, _, name = dotted.partition(".")
    found = inspect.getattr_static(NAMESPACE[owner], name)
    found = getattr(found, "fget", None) or getattr(found, "__func__", None) or found  # property, classmethod
    return inspect.getsource(found)


def fingerprint(dotted: str) -> str:
    return hashlib.sha256(rq_source(dotted).encode()).hexdigest()[:16]


def test_the_installed_rq_is_the_checked_one() -> None:
    assert rq.__version__ == CHECKED_VERSION, (
        f"RQ {rq.__version__} is installed, shared/rq_internals.py was checked against {CHECKED_VERSION}: "
        "the fingerprint tests below say what changed"
    )


@pytest.mark.parametrize("ours", FINGERPRINTS)
def test_rq_source_we_rely_on_is_unchanged(ours: str) -> None:
    changed = {
        rq_name: actual
        for rq_name, recorded in FINGERPRINTS[ours].items()
        if (actual := fingerprint(rq_name)) != recorded
    }
    assert not changed, "; ".join(
        f"RQ changed {rq_name}: re-check {ours} (shared/rq_internals.py) against it, "
        f"then update its fingerprint in {__name__} to {actual!r}"
        for rq_name, actual in changed.items()
    )


def test_job_stack_and_execute_are_what_workerjob_perform_uses() -> None:
    assert callable(_job_stack.push) and callable(_job_stack.pop), "rq.job._job_stack lost push/pop"
    assert list(inspect.signature(Job._execute).parameters) == ["self"], "Job._execute takes arguments now"
    job = Job.create(print, connection=fakeredis.FakeRedis())
    assert "_result" in vars(job), "Job no longer keeps its return value in _result"


def test_handle_success_takes_the_execution_arguments_we_pass() -> None:
    parameters = inspect.signature(Job._handle_success).parameters
    passed = ["result_ttl", "pipeline", "worker_name", "execution_id", "execution_started_at",
              "execution_ended_at"]  # fmt: skip
    missing = [name for name in passed if name not in parameters]
    assert not missing, f"Job._handle_success no longer takes {missing}"


def test_job_data_is_held_in_underscore_data() -> None:
    job = UncompressedJob.create(print, args=("x",), connection=fakeredis.FakeRedis())
    assert job.data and job._data is job.data, "Job.data no longer returns Job._data once it is set"


def test_uncompressed_job_saves_plain_data_that_plain_rq_reads() -> None:
    connection = fakeredis.FakeRedis()
    kwargs = {"sep": "x" * 200}
    job = UncompressedJob.create(print, kwargs=kwargs, connection=connection, serializer=JSONSerializer)
    job.save()
    assert connection.hget(job.key, "data") == job.data, "UncompressedJob's data was compressed after all"
    assert Job.fetch(job.id, connection=connection, serializer=JSONSerializer).kwargs == kwargs


@pytest.mark.parametrize("option", RQ_OPTION_FIELDS)
def test_job_hash_names_each_rq_option_as_recorded(option: str) -> None:
    """WorkerJob.restore finds a job's RQ options by these field names: RQ must still write them."""
    asks: Callable[[], dict[str, Any]] = {
        "a success callback": lambda: {"on_success": Callback(print)},
        "a failure callback": lambda: {"on_failure": Callback(print)},
        "a stopped callback": lambda: {"on_stopped": Callback(print)},
        "webhooks": lambda: {"webhooks": [rq.Webhook("http://127.0.0.1:9/hook", "finished")]},
        "retries": lambda: {"retry": Retry(max=2)},
        "repeats": lambda: {"repeat": Repeat(times=2)},
    }[option]
    connection = fakeredis.FakeRedis()
    queue = Queue("q", connection=connection, serializer=JSONSerializer, job_class=WorkerJob)
    job = queue.create_job(print, **asks())
    job.save()
    saved = {key.decode() for key in connection.hkeys(job.key)}
    missing = [name for name in RQ_OPTION_FIELDS[option] if name not in saved]
    assert not missing, f"RQ no longer writes {missing} for {option}: update RQ_OPTION_FIELDS"
    restored = WorkerJob.fetch(job.id, connection=connection, serializer=JSONSerializer)
    assert restored.requested_options == (option,)


def worker(connection: fakeredis.FakeRedis) -> TunedSimpleWorker:
    queue = Queue("q", connection=connection, serializer=JSONSerializer)
    return TunedSimpleWorker([queue], connection=connection, serializer=JSONSerializer, heartbeat_s=2)


WORKER_ATTRIBUTES = [
    "_state", "_stop_requested", "_shutdown_requested_date", "last_heartbeat", "pubsub_thread", "execution",
]  # fmt: skip


@pytest.mark.parametrize("name", WORKER_ATTRIBUTES)
def test_worker_attribute_we_read_exists(name: str) -> None:
    assert name in vars(worker(fakeredis.FakeRedis())), f"RQ's worker constructor no longer sets {name}"


def test_worker_methods_we_call_take_our_arguments() -> None:
    calls: dict[Callable[..., Any], list[str]] = {
        BaseWorker.increment_successful_job_count: ["pipeline"],
        BaseWorker.increment_total_working_time: ["job_execution_time", "pipeline"],
        BaseWorker.cleanup_execution: ["job", "pipeline"],
        BaseWorker.set_current_job_id: ["job_id", "pipeline"],
        BaseWorker.set_current_job_working_time: ["current_job_working_time", "pipeline"],
        BaseWorker.handle_job_failure: ["job", "queue", "started_job_registry", "exc_string"],
        Job.heartbeat: ["timestamp", "ttl", "pipeline"],
        Job.prepare_for_execution: ["worker_name", "pipeline"],
        Job.cleanup: ["ttl", "pipeline", "remove_from_queue"],
        Execution.create: ["job", "ttl", "pipeline", "worker_name"],
    }
    changed = [f"{method.__qualname__}{inspect.signature(method)}" for method, names in calls.items()
               if any(name not in inspect.signature(method).parameters for name in names)]
    assert not changed, f"RQ changed the arguments of {changed}: re-check shared/rq_internals.py"


@pytest.mark.parametrize("state", [WorkerStatus.IDLE, WorkerStatus.BUSY])
def test_stop_requested_reads_what_request_stop_sets(state: str) -> None:
    tuned = worker(fakeredis.FakeRedis())
    tuned.register_birth()
    tuned.set_state(state)
    assert not tuned.stop_requested()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:  # RQ's handler for the first signal: stop now (idle) or after the job (busy)
        with suppress(StopRequested):
            tuned.request_stop(signal.SIGTERM, None)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert tuned.stop_requested(), "RQ's request_stop no longer sets what stop_requested reads"


def test_workers_key_is_the_set_rq_registers_a_worker_in() -> None:
    connection = fakeredis.FakeRedis()
    tuned = worker(connection)
    tuned.register_birth()
    assert connection.smembers(workers_key("q")) == {tuned.key.encode()}, (
        "RQ no longer keeps a queue's worker keys in workers_key(queue): re-check shared/worker_liveness.py"
    )
