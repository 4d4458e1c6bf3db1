"""Which workers are alive, for the health check and the API's collector.

RQ keeps a worker in its per-queue set until a maintenance pass finds the worker's key gone, and the key
lives minutes: after a SIGKILL (and a Redis restored from a snapshot) dead workers went on being counted.
Here a worker's key lives :data:`MISSED_BEATS` heartbeats (``worker_heartbeat_s``; while it runs a job,
its job timeout and a little), and only members whose key still has its expiry count.
A key without one is no live worker's: every write of a live worker's key sets an expiry.
"""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

MISSED_BEATS = 3

# One round trip whatever the number of workers; reads only (the set is RQ's to clean).
_COUNT_LIVE = """
local alive = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if redis.call('PTTL', key) > 0 then alive = alive + 1 end
end
return alive
"""


def registration_ttl_s(heartbeat_s: int) -> int:
    """How long an idle worker's key lives after its last heartbeat."""
    return MISSED_BEATS * heartbeat_s


async def count_live_workers(redis: AsyncRedis, registered_key: str) -> int:
    """Members of ``registered_key`` (:func:`shared.rq_internals.workers_key`) whose registration has not
    expired; raises what Redis raises."""
    return int(await redis.eval(_COUNT_LIVE, 1, registered_key))


def count_live_workers_now(redis: Redis, registered_key: str) -> int:
    """:func:`count_live_workers` for a synchronous client (Prometheus collects in a thread)."""
    return int(redis.eval(_COUNT_LIVE, 1, registered_key))
