"""A drawn task id that names a live task is drawn again: two tasks never share an RQ job."""

from __future__ import annotations

import fakeredis
import pytest
from rq.job import Job

from api.protocols.anticaptcha import tasks as anticaptcha_tasks
from api.protocols.anticaptcha.tasks import MAX_TASK_ID, new_task_id, task_job_id


def test_a_drawn_id_of_a_live_task_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    redis = fakeredis.FakeRedis()
    redis.hset(Job.key_for(task_job_id(7)), "status", "queued")
    draws = iter([6, 6, 41])  # randbelow(MAX_TASK_ID) + 1: task 7 twice (taken), then task 42
    monkeypatch.setattr(anticaptcha_tasks.secrets, "randbelow", lambda bound: next(draws))
    assert new_task_id(redis) == 42


def test_ids_span_what_json_clients_read_exactly() -> None:
    redis = fakeredis.FakeRedis()
    assert MAX_TASK_ID == 2**53 - 1
    assert all(1 <= new_task_id(redis) <= MAX_TASK_ID for _ in range(100))
