"""Train a CRNN on synthetic captchas of a charset and export it to ONNX for the workers.

Usage (from the project root, in a separate virtualenv: torch is for training only, workers run ONNX):
    python3 -m venv .venv-train && .venv-train/bin/pip install torch==2.13.0 onnx pillow numpy
    .venv-train/bin/python -m training.train --minutes 90 --out worker/models/digits_crnn.onnx
    .venv-train/bin/python -m training.train --charset alnum --resume worker/models/digits_crnn.onnx \
        --minutes 45 --out trainer/models/alnum_crnn.onnx
    .venv-train/bin/python -m training.train --charset alnum --resume trainer/models/alnum_crnn.onnx \
        --minutes 55 --lr 1e-3 --out trainer/models/alnum_crnn.onnx

The corpus is never read here: every image is drawn by `training.synth` and normalised by the
workers' own `worker.normalise`, so training and serving see the same views. The learning rate
follows a cosine over the wall-clock budget, so a run of any length ends annealed.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from shared.charsets import ALNUM, DIGITS
from training.model import WIDTH_PER_FRAME, CRNN, Probabilities
from training.synth import captcha, random_text
from training.warm_start import load_onnx
from worker.normalise import Look, prepare

MAX_WIDTH = 320  # wider views are rare; capping keeps a batch's padding bounded
BUCKET = 4  # batches drawn at once and sorted by width, so a batch pads little
CALIBRATION = 256  # samples that set the batch norms when resuming from an ONNX file
CHARSETS = {"digits": DIGITS, "alnum": ALNUM}
CHARSET_METADATA = "charset"  # the ONNX metadata key the workers read a model's columns from


def sample(rng: random.Random, charset: str = DIGITS) -> tuple[np.ndarray, list[int]]:
    """One synthetic captcha through one of the workers' looks: (64, W) float32, labels 1..len(charset)."""
    text = random_text(rng, charset)
    page = prepare(captcha(rng, text, charset))
    view = "standard" if rng.random() < 0.7 else "colour_distance"
    look = Look(view, stretch=1.0 if rng.random() < 0.75 else rng.choice((0.75, 1.3)))
    array = page.model_input(look, len(text))[0, 0]
    if array.shape[1] > MAX_WIDTH:  # squeeze rather than crop: a crop could cut off a labelled digit
        squeezed = Look(view, stretch=look.stretch * MAX_WIDTH / array.shape[1])
        array = page.model_input(squeezed, len(text))[0, 0][:, :MAX_WIDTH]
    return array, [charset.index(char) + 1 for char in text]


class Captchas(IterableDataset):
    """An endless stream of fresh synthetic samples; each loader worker has its own seed and yields
    runs of similar width (the loader batches each worker's consecutive samples)."""

    def __init__(self, seed: int, batch: int, charset: str) -> None:
        self.seed = seed
        self.batch = batch
        self.charset = charset

    def __iter__(self):
        info = get_worker_info()
        rng = random.Random(self.seed * 1000 + (info.id if info else 0))
        while True:
            pool = sorted((sample(rng, self.charset) for _ in range(BUCKET * self.batch)),
                          key=lambda s: s[0].shape[1])
            chunks = [pool[i:i + self.batch] for i in range(0, len(pool), self.batch)]
            rng.shuffle(chunks)
            for chunk in chunks:
                yield from chunk


def collate(batch: list[tuple[np.ndarray, list[int]]]) -> tuple[torch.Tensor, ...]:
    """Pad to the widest image with each image's own background; CTC gets every image's true length."""
    width = max(array.shape[1] for array, _ in batch)
    width += -width % WIDTH_PER_FRAME
    images = np.stack([np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=float(np.median(a)))
                       for a, _ in batch])[:, None]
    frames = torch.tensor([a.shape[1] // WIDTH_PER_FRAME for a, _ in batch])
    labels = torch.tensor([d for _, digits in batch for d in digits])
    lengths = torch.tensor([len(digits) for _, digits in batch])
    return torch.from_numpy(images), frames, labels, lengths


def greedy(logits: torch.Tensor, frames: torch.Tensor) -> list[list[int]]:
    """Best-path CTC decoding, only for the training log's exact-match rate (the workers search properly)."""
    best = logits.argmax(-1)
    out = []
    for row, count in zip(best.tolist(), frames.tolist()):
        labels, previous = [], 0
        for label in row[:count]:
            if label and label != previous:
                labels.append(label)
            previous = label
        out.append(labels)
    return out


def export(network: CRNN, path: Path, charset: str, temperature: float = 1.0) -> None:
    """ONNX with a dynamic width and the charset in its metadata, as the workers load it."""
    network.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Probabilities(network, temperature), torch.zeros(1, 1, 64, 160), str(path), input_names=["image"],
                      output_names=["probabilities"], opset_version=17, dynamo=False,
                      dynamic_axes={"image": {0: "batch", 3: "width"},
                                    "probabilities": {0: "batch", 1: "frames"}})
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {CHARSET_METADATA: charset})
    onnx.save(model, str(path))
    network.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=90.0)
    parser.add_argument("--charset", choices=sorted(CHARSETS), default="digits")
    parser.add_argument("--out", type=Path, default=Path("worker/models/digits_crnn.onnx"))
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--loaders", type=int, default=2, help="processes drawing captchas")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the network")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resume", type=Path, default=None,
                        help="start from these weights (a .pt saved beside an export, or an exported .onnx) "
                             "instead of at random")
    parser.add_argument("--export-every", type=float, default=10.0, help="minutes between ONNX snapshots")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    # Denormal floats (from saturated GRU gates) made steps 3x slower after 20 minutes on the CPU.
    torch.set_flush_denormal(True)
    charset = CHARSETS[args.charset]
    network = CRNN(classes=len(charset) + 1)
    if args.resume and args.resume.suffix == ".onnx":
        rng = random.Random(-args.seed)
        calibration = collate([sample(rng, charset) for _ in range(CALIBRATION)])[0]
        load_onnx(network, args.resume, calibration)
    elif args.resume:
        network.load_state_dict(torch.load(args.resume))
    optimiser = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    loader = DataLoader(Captchas(args.seed, args.batch, charset), batch_size=args.batch, collate_fn=collate,
                        num_workers=args.loaders, prefetch_factor=4, persistent_workers=True)
    budget = args.minutes * 60
    start = last_export = time.monotonic()
    losses, right, seen = [], 0, 0
    for step, (images, frames, labels, lengths) in enumerate(loader, 1):
        progress = (time.monotonic() - start) / budget
        if progress >= 1.0:
            break
        warmup = min(1.0, step / 300)  # from random weights, or a fresh optimiser on resumed ones
        for group in optimiser.param_groups:
            group["lr"] = args.lr * warmup * 0.5 * (1 + math.cos(math.pi * progress))
        logits = network(images)
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # T, B, C
        loss = ctc(log_probs, labels, frames, lengths)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(network.parameters(), 5.0)
        optimiser.step()
        losses.append(loss.item())
        truth = torch.split(labels, lengths.tolist())
        right += sum(p == t.tolist() for p, t in zip(greedy(logits.detach(), frames), truth))
        seen += len(truth)
        if step % 100 == 0:
            print(f"step {step} min {(time.monotonic() - start) / 60:.1f} loss {np.mean(losses):.3f} "
                  f"train-exact {right / seen:.3f} lr {optimiser.param_groups[0]['lr']:.2e}", flush=True)
            losses, right, seen = [], 0, 0
        if time.monotonic() - last_export > args.export_every * 60:
            export(network, args.out.with_suffix(".snapshot.onnx"), charset)
            torch.save(network.state_dict(), args.out.with_suffix(".snapshot.pt"))
            last_export = time.monotonic()
    export(network, args.out, charset)
    torch.save(network.state_dict(), args.out.with_suffix(".pt"))
    print(f"exported {args.out} after {step} steps", flush=True)


if __name__ == "__main__":
    main()
