"""Train one site's model from its samples, and decide whether it replaces what the site reads with now.

A fifth of the samples labelled from outside (uploads, feedback; chosen by their ids, so the same ones
across retrains) is held back; the service's own sure answers only train. The held-back samples are
read as the workers answer a site request (:func:`worker.site_reading.served`: the site model, and the
generic reader beside it when the model is unsure), so the figures are the service's. The new model's
confidence is calibrated there for the decision it serves: a softmax temperature chosen so that the
answers at the service's threshold claim ``site_model_precision`` by their own confidences, and the
mistakes among them do not contradict that claim, while answering as many as they can (a fit to the
labels' likelihood left some sites over-sure and others answering too few; asking a hundred held-back
samples for 99% precision outright, that is for no mistake at all, made one unlucky sample halve what a
site answered), on at least ``site_model_min_answers`` of them (a handful of right answers proves no
precision). The new model
is then measured beside the generic reader and the site's current model, and promoted only when it beats
what the site has now by more than chance explains, and reads no fewer right ignoring case
(:meth:`trainer.promotion.Measured.replaces`).
"""

from __future__ import annotations

import math
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
from trainer.promotion import Measured
from training.finetune import Encoded, encode, finetune
from training.model import CRNN
from training.train import export
from worker.charsets import alphabet
from worker.recognizer import OWN_MODELS, Recognizer
from worker.site_model import SiteModelReader, SiteReading
from worker.site_reading import served
from worker.wanted import Wanted, read

HELD_BACK_ONE_IN = 5
# Every site starts from a model pretrained on synthetic captchas of its charset: a digit site from the
# workers' digit model, a letter site from one that read letters and digits (`training.train --charset
# alnum`, resumed from the digit model). The letter model is the trainer's alone: no worker reads with it.
BASE_MODELS = {DIGITS: OWN_MODELS["digits_crnn"],
               ALNUM: Path(__file__).resolve().parent / "models" / "alnum_crnn.onnx"}
RESERVED_S = 40  # of the time budget, for decoding, calibrating, measuring and exporting around the training
# A fine-tuned network can be over- or under-sure: sharper (below 1) or flatter (above 1).
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.25, 4.0, 17))
# The least likely the mistakes among a temperature's held-back answers may be, were the answers' own
# confidences right about them (a Poisson tail): rarer than that, the confidences are over-sure.
PLAUSIBLE_MISTAKES = 0.2


def labelled_from_outside(sample: Sample) -> bool:
    """Labelled by someone else than the service (an upload, feedback): only such a label can say how a
    model does, the service's own sure answers being the easy images, right by construction."""
    return sample.source != "self"


def held_back(sample: Sample) -> bool:
    """One in five of the samples labelled from outside; self-labels only train."""
    return labelled_from_outside(sample) and zlib.crc32(sample.id.encode()) % HELD_BACK_ONE_IN == 0


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
    tuned = finetune(encoded, held, BASE_MODELS[charset], classes=len(charset) + 1, budget_s=budget, keep_alive=keep_alive)
    meta: dict[str, Any] = {
        "charset": charset,
        "learned": "".join(sorted({char for text in texts for char in text})),
        "lengths": sorted({len(text) for text in texts}),
        "look": {"view": tuned.look.view, "crop": tuned.look.crop, "stretch": tuned.look.stretch},
    }
    labels = [s.text for s in valid]
    threshold = settings.min_confidence
    generic_alphabet = alphabet(meta["learned"], case=True)
    generic_readings = [generic_reading(generic, image, Wanted(len(label), len(label), generic_alphabet))
                        for image, label in zip(valid_images, labels)]
    uncalibrated = SiteModelReader(_exported(tuned.network, charset, 1.0), meta)
    meta["temperature"] = calibrated_temperature(uncalibrated, [uncalibrated.outputs(i) for i in valid_images],
                                                 generic_readings, labels, threshold,
                                                 settings.site_model_precision, settings.site_model_min_answers)
    onnx = _exported(tuned.network, charset, meta["temperature"])
    new = Measured.of(_served(SiteModelReader(onnx, meta), valid_images, generic_readings, threshold), labels,
                      threshold)
    generic_measured = Measured.of(generic_readings, labels, threshold)
    now = [generic_measured]
    if current is not None:
        now.append(Measured.of(_served(SiteModelReader(current.onnx, current.meta), valid_images,
                                       generic_readings, threshold), labels, threshold))
    meta.update({
        "trained_at": time.time(),
        "samples_used": len(train),
        "held_back": len(valid),
        "train_seconds": round(time.monotonic() - started, 1),
        "steps": tuned.steps,
        "validation": new.figures(),
        "generic_validation": generic_measured.figures(),
    })
    return Outcome(onnx, meta, promote=all(new.replaces(other) for other in now))


def calibrated_temperature(reader: SiteModelReader, outputs: list[np.ndarray], generic: list[SiteReading],
                           labels: list[str], threshold: float, precision: float, min_answers: int = 1) -> float:
    """The sharpest temperature at which the site model's answers at `threshold` are trustworthy
    (:func:`trustworthy`) and at least `min_answers` (or none is answered), so the most are answered;
    the most cautious one when even it is not. Its answers are those it gives alone, or that its
    confirmation of the `generic` reader's reading of the same sample lifts to `threshold`, as the
    workers serve them (what the generic reader answers on its own is as precise as it is whatever the
    temperature). A flatter temperature answers fewer and surer, but "trustworthy" is not monotone in it
    (none answered passes, a handful of right ones does not, enough of them does), so the temperatures
    are tried from the sharpest (each try decodes every held-back sample)."""
    def passes(temperature: float) -> bool:
        answers = model_answers(reader, outputs, generic, labels, threshold, temperature)
        return not answers or (len(answers) >= min_answers and trustworthy(answers, precision))

    return next((temperature for temperature in TEMPERATURES if passes(temperature)), TEMPERATURES[-1])


def model_answers(reader: SiteModelReader, outputs: list[np.ndarray], generic: list[SiteReading],
                  labels: list[str], threshold: float, temperature: float) -> list[tuple[float, bool]]:
    """(confidence, right) of each held-back answer at `threshold` that the site model, at `temperature`,
    gives alone or lifts there by confirming the `generic` reader's reading, as the workers serve them."""
    answers = []
    for output, other, label in zip(outputs, generic, labels):
        own = reader.decode(output, temperature=temperature)
        answer = served(own, threshold, lambda g=other: g, reader.alphabet())
        generic_alone = other.confidence >= threshold and other.text == answer.text
        model_made_it = own.confidence >= threshold or not generic_alone
        if answer.text == own.text and answer.confidence >= threshold and model_made_it:
            answers.append((answer.confidence, answer.text == label))
    return answers


def trustworthy(answers: list[tuple[float, bool]], precision: float) -> bool:
    """Whether answers, as (confidence, right), may be served as `precision` precise: their confidences
    claim it (they expect at most that share of mistakes), and the mistakes seen are not rarer than
    :data:`PLAUSIBLE_MISTAKES` under those confidences. A hundred held-back samples cannot show 99%
    precision by counting (one mistake in 90 answers is 98.9%); they can show over-sure confidences."""
    expected = sum(1.0 - confidence for confidence, _ in answers)
    mistakes = sum(not right for _, right in answers)
    return expected <= (1.0 - precision) * len(answers) and at_least(mistakes, expected) >= PLAUSIBLE_MISTAKES


def at_least(count: int, expected: float) -> float:
    """The chance of at least `count` events when `expected` are expected (a Poisson tail)."""
    return 1.0 - sum(math.exp(-expected) * expected**k / math.factorial(k) for k in range(count))


def _exported(network: CRNN, charset: str, temperature: float) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "site.onnx"
        export(network, path, charset, temperature)
        return path.read_bytes()


def _served(reader: SiteModelReader, images: list[Image.Image], generic: list[SiteReading],
            threshold: float) -> list[SiteReading]:
    """Each image answered as a worker answers a site request with this model."""
    return [served(reader.read(image), threshold, lambda g=other: g, reader.alphabet())
            for image, other in zip(images, generic)]


def generic_reading(recognizer: Recognizer, image: Image.Image, wanted: Wanted) -> SiteReading:
    """The generic reader's answer to the question a site request asks of it (the site's characters)."""
    candidate = read(recognizer, image, wanted)
    return SiteReading(candidate.text, candidate.confidence)
