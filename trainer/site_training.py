"""Train one site's model from its samples, and decide whether it replaces what the site reads with now.

A fifth of the samples (chosen by their ids, so the same ones across retrains) is held back. The new
model's confidence is calibrated on them for the decision it serves: a softmax temperature chosen so that
its answers at the service's threshold reach ``site_model_precision`` while answering as many as they can
(a fit to the labels' likelihood left some sites over-sure and others answering too few; the figures are
in docs/site-learning.md). It is then measured on them with the workers' own site reader, beside the
generic reader and the site's current model, and promoted only when it beats what the site has now
(:meth:`Measured.beats`).
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shared.charsets import ALNUM, DIGITS
from shared.imaging import ImageLimits, open_image
from shared.settings import Settings
from shared.sites import Sample, SiteModel
from training.finetune import Encoded, encode, finetune
from training.model import CRNN
from training.train import export
from worker.charsets import alphabet
from worker.recognizer import OWN_MODELS, Recognizer
from worker.site_model import SiteModelReader
from worker.wanted import Wanted, read

HELD_BACK_ONE_IN = 5
# Every site starts from our synthetic-pretrained digit model. A letter site's network has the ALNUM
# columns, which begin with the digits: those classifier rows carry over, the letters' rows are learned
# from the site's samples, and the features (strokes, clutter) transfer.
BASE_MODEL = OWN_MODELS["digits_crnn"]
RESERVED_S = 40  # of the time budget, for decoding, calibrating, measuring and exporting around the training
# A fine-tuned network can be over- or under-sure: sharper (below 1) or flatter (above 1).
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.25, 4.0, 17))


def held_back(sample: Sample) -> bool:
    return zlib.crc32(sample.id.encode()) % HELD_BACK_ONE_IN == 0


@dataclass
class Measured:
    """How a reader did on the held-back samples, at the service's confidence threshold."""

    accuracy: float
    answered: float
    precision: float | None

    def beats(self, other: Measured) -> bool:
        """More of the held-back samples read right; or as many, and more of them answered at no lower
        precision (a site the generic reader already reads well gains answers, not accuracy)."""
        if self.accuracy != other.accuracy:
            return self.accuracy > other.accuracy
        return (self.accuracy > 0 and self.answered > other.answered
                and (self.precision or 0.0) >= (other.precision or 0.0))

    @classmethod
    def of(cls, readings: list[tuple[str, float]], labels: list[str], threshold: float) -> Measured:
        right = [text == label for (text, _), label in zip(readings, labels)]
        sure = [ok for ok, (_, confidence) in zip(right, readings) if confidence >= threshold]
        return cls(round(sum(right) / len(labels), 4), round(len(sure) / len(labels), 4),
                   round(sum(sure) / len(sure), 4) if sure else None)


@dataclass
class Outcome:
    """What one training run produced: the model (ONNX bytes and metadata) and whether it won."""

    onnx: bytes
    meta: dict[str, Any]
    promote: bool


def _images(samples: list[Sample], limits: ImageLimits) -> list[Image.Image]:
    return [open_image(sample.image, limits) for sample in samples]


def train_site(samples: list[Sample], current: SiteModel | None, settings: Settings, generic: Recognizer,
               keep_alive: Callable[[], None] = lambda: None) -> Outcome:
    """Fine-tune on the samples not held back; measure; say whether it should be promoted."""
    started = time.monotonic()
    limits = ImageLimits.from_settings(settings)
    texts = [sample.text for sample in samples]
    charset = DIGITS if all(char in DIGITS for text in texts for char in text) else ALNUM
    train = [s for s in samples if not held_back(s)]
    valid = [s for s in samples if held_back(s)]
    valid_images = _images(valid, limits)
    encoded = [encode(image, s.text, charset) for image, s in zip(_images(train, limits), train)]
    held: list[Encoded] = [encode(image, s.text, charset) for image, s in zip(valid_images, valid)]
    keep_alive()
    budget = max(30.0, settings.learn_max_minutes * 60 - RESERVED_S - (time.monotonic() - started))
    tuned = finetune(encoded, held, BASE_MODEL, classes=len(charset) + 1, budget_s=budget, keep_alive=keep_alive)
    meta: dict[str, Any] = {
        "charset": charset,
        "learned": "".join(sorted({char for text in texts for char in text})),
        "lengths": sorted({len(text) for text in texts}),
        "look": {"view": tuned.look.view, "crop": tuned.look.crop, "stretch": tuned.look.stretch},
    }
    labels = [s.text for s in valid]
    threshold = settings.min_confidence
    uncalibrated = SiteModelReader(_exported(tuned.network, charset, 1.0), meta)
    meta["temperature"] = calibrated_temperature(uncalibrated, [uncalibrated.outputs(i) for i in valid_images],
                                                 labels, threshold, settings.site_model_precision)
    onnx = _exported(tuned.network, charset, meta["temperature"])
    new = Measured.of(_read_all(SiteModelReader(onnx, meta), valid_images), labels, threshold)
    generic_alphabet = alphabet(meta["learned"], case=True)
    generic_readings = [_generic(generic, image, Wanted(len(label), len(label), generic_alphabet))
                        for image, label in zip(valid_images, labels)]
    generic_measured = Measured.of(generic_readings, labels, threshold)
    now = [generic_measured]
    if current is not None:
        now.append(Measured.of(_read_all(SiteModelReader(current.onnx, current.meta), valid_images), labels,
                               threshold))
    meta.update({
        "trained_at": time.time(),
        "samples_used": len(train),
        "held_back": len(valid),
        "train_seconds": round(time.monotonic() - started, 1),
        "steps": tuned.steps,
        "validation": vars(new),
        "generic_validation": vars(generic_measured),
    })
    return Outcome(onnx, meta, promote=all(new.beats(other) for other in now))


def calibrated_temperature(reader: SiteModelReader, outputs: list[np.ndarray], labels: list[str],
                           threshold: float, precision: float) -> float:
    """The sharpest temperature at which the held-back answers at `threshold` are right at `precision`
    (or none is answered), so the most are answered; the most cautious one when even it is not that
    precise. A flatter temperature answers fewer and surer, so the search halves the grid (each try
    decodes every held-back sample)."""
    def precise(temperature: float) -> bool:
        readings = [reader.decode(output, temperature=temperature) for output in outputs]
        measured = Measured.of([(r.text, r.confidence) for r in readings], labels, threshold)
        return measured.precision is None or measured.precision >= precision

    low, high = 0, len(TEMPERATURES) - 1
    if not precise(TEMPERATURES[high]):
        return TEMPERATURES[high]
    while low < high:
        middle = (low + high) // 2
        if precise(TEMPERATURES[middle]):
            high = middle
        else:
            low = middle + 1
    return TEMPERATURES[low]


def _exported(network: CRNN, charset: str, temperature: float) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "site.onnx"
        export(network, path, charset, temperature)
        return path.read_bytes()


def _read_all(reader: SiteModelReader, images: list[Image.Image]) -> list[tuple[str, float]]:
    return [(reading.text, reading.confidence) for reading in map(reader.read, images)]


def _generic(recognizer: Recognizer, image: Image.Image, wanted: Wanted) -> tuple[str, float]:
    """The generic reader's answer to the question a site request asks of it (the site's characters)."""
    candidate = read(recognizer, image, wanted)
    return candidate.text, candidate.confidence
