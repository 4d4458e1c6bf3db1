"""A site model's search narrowed by a request: its charset keeps some learned characters, and
``case: false`` merges a letter's two cases into one class whose probabilities add up."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from shared.charsets import ALNUM
from worker.site_model import SiteModelReader

LEARNED = "3ABab"


def _frame(**probabilities: float) -> np.ndarray:
    row = np.zeros(len(ALNUM) + 1, dtype=np.float32)
    for char, probability in probabilities.items():
        row[ALNUM.index(char.removeprefix("_")) + 1] = probability
    return row


def _reader() -> SiteModelReader:
    """A model whose output ignores the image: frame 1 leans to "a" over "A" and "3", frame 2 to "B"."""
    frames = np.stack([_frame(a=0.4, A=0.35, _3=0.25), _frame(B=0.6, b=0.4)])[None]
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 64, None])
    constant = helper.make_node("Constant", [], ["probabilities"], value=numpy_helper.from_array(frames))
    model = helper.make_model(helper.make_graph([constant], "fixed", [image], [output]),
                              opset_imports=[helper.make_opsetid("", 17)])
    meta = {"charset": ALNUM, "learned": LEARNED, "lengths": [2],
            "look": {"view": "standard", "crop": "margin", "stretch": 1.0}}
    return SiteModelReader(model.SerializeToString(), meta)


IMAGE = Image.new("RGB", (120, 40), "white")


def test_case_is_kept_by_default() -> None:
    reading = _reader().read(IMAGE)
    assert reading.text == "aB"
    assert reading.confidence == np.float32(0.4) * np.float32(0.6)


def test_case_false_adds_up_a_letters_two_cases() -> None:
    reader = _reader()
    reading = reader.read(IMAGE, classes=reader.alphabet(case=False))
    assert reading.text == "AB"
    assert round(reading.confidence, 4) == 0.75


def test_a_charset_keeps_only_its_learned_characters() -> None:
    reader = _reader()
    assert reader.read(IMAGE, classes=reader.alphabet("3b")).text == "3b"
    assert reader.alphabet("xyz").classes == ()
    assert reader.read(IMAGE, classes=reader.alphabet("xyz")).text == ""
    merged = reader.alphabet("ab", case=False)
    assert merged.symbols == "AB" and reader.read(IMAGE, classes=merged).text == "AB"
