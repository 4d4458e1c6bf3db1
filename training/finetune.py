"""Fine-tune a pretrained CRNN on one site's labelled captchas, within a time budget.

A site shows one captcha style; a few hundred labelled images of it teach our small synthetic-pretrained
reader that style. Every image goes through the workers' own normalisation (both views), batches are
augmented (stretch, shift, contrast, noise) so that a few hundred images are not simply memorised, and the
best weights on the held-back samples are kept (the trainer then calibrates their confidence there).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import nn

from training.model import CRNN, WIDTH_PER_FRAME
from training.train import MAX_WIDTH, collate, greedy
from training.warm_start import load_onnx
from worker.normalise import Look, prepare

LOOKS = (Look("standard"), Look("colour_distance"), Look("standard", "tight"), Look("colour_distance", "tight"))
BATCH = 32
EVALUATIONS = 15  # measurements on the held-back samples per budget (each reads them in all four looks)
# Seconds between them; the longest is well inside the trainer's lease (keep_alive renews it there).
EVALUATE_EVERY_S = (10.0, 30.0)
# Augmentation: the share of training pictures slanted, turned and resized, and how far at most; the
# share whose strokes are made thicker or thinner.
DISTORT_SHARE = 0.5
MAX_TURN_DEGREES = 4.0
MAX_SLANT = 0.3
MAX_HEIGHT_CHANGE = 0.1
STROKE_SHARE = 0.25


@dataclass(frozen=True)
class Encoded:
    """One labelled captcha as the model sees it: an input per look, and its label columns."""

    views: tuple[np.ndarray, ...]
    labels: tuple[int, ...]


def encode(image: Image.Image, text: str, charset: str) -> Encoded:
    """Normalise once per look (as the workers do); labels are 1-based columns of `charset`."""
    page = prepare(image)
    views = []
    for look in LOOKS:
        array = page.model_input(look, len(text))[0, 0]
        if array.shape[1] > MAX_WIDTH:
            squeezed = Look(look.view, look.crop, look.stretch * MAX_WIDTH / array.shape[1])
            array = page.model_input(squeezed, len(text))[0, 0][:, :MAX_WIDTH]
        views.append(array.astype(np.float32))
    return Encoded(tuple(views), tuple(charset.index(char) + 1 for char in text))


def augment(array: np.ndarray, rng: random.Random) -> np.ndarray:
    """A slightly different picture of the same text: width stretch, a small slant, turn and change of
    height, thicker or thinner strokes, shift, contrast, blur-free noise. The geometry and stroke changes
    stand in for the fonts and sizes a few hundred captchas of a style do not all show."""
    height, width = array.shape
    fill = int(round(float(np.median(array)) * 255))
    stretch = rng.uniform(0.85, 1.15)
    new_width = max(WIDTH_PER_FRAME * 4, min(MAX_WIDTH, round(width * stretch)))
    image = Image.fromarray((array * 255).astype(np.uint8))
    image = image.resize((new_width, height), Image.Resampling.BILINEAR)
    if rng.random() < DISTORT_SHARE:
        image = image.transform(image.size, Image.Transform.AFFINE, _distortion(image.size, rng),
                                Image.Resampling.BILINEAR, fillcolor=fill)
    if rng.random() < STROKE_SHARE:
        # Dark ink on a light ground (the workers' views): a minimum filter thickens it, a maximum thins it.
        image = image.filter(ImageFilter.MinFilter(3) if rng.random() < 0.5 else ImageFilter.MaxFilter(3))
    out = np.asarray(image, dtype=np.float32) / 255.0
    shift = rng.randint(-3, 3)
    if shift:
        out = np.roll(out, shift, axis=0)
    pad = rng.randint(0, 8)
    if pad:
        sides = ((0, 0), (pad, 0)) if rng.random() < 0.5 else ((0, 0), (0, pad))
        out = np.pad(out, sides, constant_values=fill / 255)
    contrast, brightness = rng.uniform(0.7, 1.2), rng.uniform(-0.1, 0.1)
    out = (out - 0.5) * contrast + 0.5 + brightness
    if rng.random() < 0.3:
        out = out + np.random.default_rng(rng.randrange(2**32)).normal(0, 0.04, out.shape).astype(np.float32)
    return np.clip(out[:, :MAX_WIDTH], 0.0, 1.0).astype(np.float32)


def _distortion(size: tuple[int, int], rng: random.Random) -> tuple[float, ...]:
    """PIL affine coefficients (output pixel -> input pixel) of a random slant, turn and height change
    about the image's centre, so the text stays where it was."""
    turn = math.radians(rng.uniform(-MAX_TURN_DEGREES, MAX_TURN_DEGREES))
    slant = rng.uniform(-MAX_SLANT, MAX_SLANT)
    height_scale = rng.uniform(1 - MAX_HEIGHT_CHANGE, 1 + MAX_HEIGHT_CHANGE)
    cos, sin = math.cos(turn), math.sin(turn)
    a, b = cos, (cos * slant - sin) / height_scale
    d, e = sin, (sin * slant + cos) / height_scale
    cx, cy = size[0] / 2, size[1] / 2
    return (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy)


def _batch(samples: Sequence[Encoded], rng: random.Random | None, look: int = 0) -> tuple[torch.Tensor, ...]:
    """A training batch (a random look, augmented) or, without `rng`, look number `look` as it is."""
    chosen = []
    for sample in samples:
        array = sample.views[rng.randrange(len(sample.views))] if rng else sample.views[look]
        chosen.append((augment(array, rng) if rng else array, list(sample.labels)))
    return collate(chosen)


@torch.no_grad()
def readings(network: CRNN, samples: Sequence[Encoded], look: int) -> list[tuple[list[int], list[int]]]:
    """(greedy reading, label) of each of `samples` through look number `look`, as label columns."""
    network.eval()
    pairs: list[tuple[list[int], list[int]]] = []
    for start in range(0, len(samples), 64):
        images, frames, labels, lengths = _batch(samples[start:start + 64], None, look)
        truth = [t.tolist() for t in torch.split(labels, lengths.tolist())]
        pairs += zip(greedy(network(images), frames), truth)
    network.train()
    return pairs


def exact_match(network: CRNN, samples: Sequence[Encoded], look: int | None = None) -> float:
    """Share of `samples` whose greedy reading is their label, through `look` (default: the best look)."""
    if look is None:
        return max(exact_match(network, samples, index) for index in range(len(LOOKS)))
    return sum(read == label for read, label in readings(network, samples, look)) / max(1, len(samples))


@dataclass
class FineTuned:
    network: CRNN
    look: Look
    steps: int
    seconds: float
    best_exact: float


def finetune(train: Sequence[Encoded], valid: Sequence[Encoded], base: Path, classes: int, budget_s: float,
             seed: int = 0, lr: float = 1e-3, keep_alive: Callable[[], None] = lambda: None) -> FineTuned:
    """Train from `base` (an exported ONNX model) for at most `budget_s`; keep the weights that read the
    most `valid` samples right, and the look that reads them best. `keep_alive` is called between
    evaluations (the trainer renews its lease there)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    started = time.monotonic()
    network = CRNN(classes=classes)
    load_onnx(network, base, _batch(train[:128], None)[0])
    optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    best_exact, best_state = exact_match(network, valid), copy.deepcopy(network.state_dict())
    order: list[int] = []
    step = 0
    evaluate_every_s = min(max(EVALUATE_EVERY_S[0], budget_s / EVALUATIONS), EVALUATE_EVERY_S[1])
    evaluated_at = 0.0
    while (elapsed := time.monotonic() - started) < budget_s:
        step += 1
        if len(order) < BATCH:
            order += rng.sample(range(len(train)), len(train))
        picked, order = order[:BATCH], order[BATCH:]
        images, frames, labels, lengths = _batch([train[i] for i in picked], rng)
        warmup = min(1.0, step / 20)
        for group in optimiser.param_groups:
            group["lr"] = lr * warmup * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget_s)))
        loss = ctc(network(images).log_softmax(-1).transpose(0, 1), labels, frames, lengths)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimiser.step()
        if elapsed - evaluated_at >= evaluate_every_s:
            evaluated_at = elapsed
            keep_alive()
            exact = exact_match(network, valid)
            if exact >= best_exact:
                best_exact, best_state = exact, copy.deepcopy(network.state_dict())
    network.load_state_dict(best_state)
    network.eval()
    look = max(range(len(LOOKS)), key=lambda index: exact_match(network, valid, index))
    return FineTuned(network, LOOKS[look], step, time.monotonic() - started, best_exact)
