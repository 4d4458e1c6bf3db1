"""Read N-digit numeric captchas with the OCR models shipped in the ddddocr wheel (and our own).

One Recognizer per process: it loads the ONNX sessions once. Each reading runs
the first model on the first look (standard view, with a margin) and decodes the
most probable string of exactly N digits; only when that reading is unsure does it
spend time on other looks and models, keeping the answer they agree on best.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from shared.settings import Settings
from worker.ctc import decode_fixed_length, forward_probabilities
from worker.normalise import NARROW_STRETCH, VIEWS, Look, prepare

DIGITS = "0123456789"
BEAM = 32  # prefix beam width: 16 -> 32 reads 0.3% more images right for +0.2 ms
# Model file stem -> output columns of the CTC blank and of "0".."9" in the model's charset
# (ddddocr 1.6.1's CharsetManager; tests/unit/test_model_columns.py checks them against it). Pinned
# so workers never import ddddocr itself, which loads OpenCV: about 18 MB per worker for nothing.
MODEL_COLUMNS = {
    "common_old": (0, 6749, 4410, 78, 7721, 5806, 6977, 5961, 409, 6979, 2879),
    "common": (0, 4733, 4018, 2851, 309, 3606, 5223, 13, 6794, 4919, 4725),
}


# Models trained by this project (training/), shipped in worker/models/: their output is already the
# probabilities of blank and "0".."9", in that order.
OWN_MODELS = {"digits_crnn": Path(__file__).resolve().parent / "models" / "digits_crnn.onnx"}
KNOWN_MODELS = (*MODEL_COLUMNS, *OWN_MODELS)

# Every model's first look keeps some of the image's own margin around the content.
FIRST_LOOK = Look("standard")
# When that reading is unsure, ddddocr's models look again with the content cropped tight (glyphs
# filling the height, as in the full-frame captchas they were trained on): once per view, the colour view
# as it is and the standard view narrowed (unstretched, it is close to the first look). Measured on the
# corpus: within 0.2 points of all four tight looks (each view x each stretch) for half their cost, and
# 3 points more right than the same looks with a margin.
DDDDOCR_RETRY_LOOKS = (Look("colour_distance", "tight"), Look("standard", "tight", NARROW_STRETCH))
# Our model trained with a margin around its digits and on unstretched views 3 times in 4
# (training/train.py); tight or narrowed looks cost time and read fewer images right.
OWN_LOOKS = tuple(Look(view) for view in VIEWS)


def model_path(name: str) -> Path:
    """Our own model's file, or the ONNX file inside the installed ddddocr wheel (found without
    importing the package)."""
    if name in OWN_MODELS:
        return OWN_MODELS[name]
    spec = importlib.util.find_spec("ddddocr")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ddddocr is not installed: its wheel carries the models")
    return Path(next(iter(spec.submodule_search_locations))) / f"{name}.onnx"


def decode_digits(probabilities: np.ndarray, digits: int) -> tuple[str, float]:
    """The most probable string of exactly `digits` digits in a (T, 11) output and its probability;
    ("", 0.0) when the output cannot hold that many."""
    labels, probability = decode_fixed_length(probabilities, digits, beam=BEAM)
    if len(labels) != digits:
        return "", 0.0
    return "".join(DIGITS[label - 1] for label in labels), probability


@dataclass(frozen=True)
class Candidate:
    """The recognizer's best string for an image; `confidence` is the model probability of `text`. Whether
    it becomes the answer is the answering policy's call (worker/answering.py)."""

    text: str
    confidence: float
    model: str = ""
    normalisation: str = ""


class Model:
    """One ONNX session plus the charset columns of blank and the ten digits."""

    def __init__(self, name: str, ort_threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.name = name
        self.session = ort.InferenceSession(str(model_path(name)), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.columns = np.array(MODEL_COLUMNS[name]) if name in MODEL_COLUMNS else None
        self.retry_looks = DDDDOCR_RETRY_LOOKS if self.columns is not None else OWN_LOOKS

    def digit_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(T, 11) probabilities of blank + digits, renormalised over those classes only."""
        output = self.session.run(None, {self.input_name: batch})[0]
        if self.columns is None:  # our own model: (1, T, 11) probabilities already
            probabilities = output[0].astype(np.float64)
            return probabilities / probabilities.sum(axis=1, keepdims=True)
        logits = output[:, 0, :] if output.shape[1] == 1 else output[0]
        chosen = logits[:, self.columns].astype(np.float64)
        chosen = np.exp(chosen - chosen.max(axis=1, keepdims=True))
        return chosen / chosen.sum(axis=1, keepdims=True)


class Recognizer:
    """Reads digit captchas; meant as one per worker process (sessions load once).

    Workers pass `Settings.models` (common_old, then our digits_crnn as a second opinion); the
    argument's default, common_old alone, is the recognizer before our model. Measured on the corpus:
    ddddocr's "common" adds about one point of accuracy, no answered-rate, ~70 MB of RSS and doubles
    the retry cost. Retry thresholds on cached readings: 0.5 -> 0.795, 0.7 -> 0.804, 0.8 -> 0.804,
    0.9 -> 0.802, every image -> 0.800 (a retry can replace a right first reading with a wrong one).
    """

    def __init__(self, models: tuple[str, ...] = ("common_old",), ort_threads: int = 1,
                 retry_below: float = 0.7, confirm_below: float = 0.99) -> None:
        unknown = [m for m in models if m not in KNOWN_MODELS]
        if not models or unknown:
            raise ValueError(f"models must be a non-empty subset of {sorted(KNOWN_MODELS)}")
        self.models = [Model(name, ort_threads) for name in models]
        self.retry_below = retry_below
        self.confirm_below = confirm_below

    @classmethod
    def from_settings(cls, settings: Settings) -> Recognizer:
        return cls(settings.models, settings.ort_threads, settings.retry_below, settings.confirm_below)

    def recognize(self, image: Image.Image, digits: int = 4) -> Candidate:
        """The most probable string of exactly `digits` digits, with its probability ("" when none fits).

        1. The first model reads the first look; at or above `confirm_below` that is the answer.
        2. Otherwise the other models read the same look: if each finds the same string, that is the
           answer, with the confidence of :func:`confirmed`.
        3. Otherwise a first reading at or above `retry_below` is the answer as it is; below it, every
           model reads its retry looks and :func:`agreed_answer` chooses (if it chooses the first
           reading's text, the confidence is at least the first reading's).
        """
        if not 1 <= digits <= 8:
            raise ValueError("digits must be between 1 and 8")
        page = prepare(image)
        inputs: dict[Look, np.ndarray] = {}  # each look's model input, shared by the models
        lattices: dict[tuple[int, Look], np.ndarray] = {}

        def lattice(index: int, look: Look) -> np.ndarray:
            if look not in inputs:
                inputs[look] = page.model_input(look, digits)
            if (index, look) not in lattices:
                lattices[index, look] = self.models[index].digit_probabilities(inputs[look])
            return lattices[index, look]

        bests: dict[tuple[int, Look], tuple[str, float]] = {}  # decoded once: the retry reuses them

        def best(index: int, look: Look) -> tuple[str, float]:
            if (index, look) not in bests:
                bests[index, look] = decode_digits(lattice(index, look), digits)
            return bests[index, look]

        first_model = self.models[0]
        text, probability = best(0, FIRST_LOOK)
        alone = Candidate(text, min(probability, 1.0), first_model.name, str(FIRST_LOOK))
        if probability >= self.confirm_below:
            return alone
        others = [best(index, FIRST_LOOK) for index in range(1, len(self.models))]
        if text and others and all(other == text for other, _ in others):
            confidence = confirmed([probability, *(p for _, p in others)])
            return Candidate(text, confidence, self._names(), str(FIRST_LOOK))
        if probability >= self.retry_below:
            return alone
        retry = [[(index, look) for look in model.retry_looks] for index, model in enumerate(self.models)]
        every = [[lattice(*key) for key in looks] for looks in retry]
        found = {best(*key)[0] for looks in retry for key in looks}
        agreed, score = agreed_answer(every, digits, found)
        if not agreed:  # no string of that length fits: say so (the reader refuses), never pad a guess
            return Candidate("", 0.0, first_model.name, str(FIRST_LOOK))
        if agreed == text:  # the retry found the first reading again: that is no reason to doubt it more
            score = max(score, probability)
        return Candidate(agreed, min(score, 1.0), self._names(), "all")

    def _names(self) -> str:
        return "+".join(model.name for model in self.models)


def confirmed(probabilities: list[float]) -> float:
    """Confidence in a string that several models each read as their best: the chance that not all of
    them are wrong, 1 - prod(1 - p). Models trained apart (ddddocr's on its data, ours on synthetic
    captchas) err on different images, so agreement is stronger evidence than either probability."""
    return float(min(1.0, 1.0 - np.prod([1.0 - min(p, 1.0) for p in probabilities])))


def agreed_answer(
    lattices: list[list[np.ndarray]], digits: int, found: set[str] | None = None
) -> tuple[str, float]:
    """The string of `digits` digits the models agree on best, given each model's lattices (one per look).

    Candidates are each lattice's best string; a model scores a candidate with its highest probability
    over its looks; the answer has the highest geometric mean of those scores (a product of experts: a
    string every model finds likely beats one that a single model is sure of). ("", 0.0) if none fits.
    `found`, when given, holds those best strings, decoded by the caller already.
    """
    if found is None:
        found = {decode_digits(lattice, digits)[0] for looks in lattices for lattice in looks}
    candidates = sorted(found - {""})
    if not candidates:
        return "", 0.0
    labels = np.array([[DIGITS.index(c) + 1 for c in candidate] for candidate in candidates])
    per_model = np.array([np.max([forward_probabilities(lattice, labels) for lattice in looks], axis=0)
                          for looks in lattices])
    with np.errstate(divide="ignore"):
        scores = np.exp(np.log(per_model).mean(axis=0))
    chosen = int(np.argmax(scores))
    return candidates[chosen], float(scores[chosen])
