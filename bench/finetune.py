"""The trainer's fine-tuning alone, offline: for trying a change to it without the service.

Fine-tunes the site's starting model on the first N images of a ../shared/sites/ folder (every fifth
held back, as the trainer holds back a fifth), in the trainer's time budget, and reads the matching
corpus folder with the kept weights through their best look: greedy exact match, with case kept and
ignoring it. No calibration, no generic reader beside the model: a quick, comparable measure of what
the network learned. Each learning rate in ``--lr`` is tried in turn on the same images (compare them
within one run: these machines differ 2x between hours); ``--rounds`` trains again from the last
round's weights, as if a site were retrained from its own model.

    .venv/bin/python -m bench.finetune --set alnum --folders php_gregwar_captcha --lr 1e-3 3e-3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from bench import output_file, publish
from bench.learning import Folders, label_of
from shared.charsets import ALNUM, DIGITS
from shared.settings import Settings
from trainer.site_training import BASE_MODELS, HELD_BACK_ONE_IN, RESERVED_S
from training.finetune import LOOKS, Encoded, encode, finetune, readings
from training.model import CRNN
from training.train import export


def encoded(paths: list[Path], charset: str) -> list[Encoded]:
    """`<index>_<label>.png` files as the trainer's fine-tuning sees them."""
    return [encode(Image.open(path), label_of(path), charset) for path in paths]


def corpus_read(network: CRNN, samples: list[Encoded], look: int, charset: str) -> tuple[float, float]:
    """Greedy exact match through `look`: (case kept, ignoring case)."""
    def text(columns: list[int]) -> str:
        return "".join(charset[column - 1] for column in columns)

    pairs = [(text(read), text(label)) for read, label in readings(network, samples, look)]
    return (sum(read == label for read, label in pairs) / len(pairs),
            sum(read.casefold() == label.casefold() for read, label in pairs) / len(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["digits", "alnum"], default="digits", dest="kind")
    parser.add_argument("--folders", nargs="+", required=True)
    parser.add_argument("--size", type=int, default=500, help="site images learned from (a fifth held back)")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--markdown", type=output_file, default=None)
    args = parser.parse_args()
    charset = DIGITS if args.kind == "digits" else ALNUM
    folders = Folders.of(args.kind)
    budget = Settings().learn_max_minutes * 60 - RESERVED_S
    lines = ["| generator | lr | round | steps | held-back exact | corpus exact | ignoring case |",
             "|---|---|---|---|---|---|---|"]
    for folder in args.folders:
        site = encoded(folders.images(folders.sites, folder)[:args.size], charset)
        train = [s for i, s in enumerate(site) if i % HELD_BACK_ONE_IN]
        valid = [s for i, s in enumerate(site) if i % HELD_BACK_ONE_IN == 0]
        corpus = encoded(folders.images(folders.corpus, folder), charset)
        for lr in args.lr:
            with tempfile.TemporaryDirectory() as scratch:
                base = BASE_MODELS[charset]
                for round_ in range(1, args.rounds + 1):
                    tuned = finetune(train, valid, base, len(charset) + 1, budget, seed=round_, lr=lr)
                    exact, caseless = corpus_read(tuned.network, corpus, LOOKS.index(tuned.look), charset)
                    lines.append(f"| {folder} | {lr:g} | {round_} | {tuned.steps} | {tuned.best_exact:.3f} "
                                 f"| {exact:.3f} | {caseless:.3f} |")
                    print(lines[-1], flush=True)
                    base = Path(scratch) / f"round{round_}.onnx"
                    export(tuned.network, base, charset)
    publish(lines, args.markdown)


if __name__ == "__main__":
    main()
