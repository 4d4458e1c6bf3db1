"""When a newly trained site model replaces what the site reads with: more held-back samples right, or
as many right and more of them answered at no lower precision."""

from __future__ import annotations

import pytest

from trainer.site_training import Measured


@pytest.mark.parametrize("new, now, promoted", [
    (Measured(0.90, 0.50, 0.98), Measured(0.85, 0.80, 1.00), True),   # more right wins
    (Measured(0.85, 0.90, 1.00), Measured(0.90, 0.50, 1.00), False),  # fewer right loses, however sure
    (Measured(1.00, 1.00, 1.00), Measured(1.00, 0.88, 1.00), True),   # as many right, more answered
    (Measured(1.00, 1.00, 0.99), Measured(1.00, 0.88, 1.00), False),  # ... but less precise
    (Measured(1.00, 0.88, 1.00), Measured(1.00, 0.88, 1.00), False),  # no better: keep what works
    (Measured(0.00, 0.50, 0.00), Measured(0.00, 0.00, None), False),  # nothing right is no model
])  # fmt: skip
def test_a_new_model_beats_what_the_site_has_only_when_it_reads_more_or_answers_more(
        new: Measured, now: Measured, promoted: bool) -> None:
    assert new.beats(now) is promoted
