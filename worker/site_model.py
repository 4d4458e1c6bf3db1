"""Read a captcha with a site's own fine-tuned model (an ONNX file the trainer put in Redis).

The trainer measures a model with this same class on the site's held-back samples, so the figures it
reports are what the workers do. A site model reads through the one look that suited its site best,
searches only the characters its samples contained, and strings of the lengths they had (or the
length a request asks for). A request's charset narrows that search further, and ``case: false``
merges each letter's two cases, as for the generic reader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image

from worker.charsets import Alphabet, alphabet
from worker.ctc import decode_fixed_length, forward_probability
from worker.normalise import Look, prepare

BEAM = 32


@dataclass(frozen=True)
class SiteReading:
    """A reading's text and calibrated confidence (what answers, or refuses); for a site model's reading,
    also its network's own probability of that text, uncalibrated (what settles a disagreement with the
    generic reader: calibration makes a model cautious about answering alone, not less often right)."""

    text: str
    confidence: float
    likelihood: float | None = None


class SiteModelReader:
    """One site model's ONNX session and what its metadata says about the site."""

    def __init__(self, onnx: bytes, meta: dict, ort_threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        charset: str = meta["charset"]
        self.learned: str = meta["learned"]
        self.lengths: tuple[int, ...] = tuple(meta["lengths"])
        self.look = Look(meta["look"]["view"], meta["look"]["crop"], meta["look"]["stretch"])
        self.charset = charset
        self.temperature: float = meta.get("temperature", 1.0)  # baked into the model's probabilities

    def alphabet(self, allowed: str | None = None, case: bool = True) -> Alphabet:
        """The learned characters a request may be answered with: those in `allowed` (default: all),
        each letter's two cases one class when `case` is False."""
        if allowed is not None and not case:
            allowed += allowed.swapcase()
        return alphabet("".join(c for c in self.learned if allowed is None or c in allowed), case)

    def read(self, image: Image.Image, lengths: Iterable[int] | None = None,
             classes: Alphabet | None = None, sure_at: float = math.inf) -> SiteReading:
        """The most probable string of one of `lengths` (default: the site's own) of `classes`
        (default: every learned character, case kept); its likelihood only when it is below `sure_at`
        (a sure reading answers alone, and the request path skips that CTC pass)."""
        wanted = tuple(lengths or self.lengths)
        return self.decode(self.outputs(image, max(wanted)), wanted, classes, sure_at=sure_at)

    def outputs(self, image: Image.Image, longest: int | None = None) -> np.ndarray:
        """The model's frames: probabilities of the blank and of every column of its charset."""
        batch = prepare(image).model_input(self.look, longest or max(self.lengths))
        return self.session.run(None, {self.input_name: batch})[0][0].astype(np.float64)

    def decode(self, output: np.ndarray, lengths: Iterable[int] | None = None, classes: Alphabet | None = None,
               temperature: float = 1.0, sure_at: float = math.inf) -> SiteReading:
        """The most probable string in `output`; `temperature` rescales its probabilities first (the
        trainer tries several on the held-back samples before it bakes one into the model)."""
        classes = classes or self.alphabet()
        if not classes.classes:
            return SiteReading("", 0.0)
        probabilities = self._grouped(output if temperature == 1.0 else output ** (1.0 / temperature), classes)
        symbols = classes.symbols
        best, best_labels = SiteReading("", 0.0), []
        for length in tuple(lengths or self.lengths):
            labels, probability = decode_fixed_length(probabilities, length, beam=BEAM)
            if len(labels) == length and probability > best.confidence:
                best = SiteReading("".join(symbols[label - 1] for label in labels), min(probability, 1.0))
                best_labels = labels
        if not best_labels or best.confidence >= sure_at:
            return best
        raw = output if self.temperature == 1.0 else output ** self.temperature
        return SiteReading(best.text, best.confidence, min(forward_probability(self._grouped(raw, classes),
                                                                               best_labels), 1.0))

    def _grouped(self, output: np.ndarray, classes: Alphabet) -> np.ndarray:
        """The blank's and each class's probabilities per frame (a class sums its members' columns)."""
        probabilities = np.stack([output[:, 0], *(
            output[:, [self.charset.index(m) + 1 for m in members if m in self.learned]].sum(axis=1)
            for members in classes.classes)], axis=1)
        return probabilities / probabilities.sum(axis=1, keepdims=True)
