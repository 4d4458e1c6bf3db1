"""testbed.soak's judgement of Redis memory: flat once results expire, growing, or too short to tell."""

from testbed.soak import redis_memory_check

TTL = 30.0


def samples(levels: list[float]) -> list[tuple[float, int]]:
    return [(5.0 * index, int(level * 2**20)) for index, level in enumerate(levels)]


def test_memory_that_levels_off_after_one_ttl_is_flat() -> None:
    check = redis_memory_check(samples([1, 5, 9, 13, 16, 17, 18, 18, 17, 18, 18, 17, 18, 18, 18]), TTL, 0.1)
    assert check is not None and check.ok


def test_memory_still_growing_after_the_ttl_fails() -> None:
    check = redis_memory_check(samples([1 + 3 * i for i in range(15)]), TTL, 0.1)
    assert check is not None and not check.ok


def test_a_run_shorter_than_two_ttls_gives_no_verdict() -> None:
    assert redis_memory_check(samples([1, 5, 9, 13, 16, 17, 18, 18]), TTL, 0.1) is None
