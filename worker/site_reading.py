"""Reading a captcha for a site: the site's own model first, the generic reader when it is unsure, and the
answers the service is sure of kept as samples of that site.

A site model reads in a couple of milliseconds and, once trained, is right far more often than the
generic reader on its own style; when it is unsure (below the service's threshold, or the request's when
higher), the generic reader reads too and the two are combined (agreement raises the confidence as it
does between the generic reader's own models). A request that takes any answer (min_confidence 0) gets
the combined one too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PIL import Image

from shared.charsets import characters
from shared.connection import connect
from shared.contract import ErrorCode, OcrAnswer, OcrJob, OcrRefusal
from shared.settings import Settings
from shared.sites import SiteStore
from worker.charsets import Alphabet
from worker.recognizer import confirmed
from worker.site_model import SiteReading
from worker.site_models import SiteModels
from worker.wanted import Wanted

# (image, min_confidence, what to read) -> the generic reader's answer or refusal
GenericReader = Callable[[Image.Image, float | None, Wanted], OcrAnswer | OcrRefusal]


class SiteLearning:
    """A worker's site models and its writes of sure answers; Redis is reached only once a site is read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: SiteModels | None = None

    @property
    def models(self) -> SiteModels:
        if self._models is None:
            store = SiteStore(connect(self.settings), self.settings.site_max_samples)
            self._models = SiteModels(store, self.settings.site_model_check_s, self.settings.ort_threads)
        return self._models

    def answer(self, site: str, image: Image.Image, data: bytes, job: OcrJob, wanted: Wanted,
               generic: GenericReader) -> OcrAnswer | OcrRefusal:
        """Answer for ``site``; an answer at or above ``self_label_min_confidence`` becomes a sample, unless
        the job says ``learn: false`` or the answer was read ignoring case (its letters' case is a guess,
        and a site keeps case).

        An arithmetic job is the generic reader's alone: a site's samples are labelled with answers, not
        with the expressions drawn."""
        if job.math:
            return generic(image, job.min_confidence, wanted)
        threshold = self.settings.min_confidence if job.min_confidence is None else job.min_confidence
        started = time.perf_counter()
        reader = self.models.reader(site)
        allowed = characters(job.charset) if job.charset else None
        classes = reader.alphabet(allowed, case=job.case is not False) if reader else None
        if reader is None or classes is None or not classes.classes:  # no model, or none of its characters
            answer, read_as = generic(image, job.min_confidence, wanted), wanted.alphabet
        else:
            shortest, longest = job.lengths(0)
            lengths = range(shortest, longest + 1) if shortest else reader.lengths
            site_wanted = Wanted(min(lengths), max(lengths), classes)
            sure_at = max(threshold, self.settings.min_confidence)
            reading = served(reader.read(image, lengths, classes, sure_at), sure_at,
                             lambda: _as_reading(generic(image, 0.0, site_wanted)), classes)
            answer, read_as = _answer_or_refusal(reading, threshold, started), classes
        sure = isinstance(answer, OcrAnswer) and answer.confidence >= self.settings.self_label_min_confidence
        if sure and job.learn is not False and read_as.keeps_case():
            self.models.store.add_sample(site, data, answer.text, "self")
        return answer


def served(own: SiteReading, sure_at: float, generic: Callable[[], SiteReading | None],
           classes: Alphabet | None = None) -> SiteReading:
    """What a site request is answered with: the site model's reading when it is at least `sure_at`;
    otherwise that reading and the generic reader's combined: the same text is surer than either; a
    different one is the generic reader's when it is sure on its own, else the text the model's own
    (uncalibrated) probability or the generic reader's confidence makes more probable, each with its
    calibrated confidence. The trainer calibrates and measures site models through this same rule.

    The generic reader only guesses a letter's case (:data:`worker.charsets.CASE_GUESS`): when its text
    holds a letter whose other case is one of the `classes` asked for too, it confirms the model's
    reading if they agree ignoring case, and otherwise leaves the model's reading as it is."""
    if own.confidence >= sure_at:
        return own
    other = generic()
    if other is None:
        return own
    case_guessed = classes is not None and classes.case_guesses(other.text) > 0
    if other.text == own.text or (case_guessed and other.text.casefold() == own.text.casefold()):
        return SiteReading(own.text, confirmed([own.confidence, other.confidence]))
    if case_guessed:
        return own
    if other.confidence >= sure_at:
        return other
    likelihood = own.confidence if own.likelihood is None else own.likelihood
    return own if likelihood >= other.confidence else other


def _as_reading(answer: OcrAnswer | OcrRefusal) -> SiteReading | None:
    return SiteReading(answer.text, answer.confidence) if isinstance(answer, OcrAnswer) else None


def _answer_or_refusal(reading: SiteReading, threshold: float, started: float) -> OcrAnswer | OcrRefusal:
    confidence = round(reading.confidence, 4)
    if not reading.text or reading.confidence < threshold:
        return OcrRefusal(error=ErrorCode.LOW_CONFIDENCE,
                          detail=f"low confidence: {confidence:.4f} is below {threshold}", confidence=confidence)
    model_ms = round((time.perf_counter() - started) * 1000, 2)
    number = int(reading.text) if reading.text.isdigit() else None
    return OcrAnswer(number=number, text=reading.text, confidence=confidence, model_ms=model_ms)
