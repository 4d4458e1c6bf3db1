"""Answer one captcha job in a worker: decode and re-check the image, recognise it, apply the threshold."""

from __future__ import annotations

import time

from PIL import Image

from shared.contract import InputError, OcrAnswer, OcrJob, OcrRefusal
from shared.imaging import ImageLimits, decode_base64, open_image
from shared.settings import Settings
from worker.recognizer import Recognizer
from worker.site_reading import SiteLearning
from worker.wanted import Wanted, read, verdict


class Answerer:
    """Owns the process's one :class:`Recognizer` (models load once) and the answer policy."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = ImageLimits.from_settings(settings)
        self.recognizer = Recognizer.from_settings(settings)
        self.site_learning = SiteLearning(settings)

    def answer_job(self, job: OcrJob) -> OcrAnswer | OcrRefusal:
        """Answer a job's payload; bad input becomes a refusal, never an exception."""
        try:
            data = decode_base64(job.image_base64, self.limits)
            image = open_image(data, self.limits)
        except InputError as error:
            return error.refusal()
        wanted = Wanted.of(job, self.settings.default_digits)
        if job.site is None:
            return self.answer_image(image, min_confidence=job.min_confidence, wanted=wanted)
        return self.site_learning.answer(job.site, image, data, job, wanted, lambda image, min_confidence, asked: (
            self.answer_image(image, min_confidence=min_confidence, wanted=asked)))

    def answer_image(
        self,
        image: Image.Image,
        digits: int | None = None,
        min_confidence: float | None = None,
        max_digits: int | None = None,
        wanted: Wanted | None = None,
    ) -> OcrAnswer | OcrRefusal:
        """Recognise a decoded image; refuse the answer when it is less probable than allowed.

        ``wanted`` says what to read (worker/wanted.py); without it, ``digits`` to ``max_digits`` digits
        (every length is read and the most probable string wins).
        """
        if wanted is None:
            digits = digits or self.settings.default_digits
            wanted = Wanted(digits, max(max_digits or digits, digits))
        threshold = self.settings.min_confidence if min_confidence is None else min_confidence
        started = time.perf_counter()
        candidate = read(self.recognizer, image, wanted)
        model_ms = round((time.perf_counter() - started) * 1000, 2)
        return verdict(candidate, wanted, threshold, model_ms)
