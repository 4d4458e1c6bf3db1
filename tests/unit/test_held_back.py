"""Which samples measure a site model: a fifth of those labelled from outside, never the service's own."""

from __future__ import annotations

from shared.sites import Sample
from trainer.site_training import HELD_BACK_ONE_IN, held_back


def _samples(source: str, count: int = 1000) -> list[Sample]:
    return [Sample(f"{1764000000000 + index}-0", b"", "0427", source) for index in range(count)]


def test_a_fifth_of_uploads_and_feedback_is_held_back() -> None:
    for source in ("upload", "feedback"):
        share = sum(map(held_back, _samples(source))) / 1000
        assert abs(share - 1 / HELD_BACK_ONE_IN) < 0.05, (source, share)


def test_self_labels_only_train() -> None:
    assert not any(map(held_back, _samples("self")))
