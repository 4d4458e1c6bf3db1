"""Redis clients for every process: one place that knows the URL forms and the timeouts.

``REDIS_URL`` is either a plain ``redis://`` (or ``rediss://``, ``unix://``) URL, or a Sentinel URL:

    redis+sentinel://[:password@]host1:26379,host2:26379/<service name>[/<db>]

With Sentinel the client asks the sentinels for the current master of ``<service name>`` and asks again
when the master is lost, so a failover needs no restart. The password (if any) is the data servers';
the sentinels themselves are asked without one.

Every command has a read timeout (``redis_timeout_s``): a Redis that stops answering is noticed in
seconds, never waited on forever. Blocking commands (``XREAD BLOCK``, RQ's dequeue) must block for less
than that, or ask for a client with ``blocking_s`` more.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from shared.settings import Settings

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379


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
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(
        parsed.service, redis_class=Redis, db=parsed.db, password=parsed.password, username=parsed.username,
        health_check_interval=30,
    )


def connect_async(settings: Settings, blocking_s: float = 0.0) -> AsyncRedis:
    """The asyncio client of the same Redis, for the API's waits (see :func:`connect`)."""
    url = settings.effective_redis_url
    timeouts = _timeouts(settings, blocking_s)
    if not is_sentinel_url(url):
        return AsyncRedis.from_url(url, **timeouts)
    parsed = SentinelUrl.parse(url)
    sentinel = AsyncSentinel(list(parsed.sentinels), sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(
        parsed.service, redis_class=AsyncRedis, db=parsed.db, password=parsed.password, username=parsed.username
    )
