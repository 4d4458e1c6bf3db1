"""When the trainer trains a site, against a real Redis: a site labelled only by the service's own
answers waits for labels from outside, and a failed site is tried again once new samples arrive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.settings import Settings
from shared.sites import SiteStore
from testbed.support import RedisServer
from trainer.loop import MIN_TRAIN_SAMPLES, Trainer

SETTINGS = Settings(learn_min_samples=MIN_TRAIN_SAMPLES, learn_retrain_after=5)


@pytest.fixture()
def trainer() -> Iterator[Trainer]:
    server = RedisServer().start()
    try:
        yield Trainer(server.client(), SETTINGS)
    finally:
        server.stop()


def _add(store: SiteStore, source: str, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        store.add_sample("shop", f"image {index}".encode(), "0427", source)


def test_self_labels_alone_cannot_measure_a_model_and_new_labels_bring_the_site_back(trainer: Trainer) -> None:
    store = trainer.store
    _add(store, "self", 3 * MIN_TRAIN_SAMPLES)
    _add(store, "upload", MIN_TRAIN_SAMPLES - 1, start=1000)
    assert trainer.due_site() == "shop"
    trainer.train("shop")
    state = store.state("shop")
    assert state["training"] == "failed" and "uploads or feedback" in state["error"], state
    assert store.model("shop") is None
    assert trainer.due_site() is None  # nothing new since it failed

    _add(store, "feedback", SETTINGS.learn_retrain_after, start=2000)
    assert trainer.due_site() == "shop"
