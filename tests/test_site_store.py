"""The site store against a real Redis: samples capped oldest-out with exact counts, models, leases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import Image

from shared.sites import SiteStore, valid_site
from testbed.support import RedisServer
from tests.fixed_site_model import fixed_model, frame
from worker.site_models import SiteModels


@pytest.fixture()
def store() -> Iterator[SiteStore]:
    server = RedisServer().start()
    try:
        yield SiteStore(server.client(), max_samples=5)
    finally:
        server.stop()


def test_samples_are_capped_oldest_first_and_counted_by_source(store: SiteStore) -> None:
    for index in range(4):
        store.add_sample("a.example", f"image{index}".encode(), f"{index:04d}", "upload")
    for index in range(4, 7):
        store.add_sample("a.example", f"image{index}".encode(), f"{index:04d}", "self")
    samples = store.samples("a.example")
    assert [s.text for s in samples] == ["0002", "0003", "0004", "0005", "0006"]
    assert samples[0].image == b"image2" and samples[-1].source == "self"
    assert store.counts("a.example") == {"added": 7, "upload": 2, "feedback": 0, "self": 3}
    assert store.sites() == ["a.example"]


def test_an_image_is_kept_once_and_a_persons_label_corrects_the_services(store: SiteStore) -> None:
    assert store.add_sample("a.example", b"img", "1111", "self") == (True, 1)
    assert store.add_sample("a.example", b"img", "1111", "self") == (False, 1)  # read twice
    assert store.add_sample("a.example", b"img", "2222", "self") == (False, 1)  # never over a kept label
    assert store.add_sample("a.example", b"img", "1111", "feedback") == (True, 1)  # confirmed by a person
    assert store.add_sample("a.example", b"img", "1111", "upload") == (False, 1)
    assert store.add_sample("a.example", b"img", "7777", "feedback") == (True, 1)  # corrected
    assert [(s.text, s.source) for s in store.samples("a.example")] == [("7777", "feedback")]
    assert store.counts("a.example") == {"added": 3, "upload": 0, "feedback": 1, "self": 0}
    assert store.add_sample("b.example", b"img", "1111", "self") == (True, 1)  # sites apart


def test_an_image_dropped_by_the_cap_may_come_back(store: SiteStore) -> None:
    for index in range(6):
        store.add_sample("a.example", f"image{index}".encode(), f"{index:04d}", "upload")
    assert store.redis.hlen("captchaocr:site:a.example:digests") == 5  # the index stays within the cap
    assert store.add_sample("a.example", b"image0", "0000", "upload") == (True, 5)
    assert store.add_sample("a.example", b"image5", "0005", "upload") == (False, 5)
    assert store.delete("a.example")
    assert store.add_sample("a.example", b"image5", "0005", "upload") == (True, 1)


def test_sites_are_kept_apart_and_deleted_whole(store: SiteStore) -> None:
    store.add_sample("a.example", b"x", "1", "upload")
    store.add_sample("b.example", b"y", "2", "feedback")
    store.promote("a.example", b"onnx", {"charset": "0123456789"})
    assert store.delete("a.example")
    assert store.sites() == ["b.example"]
    assert store.samples("a.example") == [] and store.model("a.example") is None
    assert store.counts("a.example")["added"] == 0
    assert not store.delete("a.example")


def test_each_promotion_gets_the_next_version(store: SiteStore) -> None:
    assert store.model_version("s") == 0
    assert store.promote("s", b"one", {"n": 1}) == 1
    assert store.promote("s", b"two", {"n": 2}) == 2
    model = store.model("s")
    assert model is not None and (model.version, model.onnx, model.meta) == (2, b"two", {"n": 2})


def test_a_site_deleted_and_learned_again_gets_a_version_no_worker_has_held(store: SiteStore) -> None:
    """A worker swaps a site's model when its version changes: had the relearned site's first model
    taken version 1 again, a worker that held the deleted site's version 1 would keep reading with it."""
    worker = SiteModels(store, check_every_s=0)
    image = Image.new("RGB", (120, 40), "white")
    store.promote("s", *fixed_model([frame(_7=1.0), frame(_2=1.0)], "27"))
    before = worker.reader("s")
    assert before is not None and before.read(image).text == "72"
    assert store.delete("s")
    assert store.promote("s", *fixed_model([frame(_2=1.0), frame(_7=1.0)], "27")) == 2
    after = worker.reader("s")
    assert after is not None and after.read(image).text == "27"


def test_one_trainer_holds_a_site_at_a_time(store: SiteStore) -> None:
    assert store.take_lease("s", "trainer-1", ttl_s=30)
    assert not store.take_lease("s", "trainer-2", ttl_s=30)
    store.release_lease("s")
    assert store.take_lease("s", "trainer-2", ttl_s=30)


def test_training_requests_are_queued_once(store: SiteStore) -> None:
    store.request_training("s")
    store.request_training("s")
    assert store.state("s")["training"] == "queued"
    assert store.next_requested(0.1) == "s"
    assert store.next_requested(0.1) is None


@pytest.mark.parametrize("site", ["example.com", "shop:login", "a-b_c.9", "x" * 100])
def test_site_names_that_are_accepted(site: str) -> None:
    assert valid_site(site)


@pytest.mark.parametrize("site", ["", "x" * 101, "a b", "a/b", "ä.example", "a\nb"])
def test_site_names_that_are_refused(site: str) -> None:
    assert not valid_site(site)
