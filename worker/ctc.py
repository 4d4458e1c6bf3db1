"""Constrained CTC decoding: the most probable string of exactly N digits.

The models emit per-time-step class probabilities; the answer's shape is known
(N digits), so instead of taking the greedy text and filtering it we search the
CTC lattice only over digit strings of length exactly N, and score each string
with the CTC forward algorithm (summing over all alignments).
"""

from __future__ import annotations

import numpy as np

BLANK = 0


def forward_probability(probs: np.ndarray, labels: list[int]) -> float:
    """Probability of `labels` (class indices >= 1) under `probs` (T, C), summed over alignments."""
    ext = [BLANK]
    for label in labels:
        ext += [label, BLANK]
    s_len = len(ext)
    alpha = np.zeros(s_len)
    alpha[0] = probs[0, BLANK]
    if s_len > 1:
        alpha[1] = probs[0, ext[1]]
    for t in range(1, probs.shape[0]):
        prev = alpha.copy()
        for s in range(s_len):
            total = prev[s] + (prev[s - 1] if s >= 1 else 0.0)
            if s >= 2 and ext[s] != BLANK and ext[s] != ext[s - 2]:
                total += prev[s - 2]
            alpha[s] = total * probs[t, ext[s]]
    return float(alpha[-1] + (alpha[-2] if s_len > 1 else 0.0))


def decode_fixed_length(probs: np.ndarray, length: int, beam: int = 16) -> tuple[list[int], float]:
    """Best class sequence of exactly `length` non-blank symbols, and its probability.

    `probs` is (T, C) with column 0 the CTC blank and the rows summing to 1 (or
    less, when classes outside the alphabet were dropped). Prefix beam search:
    each kept prefix carries its exact probability split into "ends in blank"
    and "ends in its last symbol", so the final scores are exact forward sums;
    only the pruning to `beam` prefixes is approximate. Returns ([], 0.0) when
    the lattice is too short to hold `length` symbols.
    """
    steps, classes = probs.shape
    if length < 1 or steps < length:
        return [], 0.0
    syms = np.arange(1, classes)  # prefix keys are base-`classes` numbers of symbols >= 1
    keys = np.zeros(1, dtype=np.int64)   # the empty prefix
    lens = np.zeros(1, dtype=np.int64)
    last = np.full(1, -1, dtype=np.int64)
    p_blank = np.ones(1)
    p_sym = np.zeros(1)
    log_scale = 0.0
    for t in range(steps):
        row = probs[t]
        p_all = p_blank + p_sym
        # Stay: same prefix, emit blank or repeat the last symbol.
        stay_blank = p_all * row[BLANK]
        stay_sym = np.where(last >= 0, p_sym * row[np.maximum(last, 0)], 0.0)
        # Extend every prefix still shorter than `length` by each symbol.
        grow = np.flatnonzero(lens < length)
        src = np.repeat(grow, syms.size)
        sym = np.tile(syms, grow.size)
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
            return [], 0.0
        keys, lens, last = keys[keep], lens[keep], last[keep]
        p_blank, p_sym = p_blank[keep], p_sym[keep]
        # Rescale so long lattices do not underflow; remember the factor.
        norm = float((p_blank + p_sym).max())
        p_blank, p_sym = p_blank / norm, p_sym / norm
        log_scale += np.log(norm)
    total = p_blank + p_sym
    total[lens != length] = 0.0
    best = int(np.argmax(total))
    if total[best] <= 0.0:
        return [], 0.0
    seq: list[int] = []
    key = int(keys[best])
    while key:
        key, digit = divmod(key, classes)
        seq.append(digit)
    return seq[::-1], float(np.exp(np.log(total[best]) + log_scale))
