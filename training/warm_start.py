"""Continue training from an exported ONNX model, so a longer run need not start from random weights.

The export folds each BatchNorm into its convolution, so the convolution weights are taken as they are
and each BatchNorm is set to pass its input through (plus the folded bias) on a calibration batch:
its running statistics and its scale are that batch's, so the network starts out computing what the
ONNX file computes. The GRU's gates are reordered from ONNX's (update, reset, new) to torch's
(reset, update, new).
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import nn

from training.model import CRNN


def _onnx_weights(path: Path) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor],
                                       tuple[torch.Tensor, torch.Tensor]]:
    """(convolution weight and bias pairs in order, GRU W/R/B, classifier weight and bias)."""
    graph = onnx.load(str(path)).graph
    tensors = {init.name: torch.from_numpy(numpy_helper.to_array(init).copy()) for init in graph.initializer}
    convs = [(tensors[node.input[1]], tensors[node.input[2]])
             for node in graph.node if node.op_type == "Conv"]
    gru = next(node for node in graph.node if node.op_type == "GRU")
    matmul = next(node for node in graph.node if node.op_type == "MatMul" and node.input[1] in tensors)
    classifier = (tensors[matmul.input[1]].T.contiguous(), tensors["network.classify.bias"])
    return convs, [tensors[name] for name in gru.input[1:4]], classifier


def _torch_gate_order(onnx_gates: torch.Tensor, hidden: int) -> torch.Tensor:
    update, reset, new = onnx_gates[:hidden], onnx_gates[hidden:2 * hidden], onnx_gates[2 * hidden:]
    return torch.cat((reset, update, new))


@torch.no_grad()
def load_onnx(network: CRNN, path: Path, calibration: torch.Tensor) -> None:
    """Give `network` the weights of the ONNX model at `path`; `calibration` is a batch of inputs.

    A network with more classes (a larger charset starting with the file's) takes the file's classifier
    rows for the classes they share; its other rows keep their random start."""
    convs, (w, r, b), (weight, bias) = _onnx_weights(path)
    network.eval()
    folded_bias = None
    x = calibration
    pending = iter(convs)
    for module in network.features:
        if isinstance(module, nn.Conv2d):
            conv_weight, folded_bias = next(pending)
            module.weight.copy_(conv_weight)
        elif isinstance(module, nn.BatchNorm2d):
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            module.running_mean.copy_(mean)
            module.running_var.copy_(var)
            module.weight.copy_(torch.sqrt(var + module.eps))
            module.bias.copy_(mean + folded_bias)
        x = module(x)
    hidden = network.rnn.hidden_size
    for direction, suffix in enumerate(("", "_reverse")):
        getattr(network.rnn, f"weight_ih_l0{suffix}").copy_(_torch_gate_order(w[direction], hidden))
        getattr(network.rnn, f"weight_hh_l0{suffix}").copy_(_torch_gate_order(r[direction], hidden))
        biases = b[direction]
        getattr(network.rnn, f"bias_ih_l0{suffix}").copy_(_torch_gate_order(biases[:3 * hidden], hidden))
        getattr(network.rnn, f"bias_hh_l0{suffix}").copy_(_torch_gate_order(biases[3 * hidden:], hidden))
    shared = min(weight.shape[0], network.classify.out_features)
    network.classify.weight[:shared].copy_(weight[:shared])
    network.classify.bias[:shared].copy_(bias[:shared])
    network.train()
