"""Read N-digit numeric captchas with the OCR models shipped in the ddddocr wheel.

One Recognizer per process: it loads the ONNX sessions once. Each reading runs
the first model on the standard normalisation and decodes the most probable
string of exactly N digits; only when that reading is unsure does it spend time
on the other normalisations and models, keeping the most probable answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ddddocr
import numpy as np
import onnxruntime as ort
from ddddocr.models.charset_manager import CharsetManager
from PIL import Image

from worker.ctc import decode_fixed_length
from worker.normalise import NORMALISATIONS

DIGITS = "0123456789"
# Below this confidence the service refuses to answer (422); chosen on the corpus.
DEFAULT_MIN_CONFIDENCE = 0.5
# Model file stem -> (old, beta) flags of ddddocr's charset manager.
_CHARSET_FLAGS = {"common_old": (True, False), "common": (False, True)}


@dataclass(frozen=True)
class Reading:
    """A decoded answer; `confidence` is the model probability of `text`."""

    text: str
    confidence: float
    model: str = ""
    normalisation: str = ""


class _Model:
    """One ONNX session plus the charset columns of blank and the ten digits."""

    def __init__(self, name: str, ort_threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = Path(ddddocr.__file__).parent / f"{name}.onnx"
        self.name = name
        self.session = ort.InferenceSession(str(path), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        charset = CharsetManager()
        charset.load_default_charset(*_CHARSET_FLAGS[name])
        self.columns = np.array([0] + [charset.charset.index(d) for d in DIGITS])

    def digit_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(T, 11) probabilities of blank + digits, renormalised over those classes only."""
        logits = self.session.run(None, {self.input_name: batch})[0]
        logits = logits[:, 0, :] if logits.shape[1] == 1 else logits[0]
        chosen = logits[:, self.columns].astype(np.float64)
        chosen = np.exp(chosen - chosen.max(axis=1, keepdims=True))
        return chosen / chosen.sum(axis=1, keepdims=True)


class Recognizer:
    """Reads digit captchas; thread-compatible but meant as one per worker process."""

    def __init__(self, models: tuple[str, ...] = ("common_old", "common"),
                 ort_threads: int = 1, retry_below: float = 0.9) -> None:
        unknown = [m for m in models if m not in _CHARSET_FLAGS]
        if not models or unknown:
            raise ValueError(f"models must be a non-empty subset of {sorted(_CHARSET_FLAGS)}")
        self.models = [_Model(name, ort_threads) for name in models]
        self.retry_below = retry_below

    def read(self, image: Image.Image, digits: int = 4) -> Reading:
        """The most probable string of exactly `digits` digits, with its probability."""
        if not 1 <= digits <= 8:
            raise ValueError("digits must be between 1 and 8")
        best = self._read_one(self.models[0], "standard", image, digits)
        if best.confidence >= self.retry_below:
            return best
        for model in self.models:
            for normalisation in NORMALISATIONS:
                if (model, normalisation) == (self.models[0], "standard"):
                    continue
                reading = self._read_one(model, normalisation, image, digits)
                if reading.confidence > best.confidence:
                    best = reading
        return best

    def _read_one(self, model: _Model, normalisation: str, image: Image.Image,
                  digits: int) -> Reading:
        batch = NORMALISATIONS[normalisation](image, digits)
        labels, probability = decode_fixed_length(model.digit_probabilities(batch), digits)
        if len(labels) != digits:
            return Reading("0" * digits, 0.0, model.name, normalisation)
        text = "".join(DIGITS[label - 1] for label in labels)
        return Reading(text, min(max(probability, 0.0), 1.0), model.name, normalisation)
