"""A site model whose output ignores the image (an ONNX graph of one constant), so a test knows exactly
what a worker that reads with it answers: the frames give each character's probability in turn."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from shared.charsets import ALNUM


def frame(**probabilities: float) -> np.ndarray:
    """One output frame; a digit is named with a leading underscore (``_3=0.25``)."""
    row = np.zeros(len(ALNUM) + 1, dtype=np.float32)
    for char, probability in probabilities.items():
        row[ALNUM.index(char.removeprefix("_")) + 1] = probability
    return row


def fixed_model(frames: list[np.ndarray], learned: str) -> tuple[bytes, dict]:
    """(ONNX bytes, metadata) as the trainer stores a promoted model: a site of ``learned`` characters
    whose captchas are ``len(frames)`` long."""
    output = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 64, None])
    constant = helper.make_node("Constant", [], ["probabilities"],
                                value=numpy_helper.from_array(np.stack(frames)[None]))
    model = helper.make_model(helper.make_graph([constant], "fixed", [image], [output]),
                              opset_imports=[helper.make_opsetid("", 17)])
    meta = {"charset": ALNUM, "learned": learned, "lengths": [len(frames)],
            "look": {"view": "standard", "crop": "margin", "stretch": 1.0}}
    return model.SerializeToString(), meta
