"""Read N-digit numeric captchas with the OCR models shipped in the ddddocr wheel.

One Recognizer per process: it loads the ONNX sessions once. Each reading runs
the first model on the standard normalisation and decodes the most probable
string of exactly N digits; only when that reading is unsure does it spend time
on the other normalisations and models, keeping the most probable answer.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from worker.ctc import decode_fixed_length
from worker.normalise import LOOKS, VIEWS, Page, prepare, to_model_input

DIGITS = "0123456789"
BEAM = 32  # prefix beam width: 16 -> 32 reads 0.3% more images right for +0.2 ms
# Model file stem -> output columns of the CTC blank and of "0".."9" in the model's charset
# (ddddocr 1.6.1's CharsetManager; tests/unit/test_model_columns.py checks them against it). Pinned
# so workers never import ddddocr itself, which loads OpenCV: about 18 MB per worker for nothing.
MODEL_COLUMNS = {
    "common_old": (0, 6749, 4410, 78, 7721, 5806, 6977, 5961, 409, 6979, 2879),
    "common": (0, 4733, 4018, 2851, 309, 3606, 5223, 13, 6794, 4919, 4725),
}


def model_path(name: str) -> Path:
    """The ONNX file inside the installed ddddocr wheel, found without importing the package."""
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
class Reading:
    """A decoded answer; `confidence` is the model probability of `text`."""

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
        self.columns = np.array(MODEL_COLUMNS[name])

    def digit_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(T, 11) probabilities of blank + digits, renormalised over those classes only."""
        logits = self.session.run(None, {self.input_name: batch})[0]
        logits = logits[:, 0, :] if logits.shape[1] == 1 else logits[0]
        chosen = logits[:, self.columns].astype(np.float64)
        chosen = np.exp(chosen - chosen.max(axis=1, keepdims=True))
        return chosen / chosen.sum(axis=1, keepdims=True)


class Recognizer:
    """Reads digit captchas; meant as one per worker process (sessions load once).

    Defaults from measurements on the corpus: the second model ("common") adds
    about one point of accuracy, no answered-rate, ~70 MB of RSS and doubles the
    retry cost, so one model is the default; retrying below 0.5 gains as much as
    retrying everything for half the time.
    """

    def __init__(self, models: tuple[str, ...] = ("common_old",),
                 ort_threads: int = 1, retry_below: float = 0.5) -> None:
        unknown = [m for m in models if m not in MODEL_COLUMNS]
        if not models or unknown:
            raise ValueError(f"models must be a non-empty subset of {sorted(MODEL_COLUMNS)}")
        self.models = [Model(name, ort_threads) for name in models]
        self.retry_below = retry_below

    def read(self, image: Image.Image, digits: int = 4) -> Reading:
        """The most probable string of exactly `digits` digits, with its probability.

        The first look of the first model answers when it is sure; otherwise every
        (model, look) is read and the most probable answer is kept.
        """
        if not 1 <= digits <= 8:
            raise ValueError("digits must be between 1 and 8")
        page = prepare(image)
        views: dict[str, np.ndarray] = {}
        plan = [(model, look) for model in self.models for look in LOOKS]
        best = self._read_one(*plan[0], page, views, digits)
        if best.confidence >= self.retry_below:
            return best
        for model, look in plan[1:]:
            reading = self._read_one(model, look, page, views, digits)
            if reading.confidence > best.confidence:
                best = reading
        return best

    def _read_one(self, model: Model, look: tuple[str, float], page: Page,
                  views: dict[str, np.ndarray], digits: int) -> Reading:
        view, stretch = look
        if view not in views:
            views[view] = VIEWS[view](page)
        batch = to_model_input(views[view], digits, stretch)
        text, probability = decode_digits(model.digit_probabilities(batch), digits)
        normalisation = view if stretch == 1.0 else f"{view}*{stretch:g}"
        if not text:
            return Reading("0" * digits, 0.0, model.name, normalisation)
        return Reading(text, min(max(probability, 0.0), 1.0), model.name, normalisation)
