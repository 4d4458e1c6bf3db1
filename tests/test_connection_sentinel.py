"""Clients made from a ``redis+sentinel://`` URL (shared/connection.py) when the master is demoted but alive.

A killed master closes its sockets, so clients reconnect and ask the Sentinels at once. A master demoted
by ``SENTINEL FAILOVER`` (maintenance) keeps answering: Sentinel only turns it into a replica about 10 s
later, and meanwhile a client still connected to it would write where nobody reads. Real servers on
loopback free ports: two Redis and one Sentinel (quorum 1), stopped by pid.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.connection import MASTER_CHECK_EVERY_S, connect, connect_async
from shared.embedded_redis import redis_server_binary
from shared.settings import Settings
from testbed.support import free_port, wait_until

pytestmark = pytest.mark.slow  # starts real processes

SERVICE = "unit"


class Pair:
    """Redis ``a`` (master) and ``b`` (its replica), watched by one Sentinel."""

    def __init__(self, tmp: Path) -> None:
        self.ports = {"a": free_port(), "b": free_port()}
        self.sentinel_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        for name, port in self.ports.items():
            args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(tmp)]  # fmt: skip
            if name == "b":
                args += ["--replicaof", "127.0.0.1", str(self.ports["a"])]
            self.processes.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
        config = tmp / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {tmp}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.ports['a']} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\nsentinel failover-timeout {SERVICE} 3000\n"
        )
        self.processes.append(
            subprocess.Popen([redis_server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL)
        )
        wait_until(self.replica_known, 20, "the Sentinel to see a replica in sync")

    @property
    def settings(self) -> Settings:
        return Settings(REDIS_URL=f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0")

    def server(self, name: str) -> Redis:
        return Redis(port=self.ports[name], socket_timeout=5)

    def sentinel(self) -> Redis:
        return Redis(port=self.sentinel_port, socket_timeout=2)

    def master(self) -> str:
        with self.sentinel() as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return next(name for name, p in self.ports.items() if p == int(port))

    def replica_known(self) -> bool:
        with self.sentinel() as sentinel:
            replicas = sentinel.sentinel_slaves(SERVICE)
        return any(r["flags"] == "slave" and r["master-link-status"] == "ok" for r in replicas)

    def failover(self) -> str:
        """``SENTINEL FAILOVER``; returns the new master once the Sentinel names it."""
        old = self.master()
        with self.sentinel() as sentinel:
            assert sentinel.sentinel_failover(SERVICE)
        wait_until(lambda: self.master() != old, 15, "the Sentinel to promote the replica")
        return self.master()

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(10)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    running = Pair(tmp_path)
    yield running
    running.close()


def test_sync_client_follows_a_demoted_master_that_still_answers(pair: Pair) -> None:
    with connect(pair.settings) as client:
        client.set("before", 1)
        assert pair.server("a").get("before") == b"1"
        new = pair.failover()
        with pair.server("a") as old:  # the old master still thinks it is one (Sentinel waits ~10 s)
            assert old.info("replication")["role"] == "master"
        time.sleep(MASTER_CHECK_EVERY_S + 0.2)
        client.set("after", 1)
        with pair.server(new) as promoted:
            assert promoted.get("after") == b"1", "the write went to the demoted master"


def test_async_client_follows_a_demoted_master_that_still_answers(pair: Pair) -> None:
    import asyncio

    async def scenario() -> None:
        client = connect_async(pair.settings)
        try:
            await client.set("before", 1)
            new = await asyncio.to_thread(pair.failover)
            await asyncio.sleep(MASTER_CHECK_EVERY_S + 0.2)
            await client.set("after", 1)
            with pair.server(new) as promoted:
                assert promoted.get("after") == b"1", "the write went to the demoted master"
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_blocked_read_on_a_master_turned_replica_is_a_connection_error(pair: Pair) -> None:
    """Redis answers a client blocked on a server that turns replica with "-UNBLOCKED": for the API and
    the workers that is the master going away (503, reconnect), not a reply error (500, worker loop ends)."""
    errors: list[BaseException] = []
    with connect(pair.settings, blocking_s=10) as client:
        client.ping()

        def block() -> None:
            try:
                client.blmove("nothing", "nowhere", 10)
            except BaseException as error:  # noqa: BLE001 - the test looks at which error it was
                errors.append(error)

        waiter = threading.Thread(target=block)
        waiter.start()
        wait_until(lambda: pair.server("a").info("clients")["blocked_clients"] == 1, 5, "the blocked read")
        pair.server("a").replicaof("127.0.0.1", pair.ports["b"])
        waiter.join(10)
    assert len(errors) == 1 and isinstance(errors[0], RedisConnectionError), errors
