"""Wait for a job's result without a thread: a blocking XREAD on RQ's result stream, in milliseconds.

RQ stores each result as an entry of the stream ``rq:results:<job id>``; ``Job.latest_result(timeout=)``
blocks a thread and counts whole seconds, which is why the API reads the stream itself. Each XREAD blocks
at most ``RESULT_BLOCK_S`` (shared/results.py), so a wait outlasts the client's read timeout.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis as AsyncRedis
from rq.results import Result
from rq.serializers import JSONSerializer

from shared.results import block_ms


async def wait_for_result(connection: AsyncRedis, job_id: str, timeout_s: float) -> Result | None:
    """The job's first result, or None if none arrives within ``timeout_s``."""
    return (await wait_for_results(connection, [job_id], timeout_s)).get(job_id)


async def wait_for_results(connection: AsyncRedis, job_ids: list[str], timeout_s: float) -> dict[str, Result]:
    """The first result of each job that has one within ``timeout_s``, by job id.

    One XREAD watches every pending stream at once (one connection, however many jobs): it returns as
    soon as any of them has a result, and the loop goes on for the rest until the deadline.
    """
    deadline = time.monotonic() + timeout_s
    streams = {Result.get_key(job_id): job_id for job_id in job_ids}
    found: dict[str, Result] = {}
    while len(found) < len(streams) and (block := block_ms(deadline)):
        pending = {key: "0-0" for key, job_id in streams.items() if job_id not in found}
        for stream, entries in await connection.xread(pending, count=1, block=block) or []:
            job_id = streams[stream.decode()]
            result_id, payload = entries[0]
            found[job_id] = Result.restore(
                job_id, result_id.decode(), payload, connection=None, serializer=JSONSerializer
            )
    return found
