"""How a site request's answer is made from the site model's reading and the generic reader's: the
model's calibration decides when it answers alone, its own probability which text wins a disagreement."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.fixed_site_model import fixed_model, frame
from worker.charsets import alphabet
from worker.site_model import SiteModelReader, SiteReading
from worker.site_reading import served

SURE_AT = 0.96


def test_a_disagreement_neither_is_sure_of_goes_to_the_models_own_probability() -> None:
    own = SiteReading("1234", confidence=0.30, likelihood=0.90)  # calibrated cautious, usually right
    answer = served(own, SURE_AT, lambda: SiteReading("7234", 0.50))
    assert answer == own and answer.confidence < SURE_AT  # its text, still refused at the threshold


def test_the_generic_readers_sure_answer_stands_against_an_unsure_model() -> None:
    generic = SiteReading("7234", 0.97)
    assert served(SiteReading("1234", 0.30, likelihood=0.99), SURE_AT, lambda: generic) == generic


def test_a_less_probable_model_reading_loses_the_disagreement() -> None:
    generic = SiteReading("7234", 0.50)
    assert served(SiteReading("1234", 0.30, likelihood=0.40), SURE_AT, lambda: generic) == generic


LEARNED = alphabet("0123456789ABCabc", case=True)  # a site that draws both cases of a, b and c


def test_the_generic_readers_guessed_case_confirms_the_model_and_never_overrides_it() -> None:
    own = SiteReading("aB12", 0.60, likelihood=0.40)
    confirmed = served(own, SURE_AT, lambda: SiteReading("ab12", 0.97), LEARNED)
    assert confirmed.text == "aB12" and confirmed.confidence >= SURE_AT  # the model's case, made surer
    # Sure of another text: the model's reading stands, refused as it was.
    assert served(own, SURE_AT, lambda: SiteReading("Cb12", 0.99), LEARNED) == own


def test_a_generic_reading_whose_letters_have_one_case_on_the_site_still_answers() -> None:
    generic = SiteReading("x912", 0.97)  # "x" is not drawn in the other case there
    assert served(SiteReading("aB12", 0.30, likelihood=0.99), SURE_AT, lambda: generic, LEARNED) == generic


def test_the_likelihood_undoes_the_temperature_baked_into_the_model() -> None:
    raw = [frame(_1=0.8, _2=0.2), frame(_2=0.9, _1=0.1)]
    temperature = 2.0
    baked = [row ** (1 / temperature) / (row ** (1 / temperature)).sum() for row in raw]
    onnx, meta = fixed_model(baked, "12")
    reader = SiteModelReader(onnx, {**meta, "temperature": temperature})
    image = Image.new("L", (80, 30), 255)  # the fixed model ignores its input
    reading = reader.read(image)
    assert reading.text == "12"
    assert reading.confidence < 0.8 * 0.9 < reading.likelihood + 1e-9
    assert reading.likelihood == pytest.approx(0.8 * 0.9, rel=1e-4)
    assert np.isclose(reading.likelihood, reader.decode(reader.outputs(image), temperature=0.5).confidence)


def test_a_reading_sure_enough_to_answer_alone_skips_the_likelihood() -> None:
    onnx, meta = fixed_model([frame(_1=0.9, _2=0.1), frame(_2=0.9, _1=0.1)], "12")
    reader = SiteModelReader(onnx, {**meta, "temperature": 2.0})
    image = Image.new("L", (80, 30), 255)
    assert reader.read(image, sure_at=0.5).likelihood is None  # 0.81: answered without the CTC pass
    assert reader.read(image, sure_at=0.9).likelihood is not None
