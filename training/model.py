"""Our readers' network: a small CRNN (convolutions, then a bidirectional GRU, then CTC).

Input is what `worker.normalise.to_model_input` makes for the ddddocr models (1 x 64 x W, grey in 0..1,
dark on light), so both kinds of model read the same normalised views. Output: one frame per 4 pixels
of width, probabilities of blank and each character of the model's charset (the columns `worker.ctc`
decodes); the charset travels in the exported ONNX file's metadata.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH_PER_FRAME = 4


def _conv(inputs: int, outputs: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """About 0.2 M parameters: small enough to train on two CPU cores in an hour and to add ~2 ms.
    `classes` is the CTC blank plus the charset's characters."""

    def __init__(self, classes: int, hidden: int = 80) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 16), nn.MaxPool2d(2),                # 32 x W/2
            *_conv(16, 32), nn.MaxPool2d(2),               # 16 x W/4
            *_conv(32, 48), *_conv(48, 48), nn.MaxPool2d((2, 1)),     # 8 x W/4
            *_conv(48, 64), *_conv(64, 64), nn.MaxPool2d((2, 1)),     # 4 x W/4
            *_conv(64, 96), nn.MaxPool2d((4, 1)),          # 1 x W/4
        )
        self.rnn = nn.GRU(96, hidden, bidirectional=True, batch_first=True)
        self.classify = nn.Linear(2 * hidden, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 64, W) -> logits (B, W/4, classes)."""
        features = self.features(images).squeeze(2).transpose(1, 2)  # B, T, C
        return self.classify(self.rnn(features)[0])


class Probabilities(nn.Module):
    """What is exported to ONNX: softmax over the classes, as `worker.ctc` expects; a `temperature`
    above 1 makes an over-sure (fine-tuned) network's probabilities honest."""

    def __init__(self, network: CRNN, temperature: float = 1.0) -> None:
        super().__init__()
        self.network = network
        self.temperature = temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(images) / self.temperature, dim=-1)
