"""Letters and arithmetic in the recognizer: case merging, shapes searched, exact length, alternatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.charsets import LETTERS, characters
from shared.contract import OcrJob
from tests.prerequisites import unavailable
from worker.charsets import CASE_GUESS, alphabet
from worker.ctc import decode_fixed_length
from worker.expressions import MATH_ALPHABET, SHAPES, value
from worker.normalise import prepare
from worker.recognizer import FIRST_LOOK, Candidate, Model, Recognizer, decode
from worker.wanted import Wanted, read, verdict

ALNUM_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus_alnum"
MATH_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus_math" / "npm_svg_captcha_math"
FLASK = ALNUM_CORPUS / "py_flask_simple_captcha" / "0000_WPYNZW.png"  # six upper-case letters
MIXED = ALNUM_CORPUS / "npm_svg_captcha" / "0002_EGQu.png"  # both cases, read "egqu" and sure of it
SUM = MATH_CORPUS / "0000_13.png"  # "7+6"


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    if not all(path.is_file() for path in (FLASK, MIXED, SUM)):
        unavailable(f"no letter or arithmetic corpus beside the project ({ALNUM_CORPUS.parent})")
    return Recognizer(("common_old", "digits_crnn"))


def test_ignoring_case_sums_each_letters_two_columns_before_the_search() -> None:
    model = Model("common_old", ort_threads=1)
    batch = prepare(Image.open(FLASK)).model_input(FIRST_LOOK, 6)
    cased = model.probabilities(batch, alphabet(LETTERS, case=True))  # blank, A..Z, a..z
    merged = model.probabilities(batch, alphabet(characters("letters"), case=False))  # blank, aA..zZ
    assert cased.shape[1] == 53 and merged.shape[1] == 27
    assert np.allclose(merged.sum(axis=1), 1.0)
    assert np.allclose(merged[:, 0], cased[:, 0])
    for index in range(26):  # "a" is merged column 1 + index; cased "A" is 1 + index, "a" 27 + index
        assert np.allclose(merged[:, 1 + index], cased[:, 1 + index] + cased[:, 27 + index])


def test_an_alphabet_keeps_case_unless_a_class_holds_a_letters_two_cases() -> None:
    assert alphabet("0123456789", case=False).keeps_case()
    assert alphabet("Ab7", case=True).keeps_case()
    assert not alphabet("Ab7", case=False).keeps_case()
    assert not alphabet("abc", case=False).keeps_case()  # "a" answered for an "A" too


def test_letters_answer_in_the_case_asked_for(recognizer: Recognizer) -> None:
    image = Image.open(FLASK)
    assert read(recognizer, image, Wanted(6, 6, alphabet(characters("letters"), False))).text == "wpynzw"
    assert read(recognizer, image, Wanted(6, 6, alphabet(characters("upper"), False))).text == "WPYNZW"
    assert read(recognizer, image, Wanted(6, 6, alphabet(characters("upper"), True))).text == "WPYNZW"


def test_a_letters_case_the_models_only_guess_counts_as_a_coin_flip(recognizer: Recognizer) -> None:
    cased = Wanted(4, 4, alphabet(characters("alnum"), True))
    raw = recognizer.recognize(Image.open(MIXED), 4, cased.alphabet)
    read_cased = read(recognizer, Image.open(MIXED), cased)
    assert read_cased.text == raw.text and raw.text != "EGQu" and raw.confidence > 0.9  # sure, wrong in case
    assert read_cased.confidence == pytest.approx(raw.confidence * CASE_GUESS ** 4)
    assert verdict(read_cased, cased, 0.96, 1.0).ok is False
    caseless = read(recognizer, Image.open(MIXED), Wanted(4, 4, alphabet(characters("alnum"), False)))
    assert caseless.text.lower() == "egqu" and caseless.confidence >= raw.confidence  # nothing to guess
    assert alphabet("0123456789", True).case_guesses("0427") == alphabet("abc", True).case_guesses("abc") == 0


def test_exact_length_over_letters_is_improbable_when_wrong(recognizer: Recognizer) -> None:
    wanted = Wanted(6, 6, alphabet(characters("letters"), False))
    right = read(recognizer, Image.open(FLASK), wanted)
    short = read(recognizer, Image.open(FLASK), Wanted(4, 4, wanted.alphabet))
    assert len(short.text) == 4 and short.confidence < 0.01 < 0.96 < right.confidence
    refusal = verdict(short, Wanted(4, 4, wanted.alphabet), 0.96, 1.0)
    assert refusal.ok is False and refusal.error == "low_confidence"
    answer = verdict(right, wanted, 0.96, 1.0)
    assert answer.ok and answer.text == "wpynzw" and answer.number is None


def test_an_all_digit_answer_of_another_charset_has_its_number() -> None:
    digits = Wanted(4, 4, alphabet("0123456789abc", False))
    assert verdict(Candidate("0420", 0.99), digits, 0.96, 1.0).number == 420
    assert verdict(Candidate("04a0", 0.99), digits, 0.96, 1.0).number is None


def test_math_reads_the_expression_and_answers_its_value(recognizer: Recognizer) -> None:
    wanted = Wanted(1, 1, math=True, alternatives=2)
    reading = read(recognizer, Image.open(SUM), wanted)
    answer = verdict(reading, wanted, 0.96, 1.0)
    assert answer.ok and answer.text == "7+6" and answer.number == 13
    assert [a.text for a in answer.alternatives] == ["7+6", reading.alternatives[0][0]]
    assert len(answer.alternatives) == 2 and answer.alternatives[1].probability < answer.confidence


def test_a_captcha_that_is_no_expression_is_refused(recognizer: Recognizer) -> None:
    wanted = Wanted(1, 1, math=True)
    refusal = verdict(read(recognizer, Image.open(FLASK), wanted), wanted, 0.96, 1.0)
    assert refusal.ok is False and refusal.confidence < 0.1


def test_the_search_holds_only_expression_shapes() -> None:
    # Frames that spell "7+6+" most probably: no shape allows it, so the best is an expression of 7+6.
    symbols = MATH_ALPHABET.symbols
    spelled = "7-+-6-+-"
    probs = np.full((len(spelled), len(symbols) + 1), 0.01)
    for row, char in enumerate(spelled):
        probs[row, 0 if char == "-" else symbols.index(char) + 1] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    found = decode(probs, 5, MATH_ALPHABET, SHAPES, top=5)
    assert found[0][0].startswith("7+6") and value(found[0][0]) == 13
    assert len(found) == 5 and all(value(text) is not None for text, _ in found)
    labels, _ = decode_fixed_length(probs, 4)
    assert "".join(symbols[label - 1] for label in labels) == "7+6+"  # unconstrained, it would be this


@pytest.mark.parametrize("expression, expected", [("3+5=?", 8), ("2-9", -7), ("4×3?", 12), ("12+7=", 19)])
def test_value_of_an_expression(expression: str, expected: int) -> None:
    assert value(expression) == expected


def test_job_fields_combine_or_are_refused() -> None:
    assert OcrJob(image_base64="x", charset="letters", length={"min": 4, "max": 6}).lengths(4) == (4, 6)
    assert OcrJob(image_base64="x", digits=5, max_digits=6).lengths(4) == (5, 6)
    for fields in ({"charset": "abc!"}, {"charset": "letters", "digits": 4}, {"math": True, "length": 3},
                   {"length": 9}, {"length": {"min": 5, "max": 4}}, {"alternatives": 6},
                   {"length": 4, "digits": 4}):  # fmt: skip
        with pytest.raises(ValueError):
            OcrJob(image_base64="x", **fields)
