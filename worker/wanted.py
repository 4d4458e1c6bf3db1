"""What a job asks the recognizer for (characters, lengths, an expression, alternatives) and how its
reading becomes the answer or a refusal: the answer policy, the same for every charset."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from shared.charsets import DIGITS, characters
from shared.contract import Alternative, ErrorCode, OcrAnswer, OcrJob, OcrRefusal
from worker.charsets import CASE_GUESS, DIGIT_ALPHABET, Alphabet, alphabet
from worker.expressions import INPUT_LENGTH, MATH_ALPHABET, SHAPES, value
from worker.recognizer import Candidate, Recognizer


@dataclass(frozen=True)
class Wanted:
    """A reading's question: strings of `shortest`..`longest` characters of `alphabet`, or (`math`) an
    arithmetic expression; `alternatives` > 1 asks for that many most probable answers."""

    shortest: int
    longest: int
    alphabet: Alphabet = DIGIT_ALPHABET
    math: bool = False
    alternatives: int = 1

    @classmethod
    def of(cls, job: OcrJob, default_length: int) -> Wanted:
        shortest, longest = job.lengths(default_length)
        chosen = alphabet(characters(job.charset or "digits"), bool(job.case))
        math = bool(job.math)
        return cls(shortest, longest, MATH_ALPHABET if math else chosen, math, job.alternatives or 1)


def read(recognizer: Recognizer, image: Image.Image, wanted: Wanted) -> Candidate:
    """The most probable answer over every length asked for (the scores are probabilities of whole
    strings, so they compare), with the next most probable ones of any length when asked for."""
    if wanted.math:
        return recognizer.recognize(image, INPUT_LENGTH, MATH_ALPHABET, SHAPES, wanted.alternatives)
    readings = [case_weighed(recognizer.recognize(image, length, wanted.alphabet,
                                                  alternatives=wanted.alternatives), wanted.alphabet)
                for length in range(wanted.shortest, wanted.longest + 1)]  # fmt: skip
    best = max(readings, key=lambda found: found.confidence)
    if wanted.alternatives <= 1:
        return best
    others = {text: p for reading in readings
              for text, p in ((reading.text, reading.confidence), *reading.alternatives)}  # fmt: skip
    others.pop(best.text, None)
    ranked = sorted(((text, p) for text, p in others.items() if text), key=lambda item: -item[1])
    return replace(best, alternatives=tuple(ranked[: wanted.alternatives - 1]))


def case_weighed(candidate: Candidate, chosen: Alphabet) -> Candidate:
    """`candidate` with each string's probability times :data:`CASE_GUESS` for every letter whose case
    it only guessed (none unless `chosen` keeps both cases of a letter)."""
    def weighed(text: str, probability: float) -> float:
        return probability * CASE_GUESS ** chosen.case_guesses(text)

    alternatives = tuple(sorted(((text, weighed(text, p)) for text, p in candidate.alternatives),
                                key=lambda item: -item[1]))
    return replace(candidate, confidence=weighed(candidate.text, candidate.confidence),
                   alternatives=alternatives)


def verdict(
    candidate: Candidate, wanted: Wanted, threshold: float, model_ms: float
) -> OcrAnswer | OcrRefusal:
    """The answer, or the refusal when the reading is not of the shape asked for or less probable than
    `threshold`."""
    confidence = round(candidate.confidence, 4)
    if wanted.math and not candidate.text:
        return OcrRefusal(error=ErrorCode.NOT_AN_EXPRESSION, detail="no arithmetic expression found",
                          confidence=confidence)  # fmt: skip
    if not wanted.math and not wanted.shortest <= len(candidate.text) <= wanted.longest:
        found = "digits" if wanted.alphabet.is_digits() else "characters"
        detail = f"fewer than {wanted.shortest} {found} found"
        return OcrRefusal(error=ErrorCode.TOO_FEW_DIGITS, detail=detail, confidence=confidence)
    if candidate.confidence < threshold:
        detail = f"low confidence: {confidence:.4f} is below {threshold}"
        return OcrRefusal(error=ErrorCode.LOW_CONFIDENCE, detail=detail, confidence=confidence)
    alternatives = None
    if wanted.alternatives > 1:
        ranked = ((candidate.text, candidate.confidence), *candidate.alternatives)
        alternatives = [Alternative(text=text, number=number(text, wanted), probability=round(p, 4))
                        for text, p in ranked]  # fmt: skip
    return OcrAnswer(number=number(candidate.text, wanted), text=candidate.text, confidence=confidence,
                     model_ms=model_ms, alternatives=alternatives)  # fmt: skip


def number(text: str, wanted: Wanted) -> int | None:
    """An expression's value; the text as an integer when it is all digits; else none."""
    if wanted.math:
        return value(text)
    return int(text) if text and all(c in DIGITS for c in text) else None
