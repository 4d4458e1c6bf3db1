"""Redis clients for every process: one place that knows the URL forms and the timeouts.

``REDIS_URL`` is either a plain ``redis://`` (or ``rediss://``, ``unix://``) URL, or a Sentinel URL:

    redis+sentinel://[:password@]host1:26379,host2:26379/<service name>[/<db>]

With Sentinel the client asks the sentinels for the current master of ``<service name>`` and asks again
when the master is lost, so a failover needs no restart. The password (if any) is the data servers';
the sentinels themselves are asked without one. A master demoted while alive (``SENTINEL FAILOVER``)
keeps answering until Sentinel turns it into a replica about 10 s later, so the client also asks the
sentinels again every :data:`MASTER_CHECK_EVERY_S` and leaves a master they no longer name.

Every command has a read timeout (``redis_timeout_s``): a Redis that stops answering is noticed in
seconds, never waited on forever. Blocking commands (``XREAD BLOCK``, RQ's dequeue) must block for less
than that, or ask for a client with ``blocking_s`` more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.exceptions import ConnectionError, ResponseError, TimeoutError
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from shared.settings import Settings

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
# How often a Sentinel client asks which server is the master (one round trip to a sentinel, taken by
# the next command after the interval): how long it may keep writing to a demoted master.
MASTER_CHECK_EVERY_S = 1.0
# Redis's reply to a client blocked (BLMOVE, XREAD) on a master that turns into a replica.
_UNBLOCKED = "UNBLOCKED"


@dataclass(frozen=True)
class SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        parts = urlsplit(url)
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(f"not a {SENTINEL_SCHEME}:// URL: {url!r}")
        credentials, _, hosts = parts.netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        sentinels = []
        for host in hosts.split(","):
            address = urlsplit(f"//{host.strip()}")  # handles "name", "name:port" and "[::1]:port"
            if not address.hostname:
                raise ValueError(f"no sentinel host in {url!r}")
            sentinels.append((address.hostname, address.port or DEFAULT_SENTINEL_PORT))
        path = [part for part in parts.path.split("/") if part]
        if not path:
            raise ValueError(f"a Sentinel URL names its service: {SENTINEL_SCHEME}://host:26379/<service>")
        return cls(
            sentinels=tuple(sentinels),
            service=unquote(path[0]),
            db=int(path[1]) if len(path) > 1 else 0,
            password=unquote(password) if password else None,
            username=unquote(username) if username else None,
        )


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def _demoted(error: ResponseError) -> ConnectionError:
    """A blocked command's "-UNBLOCKED" reply as what it means for the caller: the master went away (the
    API answers 503, RQ's worker reconnects), not a bad command. The connection is dropped by the caller."""
    return ConnectionError(f"the master became a replica: {error}")


class _MasterConnection(SentinelManagedConnection):
    """redis-py turns READONLY from a demoted master into a ConnectionError; this does the same for
    UNBLOCKED."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except ResponseError as error:
            if not str(error).startswith(_UNBLOCKED):
                raise
            self.disconnect()
            raise _demoted(error) from error


class _MasterPool(SentinelConnectionPool):
    """Asks the sentinels for the master again when a connection is taken after
    :data:`MASTER_CHECK_EVERY_S`: redis-py asks only when connecting, so it would stay on a demoted
    master that still answers. A change closes the idle connections; busy ones are dropped on release."""

    _checked_at = float("-inf")

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.master_address is not None and time.monotonic() - self._checked_at >= MASTER_CHECK_EVERY_S:
            self._checked_at = time.monotonic()
            try:
                self.get_master_address()
            except (ConnectionError, TimeoutError):
                pass  # no sentinel answers now: the command itself tells whether the master does
        return super().get_connection(*args, **kwargs)


class _AsyncMasterConnection(AsyncSentinelConnection):
    """:class:`_MasterConnection` for asyncio."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ResponseError as error:
            if not str(error).startswith(_UNBLOCKED):
                raise
            await self.disconnect()
            raise _demoted(error) from error


class _AsyncMasterPool(AsyncSentinelPool):
    """:class:`_MasterPool` for asyncio, whose pool takes back a connection to a former master as it is
    (the synchronous one drops it), hence the check on release."""

    _checked_at = float("-inf")

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.master_address is not None and time.monotonic() - self._checked_at >= MASTER_CHECK_EVERY_S:
            self._checked_at = time.monotonic()
            try:
                await self.get_master_address()
            except (ConnectionError, TimeoutError):
                pass  # no sentinel answers now: the command itself tells whether the master does
        return await super().get_connection(*args, **kwargs)

    async def release(self, connection: Any) -> None:
        if self.master_address is not None and (connection.host, connection.port) != self.master_address:
            await connection.disconnect()
        await super().release(connection)


def _timeouts(settings: Settings, blocking_s: float) -> dict[str, float]:
    return {
        "socket_connect_timeout": settings.redis_timeout_s,
        "socket_timeout": settings.redis_timeout_s + blocking_s,
    }


def connect(settings: Settings, blocking_s: float = 0.0) -> Redis:
    """A synchronous client of the configured Redis (or of the Sentinel master), failing fast when it is
    away. ``blocking_s``: the longest blocking command this client will send."""
    url = settings.effective_redis_url
    timeouts = _timeouts(settings, blocking_s)
    if not is_sentinel_url(url):
        return Redis.from_url(url, health_check_interval=30, **timeouts)
    parsed = SentinelUrl.parse(url)
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=_timeouts(settings, 0), **timeouts)
    return sentinel.master_for(
        parsed.service, redis_class=Redis, connection_pool_class=_MasterPool,
        connection_class=_MasterConnection, db=parsed.db, password=parsed.password, username=parsed.username,
        health_check_interval=30,
    )  # fmt: skip


def connect_async(settings: Settings, blocking_s: float = 0.0) -> AsyncRedis:
    """The asyncio client of the same Redis, for the API's waits (see :func:`connect`)."""
    url = settings.effective_redis_url
    timeouts = _timeouts(settings, blocking_s)
    if not is_sentinel_url(url):
        return AsyncRedis.from_url(url, **timeouts)
    parsed = SentinelUrl.parse(url)
    sentinel = AsyncSentinel(list(parsed.sentinels), sentinel_kwargs=_timeouts(settings, 0), **timeouts)
    return sentinel.master_for(
        parsed.service, redis_class=AsyncRedis, connection_pool_class=_AsyncMasterPool,
        connection_class=_AsyncMasterConnection, db=parsed.db, password=parsed.password,
        username=parsed.username,
    )
