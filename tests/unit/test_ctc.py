"""The fixed-length CTC decoder on hand-made probability matrices.

Columns: 0 is the CTC blank, column d + 1 is digit d. A frame string such as
"1-10-0" gives each frame 0.9 on its class ('-' is blank), the rest spread.
"""

import itertools

import numpy as np
import pytest

from worker import ctc
from worker.ctc import SURE_BLANK, decode_fixed_length, forward_probability

CLASSES = 11


def frames(spec: str, peak: float = 0.9) -> np.ndarray:
    probs = np.full((len(spec), CLASSES), (1.0 - peak) / (CLASSES - 1))
    for t, char in enumerate(spec):
        probs[t, 0 if char == "-" else int(char) + 1] = peak
    return probs


def text(labels: list[int]) -> str:
    return "".join(str(label - 1) for label in labels)


def test_reads_a_clear_lattice_with_its_probability():
    probs = frames("-1-2-3-4-")
    labels, confidence = decode_fixed_length(probs, 4)
    assert text(labels) == "1234"
    assert confidence == pytest.approx(forward_probability(probs, labels))
    assert confidence > 0.4


def test_repeated_digits_need_a_blank_between_them():
    labels, confidence = decode_fixed_length(frames("1-10-0"), 4)
    assert (text(labels), confidence > 0.5) == ("1100", True)
    # Without blanks the repeats collapse: the lattice says "10", and no 4-digit string is likely.
    assert text(decode_fixed_length(frames("1100--"), 2)[0]) == "10"
    assert decode_fixed_length(frames("1100--"), 4)[1] < 0.05


def test_a_string_shorter_than_n_still_gives_n_digits_but_low_confidence():
    probs = frames("-1--2-")
    labels, confidence = decode_fixed_length(probs, 4)
    assert len(labels) == 4 and all(1 <= label <= 10 for label in labels)
    assert confidence < 0.01
    assert decode_fixed_length(probs, 2)[1] > 0.5


def test_a_tie_is_split_and_broken_deterministically():
    probs = frames("-5-")
    probs[1] = 0.0
    probs[1, 3 + 1] = probs[1, 7 + 1] = 0.5  # frame 1 is "3" or "7", evenly
    labels, confidence = decode_fixed_length(probs, 1)
    assert text(labels) in {"3", "7"}
    assert confidence == pytest.approx(forward_probability(probs, labels))
    assert confidence == pytest.approx(forward_probability(probs, [4 if labels == [8] else 8]))
    assert decode_fixed_length(probs, 1) == (labels, confidence)


@pytest.mark.parametrize("digits, spec", [("7", "--7--"), ("90817263", "9-0-8-1-7-2-6-3-")])
def test_lengths_one_and_eight(digits, spec):
    labels, confidence = decode_fixed_length(frames(spec), len(digits))
    assert text(labels) == digits
    assert confidence > 0.1


def test_too_short_a_lattice_gives_nothing():
    assert decode_fixed_length(frames("12"), 4) == ([], 0.0)


def test_matches_exhaustive_search_on_random_lattices():
    rng = np.random.default_rng(7)
    for _ in range(25):
        steps, length = int(rng.integers(3, 8)), int(rng.integers(1, 4))
        probs = rng.dirichlet(np.full(4, 0.3), size=steps)  # blank + 3 symbols
        exhaustive = max(itertools.product(range(1, 4), repeat=length),
                         key=lambda seq: forward_probability(probs, list(seq)))
        labels, confidence = decode_fixed_length(probs, length, beam=64)
        assert confidence == pytest.approx(forward_probability(probs, list(exhaustive)))


def test_forward_probabilities_of_all_strings_sum_to_one():
    probs = np.random.default_rng(3).dirichlet(np.ones(3), size=3)  # blank + 2 symbols, 3 steps
    total = sum(forward_probability(probs, list(seq))
                for n in range(4) for seq in itertools.product((1, 2), repeat=n))
    assert total == pytest.approx(1.0)


def test_long_lattices_do_not_underflow():
    probs = frames("-" * 200 + "4-2" + "-" * 200, peak=0.999)
    labels, confidence = decode_fixed_length(probs, 2)
    assert text(labels) == "42"
    assert confidence > 0.0


def test_sure_blank_frames_skipped_in_the_first_search_still_give_the_exhaustive_best():
    """Frames at least SURE_BLANK sure of blank extend no prefix in the first pass (most real frames);
    a strained answer (more digits asked than the lattice shows) is searched again in full."""
    rng = np.random.default_rng(1)  # 2 of these 25 lattices defeat the first pass alone
    sure = np.array([SURE_BLANK + (1 - SURE_BLANK) / 2, *np.full(3, (1 - SURE_BLANK) / 6)])
    for _ in range(25):
        steps, length = int(rng.integers(4, 9)), int(rng.integers(1, 4))
        probs = rng.dirichlet(np.full(4, 0.3), size=steps)  # blank + 3 symbols
        probs[rng.random(steps) < 0.6] = sure
        exhaustive = max(itertools.product(range(1, 4), repeat=length),
                         key=lambda seq: forward_probability(probs, list(seq)))
        labels, confidence = decode_fixed_length(probs, length, beam=64)
        assert confidence == pytest.approx(forward_probability(probs, list(exhaustive)))


def test_a_greedy_string_above_one_half_is_the_answer_without_a_search(monkeypatch):
    """Strings' probabilities sum to at most 1, so one above 1/2 beats all others: no search needed."""
    def no_search(*args, **kwargs):
        raise AssertionError("searched although the greedy string was above 1/2")

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        steps, length = int(rng.integers(3, 8)), int(rng.integers(1, 4))
        probs = rng.dirichlet(np.full(4, 0.1), size=steps)  # peaked frames: often one clear string
        exhaustive = max(itertools.product(range(1, 4), repeat=length),
                         key=lambda seq: forward_probability(probs, list(seq)))
        greedy = ctc._best_path(probs)
        if len(greedy) != length or forward_probability(probs, greedy) <= 0.5:
            continue
        with monkeypatch.context() as patch:
            patch.setattr(ctc, "_beam_search", no_search)
            labels, confidence = decode_fixed_length(probs, length)
        assert labels == list(exhaustive)
        checked += 1
    assert checked >= 5
