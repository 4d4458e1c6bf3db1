"""Wait for a job's result without a thread: a blocking XREAD on RQ's result stream, in milliseconds.

RQ stores each result as an entry of the stream ``rq:results:<job id>``; ``Job.latest_result(timeout=)``
blocks a thread and counts whole seconds, which is why the API reads the stream itself.
"""

from __future__ import annotations

from redis.asyncio import Redis as AsyncRedis
from rq.results import Result
from rq.serializers import JSONSerializer


async def wait_for_result(connection: AsyncRedis, job_id: str, timeout_s: float) -> Result | None:
    """The job's first result, or None if none arrives within ``timeout_s``."""
    key = Result.get_key(job_id)
    response = await connection.xread({key: "0-0"}, count=1, block=max(1, int(timeout_s * 1000)))
    if not response:
        return None
    _stream, entries = response[0]
    result_id, payload = entries[0]
    return Result.restore(job_id, result_id.decode(), payload, connection=None, serializer=JSONSerializer)
