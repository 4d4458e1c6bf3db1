"""The Recognizer end to end, on a few real captchas and on images it must refuse."""

import numpy as np
import pytest
from PIL import Image

from shared.settings import Settings
from tests.prerequisites import corpus_folder
from worker import normalise
from worker.ctc import decode_fixed_length
from worker.recognizer import BEAM, FIRST_LOOK, Recognizer

READ_RIGHT = ["0000_2810.png", "0001_9586.png", "0002_8481.png", "0006_0498.png", "0011_5077.png"]


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """The recognizer as workers build it: the default models of the settings."""
    return Recognizer.from_settings(Settings())


def corpus_image(name: str) -> Image.Image:
    return Image.open(corpus_folder("npm_svg_captcha") / name)


@pytest.mark.parametrize("name", READ_RIGHT)
def test_reads_corpus_captchas(recognizer, name):
    reading = recognizer.recognize(corpus_image(name))
    assert reading.text == name[5:9]
    assert 0.5 < reading.confidence <= 1.0


def test_a_blank_white_image_is_refused(recognizer):
    reading = recognizer.recognize(Image.new("RGB", (160, 60), "white"))
    assert len(reading.text) == 4 and reading.text.isdigit()
    assert reading.confidence < 0.5


@pytest.mark.parametrize("digits", [1, 6, 8])
def test_answers_have_the_requested_number_of_digits(recognizer, digits):
    reading = recognizer.recognize(corpus_image(READ_RIGHT[0]), digits=digits)
    assert len(reading.text) == digits and reading.text.isdigit()
    # A decoded string has a probability above zero; a made-up one (say "0" * digits) has none.
    assert 0.0 < reading.confidence <= 1.0


def test_the_right_length_is_far_more_probable_than_a_wrong_one(recognizer):
    image = corpus_image(READ_RIGHT[0])
    six, four = recognizer.recognize(image, digits=6), recognizer.recognize(image, digits=4)
    assert six.confidence < 0.1 * four.confidence


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16", "LA", "1"])
def test_any_mode_is_read(recognizer, mode):
    image = corpus_image(READ_RIGHT[1]).convert("L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype("<u2") * 257)
    else:
        image = image.convert(mode)
    assert recognizer.recognize(image).text == READ_RIGHT[1][5:9]


def test_transparent_light_on_dark_captcha_is_read(recognizer):
    """Light digits on a transparent canvas: flattened onto black, then inverted."""
    grey = np.asarray(corpus_image(READ_RIGHT[2]).convert("L"))
    rgba = np.zeros(grey.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = 255 - grey  # ink opaque, paper transparent
    assert recognizer.recognize(Image.fromarray(rgba, "RGBA")).text == READ_RIGHT[2][5:9]


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (4000, 1500)])
def test_tiny_and_huge_images_give_an_answer(recognizer, size):
    reading = recognizer.recognize(Image.new("RGB", size, "white"))
    assert len(reading.text) == 4 and reading.text.isdigit() and 0.0 <= reading.confidence <= 1.0


def test_digits_out_of_range_are_rejected(recognizer):
    with pytest.raises(ValueError):
        recognizer.recognize(Image.new("RGB", (10, 10)), digits=9)


def test_single_model_without_retry_makes_one_standard_reading():
    fast = Recognizer(models=("common_old",), retry_below=0.0)
    reading = fast.recognize(Image.new("RGB", (160, 60), "white"))  # unsure, yet no second look
    assert (reading.model, reading.normalisation) == ("common_old", "standard")


def test_agreeing_models_raise_the_first_readings_confidence_and_never_change_its_text():
    alone = Recognizer(("common_old",), retry_below=0.0)
    checked = Recognizer(Settings().models, retry_below=0.0, confirm_below=1.1)  # always ask the others
    folder = corpus_folder("py_captcha")
    answered_by = set()
    for path in sorted(folder.glob("*.png"))[:12]:
        first, both = alone.recognize(Image.open(path)), checked.recognize(Image.open(path))
        assert both.text == first.text
        if both.model == first.model:  # the others disagreed: the first reading stands as it was
            assert both.confidence == first.confidence
        else:
            assert both.model == "common_old+digits_crnn" and both.confidence >= first.confidence
        answered_by.add(both.model)
    assert answered_by == {"common_old", "common_old+digits_crnn"}


def test_retry_keeps_the_most_probable_reading(recognizer):
    image = corpus_image(READ_RIGHT[3])
    page, model = normalise.prepare(image), recognizer.models[0]
    readings = [decode_fixed_length(model.digit_probabilities(page.model_input(look, 4)), 4, beam=BEAM)
                for look in (FIRST_LOOK, *model.retry_looks)]
    retried = Recognizer(models=("common_old",), retry_below=1.1, confirm_below=1.1).recognize(image)
    assert retried.normalisation == "all"
    assert retried.confidence == pytest.approx(max(probability for _, probability in readings))


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError):
        Recognizer(models=("nope",))
