"""The site models a worker holds: loaded from Redis on first use, swapped when the trainer promotes a
newer one, and forgotten least-recently-used first.

A worker asks Redis for a site's model version at most every ``site_model_check_s`` (one small read),
so a promoted model reaches every worker, on any machine, within seconds and without a restart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from shared.sites import SiteStore
from worker.site_model import SiteModelReader

MAX_CACHED = 32  # site models a worker keeps loaded (about 1 MB and 2 MB of RSS each)


@dataclass
class _Cached:
    version: int
    reader: SiteModelReader | None
    checked_at: float


class SiteModels:
    def __init__(self, store: SiteStore, check_every_s: float, ort_threads: int = 1) -> None:
        self.store = store
        self.check_every_s = check_every_s
        self.ort_threads = ort_threads
        self.cached: OrderedDict[str, _Cached] = OrderedDict()

    def reader(self, site: str) -> SiteModelReader | None:
        """The site's current model, or None when it has none (yet)."""
        now = time.monotonic()
        entry = self.cached.get(site)
        if entry is None or now - entry.checked_at >= self.check_every_s:
            version = self.store.model_version(site)
            if entry is None or version != entry.version:
                model = self.store.model(site) if version else None
                reader = SiteModelReader(model.onnx, model.meta, self.ort_threads) if model else None
                entry = _Cached(model.version if model else 0, reader, now)
            entry.checked_at = now
            self.cached[site] = entry
        self.cached.move_to_end(site)
        while len(self.cached) > MAX_CACHED:
            self.cached.popitem(last=False)
        return entry.reader
