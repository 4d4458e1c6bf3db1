"""The trainer process: trains the sites that asked for it or that have enough new samples, one at a time.

It runs beside the workers (PM2 app ``trainer``), at a lower CPU priority, never on a request's path.
A site is trained under a lease in Redis: a trainer that dies mid-run loses the lease after
``LEASE_TTL_S``, and the site is trained again (no sample is lost: they stay in Redis throughout).
"""

from __future__ import annotations

import json
import logging
import os
import socket

from redis import Redis

from shared.settings import Settings
from shared.sites import SiteStore
from trainer.site_training import labelled_from_outside, train_site
from worker.recognizer import Recognizer

log = logging.getLogger("captchaocr.trainer")
LEASE_TTL_S = 60
# Samples labelled from outside (uploads, feedback): fewer cannot hold back enough to measure a model.
MIN_TRAIN_SAMPLES = 20


class Trainer:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.settings = settings
        self.store = SiteStore(redis, settings.site_max_samples)
        self.generic = Recognizer.from_settings(settings)
        self.owner = f"{socket.gethostname()}.{os.getpid()}"

    def step(self) -> str | None:
        """Train the next site that is due, if any; returns its name."""
        site = self.store.next_requested(self.settings.learn_scan_interval_s) or self.due_site()
        if site is not None:
            self.train(site)
        return site

    def due_site(self) -> str | None:
        """A site left "running" by a dead trainer, or one with enough samples and enough new ones since its
        last training (a failed one too: the new samples may be what it lacked)."""
        for site in self.store.sites():
            state = self.store.state(site)
            if self.store.leased(site):
                continue
            if state["training"] in ("running", "queued"):
                return site
            counts = self.store.counts(site)
            new = counts["added"] - state["trained_added"]
            if (self.store.sample_count(site) >= self.settings.learn_min_samples
                    and new >= self.settings.learn_retrain_after):
                return site
        return None

    def train(self, site: str) -> None:
        if not self.store.take_lease(site, self.owner, LEASE_TTL_S):
            return  # another trainer has it
        added = self.store.counts(site)["added"]
        try:
            samples = self.store.samples(site)
            outside = sum(map(labelled_from_outside, samples))
            if outside < MIN_TRAIN_SAMPLES:
                self.store.set_state(site, "failed", f"{outside} samples from uploads or feedback: at least "
                                     f"{MIN_TRAIN_SAMPLES} are needed to measure a model (the service's own "
                                     "answers only train)", trained_added=added)
                return
            self.store.set_state(site, "running")
            log.info("training %s on %d samples", site, len(samples))
            outcome = train_site(samples, self.store.model(site), self.settings, self.generic,
                                 keep_alive=lambda: self.store.renew_lease(site, LEASE_TTL_S))
            version = self.store.promote(site, outcome.onnx, outcome.meta) if outcome.promote else None
            summary = {key: outcome.meta[key] for key in ("trained_at", "samples_used", "train_seconds",
                                                         "validation", "generic_validation")}
            self.store.set_state(site, "idle", trained_added=added,
                                 last=json.dumps({**summary, "promoted": version}))
            log.info("trained %s: %s, promoted as version %s", site, outcome.meta["validation"], version)
        except (KeyboardInterrupt, SystemExit):
            self.store.request_training(site)  # stopped mid-run: train it again after the restart
            raise
        except Exception as error:  # noqa: BLE001 - one site's failure must not stop the trainer
            log.exception("training %s failed", site)
            self.store.set_state(site, "failed", f"{type(error).__name__}: {error}", trained_added=added)
        finally:
            self.store.release_lease(site)

