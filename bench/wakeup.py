"""Hand-off benchmark: what one process waking another costs on this machine.

At one client the service hands a request from process to process (client, API, Redis, worker, Redis,
API, client), each one idle while the model runs in another; the floor has no hand-off at all. On a
virtual machine an idle process can take far longer to wake than a busy one answers, and that cost is
the machine's, not the code's. This prints, against a private Redis:
  - PING round trips back to back, and after the client slept 1 and 10 ms (the server idles too);
  - RPUSH until another process blocked in BLMOVE returns with the item, as a worker waits for a job.

    python -m bench.wakeup --count 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

from redis import Redis

from testbed.support import RedisServer

IDLE_GAPS_S = (0.0, 0.001, 0.01)
SPACING_S = 0.01  # between pushes: the blocked process is idle as long as a worker during a model read


def ping_after_idle(connection: Redis, gap_s: float, count: int) -> float:
    """Median PING round trip in seconds when the client sleeps ``gap_s`` before each."""
    latencies = []
    for _ in range(count):
        if gap_s:
            time.sleep(gap_s)
        started = time.perf_counter()
        connection.ping()
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


def _blocked_popper(url: str, count: int, results: multiprocessing.Queue) -> None:
    connection = Redis.from_url(url)
    delays = []
    for _ in range(count):
        pushed_at = connection.blmove("wakeup:src", "wakeup:dst", 10)
        delays.append(time.time() - float(pushed_at))
    results.put(delays)


def push_to_blocked_pop(url: str, count: int) -> float:
    """Median seconds from RPUSH to the return of another process's BLMOVE."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    popper = multiprocessing.Process(target=_blocked_popper, args=(url, count, results))
    popper.start()
    connection = Redis.from_url(url)
    time.sleep(0.5)
    for _ in range(count):
        connection.rpush("wakeup:src", repr(time.time()))
        time.sleep(SPACING_S)
    delays = results.get(timeout=60)
    popper.join()
    return statistics.median(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="samples per figure")
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        connection = server.client()
        connection.ping()
        print("| hand-off | median µs |\n|---|---|")
        for gap_s in IDLE_GAPS_S:
            median_s = ping_after_idle(connection, gap_s, args.count)
            print(f"| PING after {gap_s * 1000:g} ms idle | {median_s * 1e6:.0f} |")
        median_s = push_to_blocked_pop(server.url, args.count)
        print(f"| RPUSH -> a blocked BLMOVE returns (pushes {SPACING_S * 1000:g} ms apart) | {median_s * 1e6:.0f} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
