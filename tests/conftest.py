from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.support import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, one real RQ worker and the real API over HTTP, shared by the service tests."""
    running = Stack(tmp_path_factory.mktemp("stack"), workers=1)
    yield running
    running.close()
