"""Read captchas with the OCR models shipped in the ddddocr wheel (and our own).

One Recognizer per process: it loads the ONNX sessions once. Each reading runs
the first model on the first look (standard view, with a margin) and decodes the
most probable string of exactly N characters of the alphabet asked for (N digits by
default), or of one of the shapes asked for (an arithmetic expression); only when that
reading is unsure does it spend time on other looks and models, keeping the answer
they agree on best.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from shared.settings import Settings
from worker.charsets import CHARACTER_COLUMNS, DIGIT_ALPHABET, Alphabet
from worker.ctc import decode_candidates, forward_probabilities
from worker.normalise import NARROW_STRETCH, VIEWS, Look, prepare

BEAM = 32  # prefix beam width: 16 -> 32 reads 0.3% more images right for +0.2 ms


# Models trained by this project (training/), shipped in worker/models/: their output is already the
# probabilities of blank and "0".."9", in that order.
OWN_MODELS = {"digits_crnn": Path(__file__).resolve().parent / "models" / "digits_crnn.onnx"}
KNOWN_MODELS = (*CHARACTER_COLUMNS, *OWN_MODELS)
# The models that read letters and arithmetic (ours reads digits only): two of ddddocr's, so that their
# agreement can confirm a reading as it does for digits. Measured on ../shared/corpus_alnum (100 images per
# folder): 0.543 mean accuracy with both, common_old alone about 0.47.
TEXT_MODELS = ("common_old", "common")
# A letters reading both models disagree on is retried up to this confidence (digits: retry_below): on
# letters the retry's agreement corrects more first readings than it spoils (measured: +0.3 points).
TEXT_RETRY_BELOW = 0.9

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


def decode(
    probabilities: np.ndarray, length: int, alphabet: Alphabet = DIGIT_ALPHABET,
    shapes: tuple[np.ndarray, ...] = (), top: int = 1,
) -> list[tuple[str, float]]:
    """The `top` most probable strings in a (T, classes + 1) output, best first: of exactly `length`
    characters, or, given `shapes` ((length, classes + 1) masks of what each position may hold), of any
    of those shapes. Empty when the output cannot hold any."""
    found: list[tuple[list[int], float]] = []
    for allowed in shapes or (None,):
        size = length if allowed is None else allowed.shape[0]
        found += decode_candidates(probabilities, size, BEAM, allowed, top)
    found.sort(key=lambda item: -item[1])
    return [("".join(alphabet.symbols[label - 1] for label in labels), p) for labels, p in found[:top]]


def decode_digits(probabilities: np.ndarray, digits: int) -> tuple[str, float]:
    """The most probable string of exactly `digits` digits in a (T, 11) output and its probability;
    ("", 0.0) when the output cannot hold that many."""
    found = decode(probabilities, digits)
    return found[0] if found else ("", 0.0)


@dataclass(frozen=True)
class Candidate:
    """The recognizer's best string for an image; `confidence` is the model probability of `text`. Whether
    it becomes the answer is the answering policy's call (worker/answering.py)."""

    text: str
    confidence: float
    model: str = ""
    normalisation: str = ""
    alternatives: tuple[tuple[str, float], ...] = ()  # the next most probable strings, when asked for


class Model:
    """One ONNX session; it reads any :class:`Alphabet` its charset holds (our own: the digits only)."""

    def __init__(self, name: str, ort_threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.name = name
        self.session = ort.InferenceSession(str(model_path(name)), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.own = name in OWN_MODELS
        self.retry_looks = OWN_LOOKS if self.own else DDDDOCR_RETRY_LOOKS

    def reads(self, alphabet: Alphabet) -> bool:
        return not self.own or alphabet.is_digits()

    def digit_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(T, 11) probabilities of blank + digits, renormalised over those classes only."""
        return self.probabilities(batch, DIGIT_ALPHABET)

    def probabilities(self, batch: np.ndarray, alphabet: Alphabet) -> np.ndarray:
        """(T, classes + 1) probabilities of blank + the alphabet's classes, renormalised over the
        characters of those classes only; a class's probability is the sum of its characters'."""
        output = self.session.run(None, {self.input_name: batch})[0]
        if self.own:  # our own model: (1, T, 11) probabilities already
            probabilities = output[0].astype(np.float64)
            return probabilities / probabilities.sum(axis=1, keepdims=True)
        logits = output[:, 0, :] if output.shape[1] == 1 else output[0]
        columns, owners = alphabet.columns(self.name)
        chosen = logits[:, columns].astype(np.float64)
        chosen = np.exp(chosen - chosen.max(axis=1, keepdims=True))
        chosen /= chosen.sum(axis=1, keepdims=True)
        if owners.size == len(alphabet.classes) + 1:  # one character per class: nothing to merge
            return chosen
        merged = np.zeros((chosen.shape[0], len(alphabet.classes) + 1))
        np.add.at(merged.T, owners, chosen.T)
        return merged


class Recognizer:
    """Reads captchas; meant as one per worker process (sessions load once).

    Workers pass `Settings.models` (common_old, then our digits_crnn as a second opinion); the
    argument's default, common_old alone, is the recognizer before our model. ddddocr's "common" is
    not a default (little gain for its memory and retry cost), and unsure readings are retried below
    `retry_below` only, since a retry can replace a right first reading with a wrong one (the figures
    behind both are in docs/accuracy.md, "Decisions").
    Letters and arithmetic are read by TEXT_MODELS, loaded on the first such reading so that a
    digits-only worker never pays for them.
    """

    def __init__(self, models: tuple[str, ...] = ("common_old",), ort_threads: int = 1,
                 retry_below: float = 0.7, confirm_below: float = 0.99) -> None:
        unknown = [m for m in models if m not in KNOWN_MODELS]
        if not models or unknown:
            raise ValueError(f"models must be a non-empty subset of {sorted(KNOWN_MODELS)}")
        self.ort_threads = ort_threads
        self.models = [Model(name, ort_threads) for name in models]
        self.text_models: list[Model] = []
        self.retry_below = retry_below
        self.confirm_below = confirm_below

    @classmethod
    def from_settings(cls, settings: Settings) -> Recognizer:
        return cls(settings.models, settings.ort_threads, settings.retry_below, settings.confirm_below)

    def models_for(self, alphabet: Alphabet) -> list[Model]:
        """The models that read `alphabet`: the digit models for digits, else the text models."""
        if alphabet.is_digits():
            return self.models
        if not self.text_models:
            loaded = {model.name: model for model in self.models}
            self.text_models = [loaded.get(name) or Model(name, self.ort_threads) for name in TEXT_MODELS]
        return self.text_models

    def recognize(
        self, image: Image.Image, digits: int = 4, alphabet: Alphabet = DIGIT_ALPHABET,
        shapes: tuple[np.ndarray, ...] = (), alternatives: int = 1,
    ) -> Candidate:
        """The most probable string of exactly `digits` characters of `alphabet` (or, given `shapes`, of
        one of those shapes; `digits` then only sizes the model input), with its probability ("" when
        none fits), and with `alternatives` > 1 the next most probable strings after it.

        1. The first model reads the first look; at or above `confirm_below` that is the answer.
        2. Otherwise the other models read the same look: if each finds the same string, that is the
           answer, with the confidence of :func:`confirmed`.
        3. Otherwise a first reading at or above `retry_below` is the answer as it is; below it, every
           model reads its retry looks and :func:`agreed_answer` chooses (if it chooses the first
           reading's text, the confidence is at least the first reading's).
        """
        if not 1 <= digits <= 8:
            raise ValueError("digits must be between 1 and 8")
        models = self.models_for(alphabet)
        page = prepare(image)
        inputs: dict[Look, np.ndarray] = {}  # each look's model input, shared by the models
        lattices: dict[tuple[int, Look], np.ndarray] = {}

        def lattice(index: int, look: Look) -> np.ndarray:
            if look not in inputs:
                inputs[look] = page.model_input(look, digits)
            if (index, look) not in lattices:
                lattices[index, look] = models[index].probabilities(inputs[look], alphabet)
            return lattices[index, look]

        bests: dict[tuple[int, Look], tuple[str, float]] = {}  # decoded once: the retry reuses them

        def best(index: int, look: Look) -> tuple[str, float]:
            if (index, look) not in bests:
                found = decode(lattice(index, look), digits, alphabet, shapes)
                bests[index, look] = found[0] if found else ("", 0.0)
            return bests[index, look]

        def answer(candidate: Candidate) -> Candidate:
            if alternatives <= 1:
                return candidate
            found = decode(lattice(0, FIRST_LOOK), digits, alphabet, shapes, top=alternatives)
            others = tuple((text, round(p, 4)) for text, p in found if text != candidate.text)
            return replace(candidate, alternatives=others[: alternatives - 1])

        names = "+".join(model.name for model in models)
        text, probability = best(0, FIRST_LOOK)
        alone = Candidate(text, min(probability, 1.0), models[0].name, str(FIRST_LOOK))
        if probability >= self.confirm_below:
            return answer(alone)
        others = [best(index, FIRST_LOOK) for index in range(1, len(models))]
        if text and others and all(other == text for other, _ in others):
            agreeing = [probability, *(p for _, p in others)]
            # ddddocr's two models learnt from the same data and err together on letters: their agreement
            # is not independent evidence (measured: precision 0.961 at 0.96 counted as such, 0.973 not).
            confidence = confirmed(agreeing) if alphabet.is_digits() else max(agreeing)
            return answer(Candidate(text, confidence, names, str(FIRST_LOOK)))
        retry_below = self.retry_below if alphabet.is_digits() else max(self.retry_below, TEXT_RETRY_BELOW)
        if probability >= retry_below:
            return answer(alone)
        retry = [[(index, look) for look in model.retry_looks] for index, model in enumerate(models)]
        every = [[lattice(*key) for key in looks] for looks in retry]
        found = {best(*key)[0] for looks in retry for key in looks}
        agreed, score = agreed_answer(every, digits, found, alphabet)
        if not agreed:  # no string of that length fits: say so (the reader refuses), never pad a guess
            return answer(Candidate("", 0.0, models[0].name, str(FIRST_LOOK)))
        if agreed == text:  # the retry found the first reading again: that is no reason to doubt it more
            score = max(score, probability)
        return answer(Candidate(agreed, min(score, 1.0), names, "all"))


def confirmed(probabilities: list[float]) -> float:
    """Confidence in a string that several models each read as their best: the chance that not all of
    them are wrong, 1 - prod(1 - p). Models trained apart (ddddocr's on its data, ours on synthetic
    captchas) err on different images, so agreement is stronger evidence than either probability."""
    return float(min(1.0, 1.0 - np.prod([1.0 - min(p, 1.0) for p in probabilities])))


def agreed_answer(
    lattices: list[list[np.ndarray]], digits: int, found: set[str] | None = None,
    alphabet: Alphabet = DIGIT_ALPHABET,
) -> tuple[str, float]:
    """The string the models agree on best, given each model's lattices (one per look).

    Candidates are each lattice's best string (of `digits` digits unless `found` says otherwise); a
    model scores a candidate with its highest probability over its looks; the answer has the highest
    geometric mean of those scores (a product of experts: a string every model finds likely beats one
    that a single model is sure of). ("", 0.0) if none fits. `found`, when given, holds those best
    strings (of any lengths), decoded by the caller already.
    """
    if found is None:
        found = {decode_digits(lattice, digits)[0] for looks in lattices for lattice in looks}
    candidates = sorted(found - {""}, key=lambda c: (len(c), c))
    if not candidates:
        return "", 0.0

    def scores_of(lattice: np.ndarray) -> np.ndarray:  # forward probabilities, one length at a time
        result = np.zeros(len(candidates))
        for size in {len(c) for c in candidates}:
            which = [i for i, c in enumerate(candidates) if len(c) == size]
            labels = np.array([alphabet.labels(candidates[i]) for i in which])
            result[which] = forward_probabilities(lattice, labels)
        return result

    per_model = np.array([np.max([scores_of(lattice) for lattice in looks], axis=0) for looks in lattices])
    with np.errstate(divide="ignore"):
        scores = np.exp(np.log(per_model).mean(axis=0))
    chosen = int(np.argmax(scores))
    return candidates[chosen], float(scores[chosen])
