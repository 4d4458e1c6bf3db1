"""Constrained CTC decoding: the most probable string of exactly N digits.

The models emit per-time-step class probabilities; the answer's shape is known
(N digits), so instead of taking the greedy text and filtering it we search the
CTC lattice only over digit strings of length exactly N, and score each string
with the CTC forward algorithm (summing over all alignments).
"""

from __future__ import annotations

import numpy as np

BLANK = 0
SURE_BLANK = 0.999  # a frame at least this sure of blank extends no prefix in the first search
EXACT_SEARCH_BELOW = 0.01  # an answer less probable than this is searched again over every frame


def forward_probability(probs: np.ndarray, labels: list[int]) -> float:
    """Probability of `labels` (class indices >= 1) under `probs` (T, C), summed over all alignments."""
    return float(forward_probabilities(probs, np.array([labels], dtype=np.int64).reshape(1, -1))[0])


def forward_probabilities(probs: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """CTC forward algorithm for K label sequences of one length at once: (K, N) -> (K,)."""
    steps = probs.shape[0]
    count, length = candidates.shape
    if steps == 0 or length > steps:
        return np.zeros(count)
    ext = np.zeros((count, 2 * length + 1), dtype=np.int64)  # blank, l1, blank, ..., lN, blank
    ext[:, 1::2] = candidates
    # A symbol may follow the one two places back (skipping the blank) unless they are equal.
    skip = np.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != BLANK) & (ext[:, 2:] != ext[:, :-2])
    alpha = np.zeros(ext.shape)
    alpha[:, :2] = probs[0, ext[:, :2]]
    log_scale = np.zeros(count)
    for t in range(1, steps):
        moved = alpha.copy()
        moved[:, 1:] += alpha[:, :-1]
        moved[:, 2:] += np.where(skip[:, 2:], alpha[:, :-2], 0.0)
        alpha = moved * probs[t, ext]
        norm = alpha.max(axis=1)
        norm[norm <= 0.0] = 1.0  # an impossible sequence stays at 0
        alpha /= norm[:, None]
        log_scale += np.log(norm)
    end = alpha[:, -1] + (alpha[:, -2] if length else 0.0)
    with np.errstate(divide="ignore"):
        return np.exp(np.log(end) + log_scale)


def decode_fixed_length(
    probs: np.ndarray, length: int, beam: int = 16, allowed: np.ndarray | None = None
) -> tuple[list[int], float]:
    """Best class sequence of exactly `length` non-blank symbols, and its probability.

    `probs` is (T, C) with column 0 the CTC blank and the rows summing to 1 (or
    less, when classes outside the alphabet were dropped). Prefix beam search:
    each kept prefix carries its probability split into "ends in blank" and
    "ends in its last symbol"; the surviving full-length strings are then
    rescored exactly with the forward algorithm, so only which strings get
    considered (the pruning to `beam` prefixes) is approximate. Returns
    ([], 0.0) when the lattice is too short to hold `length` symbols.

    Most readings need no search: when the greedy path's string has `length`
    symbols and a probability above 1/2, it is the most probable string. A
    first search extends no prefix at frames that are surely blank (4 in 5
    on the corpus); an answer below EXACT_SEARCH_BELOW, which only a strained
    reading gets (e.g. more digits asked for than drawn), is searched again
    over every frame.
    """
    found = decode_candidates(probs, length, beam, allowed)
    return found[0] if found else ([], 0.0)


def decode_candidates(
    probs: np.ndarray, length: int, beam: int = 16, allowed: np.ndarray | None = None, top: int = 1
) -> list[tuple[list[int], float]]:
    """The `top` most probable sequences of exactly `length` symbols, best first (see
    :func:`decode_fixed_length`). `allowed`, a (length, C) bool array, says which classes each position
    may hold: a shape such as "digit, operator, digit" is searched, not filtered after the search."""
    steps, classes = probs.shape
    if length < 1 or steps < length:
        return []
    greedy = _best_path(probs)
    if top == 1 and len(greedy) == length and _fits(greedy, allowed):
        probability = forward_probability(probs, greedy)
        if probability > 0.5:  # the strings' probabilities sum to at most 1: no other can be higher
            return [(greedy, probability)]
    found = _beam_search(probs, length, beam, skip_sure_blanks=True, allowed=allowed)
    if not found or found[0][1] < EXACT_SEARCH_BELOW:
        again = _beam_search(probs, length, beam, skip_sure_blanks=False, allowed=allowed)
        seen = {tuple(labels) for labels, _ in found}
        found = sorted(found + [f for f in again if tuple(f[0]) not in seen], key=lambda f: -f[1])
    return found[:top]


def _fits(labels: list[int], allowed: np.ndarray | None) -> bool:
    return allowed is None or bool(allowed[np.arange(len(labels)), labels].all())


def _best_path(probs: np.ndarray) -> list[int]:
    """The most probable frame-by-frame path with repeats merged and blanks dropped (greedy CTC)."""
    path = probs.argmax(axis=1)
    merged = path[np.concatenate([[True], path[1:] != path[:-1]])]
    return [int(label) for label in merged if label != BLANK]


def _beam_search(
    probs: np.ndarray, length: int, beam: int, skip_sure_blanks: bool, allowed: np.ndarray | None = None
) -> list[tuple[list[int], float]]:
    """One prefix beam search (see :func:`decode_fixed_length`), optionally passing over sure blanks:
    every complete string it kept, rescored exactly, best first."""
    steps, classes = probs.shape
    syms = np.arange(1, classes)  # prefix keys are base-`classes` numbers of symbols >= 1
    keys = np.zeros(1, dtype=np.int64)   # the empty prefix
    lens = np.zeros(1, dtype=np.int64)
    last = np.full(1, -1, dtype=np.int64)
    p_blank = np.ones(1)
    p_sym = np.zeros(1)
    sure_blank = (probs[:, BLANK] >= SURE_BLANK) if skip_sure_blanks else np.zeros(steps, dtype=bool)
    for t in range(steps):
        row = probs[t]
        p_all = p_blank + p_sym
        if sure_blank[t] and (length - lens <= steps - 1 - t).all():
            # A frame the model is sure is blank (4 in 5 here) only carries each prefix forward: its
            # extensions are under 1/1000 of the prefix and are found again at the frame showing the
            # symbol. Every kept prefix can still reach `length`, so nothing needs pruning either.
            p_sym = np.where(last >= 0, p_sym * row[np.maximum(last, 0)], 0.0)
            p_blank = p_all * row[BLANK]
            continue
        # Stay: same prefix, emit blank or repeat the last symbol.
        stay_blank = p_all * row[BLANK]
        stay_sym = np.where(last >= 0, p_sym * row[np.maximum(last, 0)], 0.0)
        # Extend every prefix still shorter than `length` by each symbol.
        grow = np.flatnonzero(lens < length)
        src = np.repeat(grow, syms.size)
        sym = np.tile(syms, grow.size)
        if allowed is not None:  # each position holds only its allowed classes
            fits = allowed[lens[src], sym]
            src, sym = src[fits], sym[fits]
        ext_p = np.where(sym == last[src], p_blank[src], p_all[src]) * row[sym]
        ext_keys = keys[src] * classes + sym
        # An extension may equal a prefix already in the beam: merge it there.
        order = np.argsort(keys)
        pos = np.minimum(np.searchsorted(keys, ext_keys, sorter=order), keys.size - 1)
        hit = keys[order[pos]] == ext_keys
        np.add.at(stay_sym, order[pos[hit]], ext_p[hit])
        new = ~hit
        keys = np.concatenate([keys, ext_keys[new]])
        lens = np.concatenate([lens, lens[src[new]] + 1])
        last = np.concatenate([last, sym[new]])
        p_blank = np.concatenate([stay_blank, np.zeros(int(new.sum()))])
        p_sym = np.concatenate([stay_sym, ext_p[new]])
        # Drop prefixes that can no longer reach `length`, keep the best `beam`.
        total = p_blank + p_sym
        total[length - lens > steps - 1 - t] = 0.0
        keep = np.argsort(-total, kind="stable")[:beam]
        keep = keep[total[keep] > 0.0]
        if keep.size == 0:
            return []
        keys, lens, last = keys[keep], lens[keep], last[keep]
        p_blank, p_sym = p_blank[keep], p_sym[keep]
        # Rescale so long lattices do not underflow (only the ranking matters here).
        norm = float((p_blank + p_sym).max())
        p_blank, p_sym = p_blank / norm, p_sym / norm
    complete = np.flatnonzero(lens == length)
    if complete.size == 0:
        return []
    # The beam under-counts a prefix whose paths were pruned earlier: rescore exactly.
    candidates = np.zeros((complete.size, length), dtype=np.int64)
    codes = keys[complete].copy()
    for position in range(length - 1, -1, -1):
        codes, candidates[:, position] = np.divmod(codes, classes)
    scores = forward_probabilities(probs, candidates)
    order = np.argsort(-scores, kind="stable")
    return [([int(label) for label in candidates[i]], float(scores[i])) for i in order if scores[i] > 0.0]
