"""What a test needs but cannot make itself (the team's corpus, network namespaces): a clear skip on a
developer's machine, a failure where every test must run, under CI (``CI=true``) or as root (CI runs as
root), so that a green CI never hides a test that did not run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from testbed import netns
from testbed.support import CORPUS, CorpusMissing
from testbed.support import corpus_images as _corpus_images


def must_run() -> bool:
    """True under CI or as root: there nothing a test needs may be missing."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false") or os.geteuid() == 0


def unavailable(reason: str) -> NoReturn:
    """Skip (the test, or the whole module at import) — or fail, where every test must run."""
    if must_run():
        pytest.fail(f"{reason} (a skip is not allowed under CI or as root)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def corpus_images(folder: str, count: int) -> list[tuple[str, str]]:
    """:func:`testbed.support.corpus_images`, or :func:`unavailable` when the corpus is missing."""
    try:
        return _corpus_images(folder, count)
    except CorpusMissing as missing:
        unavailable(str(missing))


def corpus_folder(folder: str) -> Path:
    """A corpus folder, or :func:`unavailable` when it is missing."""
    path = CORPUS / folder
    if not any(path.glob("*.png")):
        unavailable(f"no corpus images in {path}: is ../shared beside the project?")
    return path


@contextmanager
def namespace_hosts(test: str) -> Iterator[netns.Hosts]:
    """Simulated hosts for ``test`` (stale ones of killed runs removed first), or :func:`unavailable`;
    on leaving, every namespace and link is removed, and one left behind fails the test."""
    reason = netns.unavailable_reason()
    if reason:
        unavailable(f"{test} needs network namespaces: {reason}")
    netns.remove_stale()
    hosts = netns.Hosts()
    try:
        yield hosts
    finally:
        try:
            hosts.close()
        finally:
            leftovers = hosts.leftovers()
            assert not leftovers, f"namespaces or veths left behind: {leftovers}"
