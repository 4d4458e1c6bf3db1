"""Answer one captcha job in a worker: decode and re-check the image, recognise it, apply the threshold."""

from __future__ import annotations

import time

from PIL import Image

from shared.contract import ErrorCode, InputError, OcrAnswer, OcrJob, OcrRefusal
from shared.imaging import ImageLimits, decode_image
from shared.settings import Settings
from worker.recognizer import Recognizer


class Answerer:
    """Owns the process's one :class:`Recognizer` (models load once) and the answer policy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = ImageLimits.from_settings(settings)
        self.recognizer = Recognizer.from_settings(settings)

    def answer_job(self, job: OcrJob) -> OcrAnswer | OcrRefusal:
        """Answer a job's payload; bad input becomes a refusal, never an exception."""
        try:
            image = decode_image(job.image_base64, self.limits)
        except InputError as error:
            return error.refusal()
        return self.answer_image(image, job.digits, job.min_confidence, job.max_digits)

    def answer_image(
        self,
        image: Image.Image,
        digits: int | None = None,
        min_confidence: float | None = None,
        max_digits: int | None = None,
    ) -> OcrAnswer | OcrRefusal:
        """Recognise a decoded image; refuse the answer when it is less probable than allowed.

        With ``max_digits`` the length is unknown: every length from ``digits`` to ``max_digits`` is read
        and the most probable string wins (the scores are probabilities of whole strings, so they compare).
        """
        digits = digits or self.settings.default_digits
        max_digits = max(max_digits or digits, digits)
        threshold = self.settings.min_confidence if min_confidence is None else min_confidence
        started = time.perf_counter()
        candidate = max(
            (self.recognizer.recognize(image, length) for length in range(digits, max_digits + 1)),
            key=lambda found: found.confidence,
        )
        model_ms = round((time.perf_counter() - started) * 1000, 2)
        confidence = round(candidate.confidence, 4)
        if not digits <= len(candidate.text) <= max_digits:
            return OcrRefusal(
                error=ErrorCode.TOO_FEW_DIGITS,
                detail=f"fewer than {digits} digits found",
                confidence=confidence,
            )
        if candidate.confidence < threshold:
            return OcrRefusal(
                error=ErrorCode.LOW_CONFIDENCE,
                detail=f"low confidence: {confidence:.4f} is below {threshold}",
                confidence=confidence,
            )
        text = candidate.text
        return OcrAnswer(number=int(text), text=text, confidence=confidence, model_ms=model_ms)
