"""A site model's confidence calibration, compared on the same trained models: the trainer's rule against
the one it replaced, offline.

Trains each folder's site model as the trainer does (``train_site`` on the first N images of its
../shared/sites/ folder, as ``bench.learning`` uploads them), keeps what calibrating needs (the model's
frames and the generic reader's reading of every held-back sample and every corpus image), then
calibrates that one model both ways and reads the corpus as a worker serves a site request (site model
first, the generic reader beside it when unsure) at the default threshold. Comparing on one model
leaves out the run-to-run differences of a five-minute training, which move a site's answered share
more than the rule does. Recorded readings are kept in ``--data`` and reused: a rerun compares again
without training.

    .venv/bin/python -m bench.calibration --set alnum --folders py_captcha py_claptcha
"""

from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench import output_file, publish
from bench.learning import Folders, label_of
from shared.imaging import ImageLimits, open_image
from shared.settings import Settings
from shared.sites import Sample
from trainer.site_training import (TEMPERATURES, calibrated_temperature, generic_reading, held_back,
                                   model_answers, train_site)
from worker.charsets import alphabet
from worker.recognizer import Recognizer
from worker.site_model import SiteModelReader, SiteReading
from worker.site_reading import served
from worker.wanted import Wanted

DATA = Path(__file__).resolve().parent / "out" / "calibration"


@dataclass
class Recorded:
    """One trained model (ONNX and metadata) and its readings: (label, the model's frames at its baked
    temperature, the generic reader's reading) for each held-back sample and each corpus image."""

    onnx: bytes
    meta: dict
    held: list[tuple[str, np.ndarray, SiteReading]]
    corpus: list[tuple[str, np.ndarray, SiteReading]]
    letters: bool


def record(kind: str, folder: str, size: int, settings: Settings, generic: Recognizer) -> Recorded:
    folders = Folders.of(kind)
    limits = ImageLimits.from_settings(settings)
    paths = folders.images(folders.sites, folder)[:size]
    samples = [Sample(f"{1700000000000 + i}-0", path.read_bytes(), label_of(path), "upload")
               for i, path in enumerate(paths)]
    outcome = train_site(samples, None, settings, generic)
    reader = SiteModelReader(outcome.onnx, outcome.meta)
    site_alphabet = alphabet(outcome.meta["learned"], case=True)
    held = []
    for sample in filter(held_back, samples):
        image = open_image(sample.image, limits)
        length = len(sample.text)
        wanted = Wanted(length, length, site_alphabet)
        held.append((sample.text, reader.outputs(image), generic_reading(generic, image, wanted)))
    classes = reader.alphabet(None, case=not folders.letters)
    wanted = Wanted(min(reader.lengths), max(reader.lengths), classes)
    corpus = []
    for path in folders.images(folders.corpus, folder):
        image = Image.open(path)
        corpus.append((label_of(path), reader.outputs(image), generic_reading(generic, image, wanted)))
    return Recorded(outcome.onnx, outcome.meta, held, corpus, folders.letters)


def counted_temperature(reader: SiteModelReader, recorded: Recorded, threshold: float, precision: float,
                        min_answers: int) -> float:
    """The rule before: the sharpest temperature whose held-back answers (as the trainer counts them)
    are `precision` right by count, at least `min_answers` of them."""
    labels, outputs, others = (list(column) for column in zip(*recorded.held))

    def passes(temperature: float) -> bool:
        right = [ok for _, ok in model_answers(reader, outputs, others, labels, threshold, temperature)]
        return not right or (len(right) >= min_answers and sum(right) / len(right) >= precision)

    return next((t for t in TEMPERATURES if passes(t)), TEMPERATURES[-1])


def corpus_figures(reader: SiteModelReader, recorded: Recorded,
                   threshold: float) -> tuple[float, float, float]:
    """(accuracy, answered, precision) on the corpus, served at `threshold` (compared ignoring case for
    letters, as bench.learning asks with ``case: false``)."""
    classes = reader.alphabet(None, case=not recorded.letters)
    same = (lambda a, b: a.casefold() == b.casefold()) if recorded.letters else (lambda a, b: a == b)
    right = answered = answered_right = 0
    for label, output, other in recorded.corpus:
        answer = served(reader.decode(output, None, classes), threshold, lambda g=other: g, classes)
        right += same(answer.text, label)
        if answer.confidence >= threshold:
            answered += 1
            answered_right += same(answer.text, label)
    total = len(recorded.corpus)
    return right / total, answered / total, answered_right / max(1, answered)


def at_temperature(recorded: Recorded, temperature: float) -> tuple[SiteModelReader, Recorded]:
    """A reader and readings as if `temperature` were baked into the model instead of the trainer's."""
    baked = recorded.meta["temperature"]
    meta = dict(recorded.meta, temperature=temperature)
    reader = SiteModelReader(recorded.onnx, meta)

    def rebaked(rows: list[tuple[str, np.ndarray, SiteReading]]) -> list[tuple[str, np.ndarray, SiteReading]]:
        return [(label, output ** (baked / temperature), other) for label, output, other in rows]

    return reader, Recorded(recorded.onnx, meta, rebaked(recorded.held), rebaked(recorded.corpus),
                            recorded.letters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["digits", "alnum"], default="digits", dest="kind")
    parser.add_argument("--folders", nargs="+", required=True)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DATA, help="recorded readings, reused when present")
    parser.add_argument("--markdown", type=output_file, default=None)
    args = parser.parse_args()
    settings = Settings()
    generic: Recognizer | None = None
    threshold = settings.min_confidence
    lines = ["| set | generator | rule | temperature | accuracy | answered | precision |",
             "|---|---|---|---|---|---|---|"]
    figures: dict[str, list[tuple[float, float, float]]] = {"counted": [], "trainer": []}
    for folder in args.folders:
        path = args.data / f"{args.kind}_{folder}.pkl"
        if not path.exists():
            generic = generic or Recognizer.from_settings(settings)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(vars(record(args.kind, folder, args.size, settings, generic))))
        recorded = Recorded(**pickle.loads(path.read_bytes()))
        raw_reader, raw = at_temperature(recorded, 1.0)
        labels, outputs, others = (list(column) for column in zip(*raw.held))
        rules = {
            "counted": counted_temperature(raw_reader, raw, threshold, settings.site_model_precision,
                                           settings.site_model_min_answers),
            "trainer": calibrated_temperature(raw_reader, outputs, others, labels, threshold,
                                              settings.site_model_precision, settings.site_model_min_answers),
        }
        for rule, temperature in rules.items():
            accuracy, answered, precision = corpus_figures(*at_temperature(recorded, temperature), threshold)
            figures[rule].append((accuracy, answered, precision))
            lines.append(f"| {args.kind} | {folder} | {rule} | {temperature:.2f} | {accuracy:.3f} "
                         f"| {answered:.2f} | {precision:.3f} |")
            print(lines[-1], flush=True)
    for rule, rows in figures.items():
        accuracy, answered, precision = np.mean(rows, axis=0)
        lines.append(f"| {args.kind} | mean of {len(rows)} | {rule} | | {accuracy:.3f} | {answered:.2f} "
                     f"| {precision:.3f} |")
    publish(lines, args.markdown)


if __name__ == "__main__":
    main()
