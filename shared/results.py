"""Wait for a job's result in blocks of at most :data:`RESULT_BLOCK_S`, however long the wait.

Every Redis client has a read timeout (``redis_timeout_s`` plus the ``blocking_s`` it was made with, see
shared/connection.py; redis-py's own default is 5 s). A wait that blocked in one command for all its time
would end as a false "Redis unreachable" once it outlasted that timeout; short blocks let a wait last as
long as the caller asks while a dead Redis is still noticed within about ``redis_timeout_s``.
"""

from __future__ import annotations

import time

from rq.job import Job
from rq.results import Result

# The longest one XREAD blocks; clients that wait for results are made with this ``blocking_s``.
RESULT_BLOCK_S = 1.0


def block_ms(deadline: float) -> int:
    """How long the next XREAD may block: the time left to ``deadline`` (monotonic), at most one block;
    0 when the deadline has passed (XREAD's 0 would mean "forever": callers stop instead)."""
    remaining_ms = int((deadline - time.monotonic()) * 1000)
    return max(0, min(remaining_ms, int(RESULT_BLOCK_S * 1000)))


def wait_for_result(job: Job, timeout_s: float) -> Result | None:
    """The job's first result, or None if none arrives within ``timeout_s`` (fractions count)."""
    deadline = time.monotonic() + timeout_s
    key = Result.get_key(job.id)
    while block := block_ms(deadline):
        response = job.connection.xread({key: "0-0"}, count=1, block=block)
        if response:
            result_id, payload = response[0][1][0]
            return Result.restore(
                job.id, result_id.decode(), payload, connection=job.connection, serializer=job.serializer
            )
    return None
