"""Accuracy/latency benchmark of the Recognizer against the ddddocr baseline.

Usage (from the project root):
    python -m bench.accuracy ../shared/corpus [--limit N] [--markdown out.md]
                             [--plot out.png] [--min-confidence X]
    python -m bench.accuracy ../shared/corpus_alnum=alnum ../shared/corpus_math=math [--alternatives 2]

Each folder holds `<index>_<label>.png` files, or folders of them; `=MODE` reads it with
a charset (digits, the default; letters, alnum, lower, upper, characters; `source`:
each folder's own, from the `charset:` line of its SOURCE.txt) or `math` (the label is the
expression's value). Letters are compared ignoring case unless --case. The baseline is what
the product started from: ddddocr 1.6.1's default model through `classification()` plus
"first 4 digits of the text" (None when fewer); for letters, its text with all but letters
and digits dropped; for math, the value of the expression in its text.
"""

from __future__ import annotations

import argparse
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench import output_file
from shared.charsets import characters
from shared.settings import Settings
from worker.charsets import alphabet
from worker.expressions import EXPRESSION, value
from worker.recognizer import Recognizer
from worker.wanted import Wanted, read

_NAME = re.compile(r"^\d+_(\d+)\.png$")
_TEXT_NAME = re.compile(r"^\d+_(-?\w+)\.png$")
_SOURCE_CHARSET = re.compile(r"^charset: (\w+)", re.MULTILINE)


@dataclass
class FolderResult:
    """Per-image outcomes of one folder, for both readers."""

    name: str
    labels: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    baseline_texts: list[str | None] = field(default_factory=list)
    baseline_seconds: list[float] = field(default_factory=list)
    seconds_best: list[str] = field(default_factory=list)  # the second most probable answer ("" if none)

    def merge(self, other: "FolderResult") -> None:
        for key in ("labels", "texts", "confidences", "seconds", "baseline_texts", "baseline_seconds",
                    "seconds_best"):  # fmt: skip
            getattr(self, key).extend(getattr(other, key))


def labelled_folders(root: Path, name: re.Pattern[str] = _NAME) -> list[tuple[str, list[tuple[Path, str]]]]:
    """The folder itself if it holds labelled PNGs, else each sub-folder that does."""
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    found = []
    for folder in folders:
        files = [(p, m.group(1)) for p in sorted(folder.glob("*.png")) if (m := name.match(p.name))]
        if files:
            found.append((folder.name, files))
    return found


def baseline_reader(ort_threads: int | None = None, mode: str = "digits"):
    """ddddocr's own classification(), imported lazily: it is only the reference.

    ``ort_threads`` None keeps ONNX Runtime's default (all cores: what the product started from);
    a number gives the baseline the same thread budget as one worker, for a like-for-like time.
    """
    import ddddocr
    import onnxruntime as ort

    ocr = ddddocr.DdddOcr(show_ad=False)
    if ort_threads is not None:
        engine = ocr.ocr_engine  # ddddocr 1.6 offers no thread option: same model, new session
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_threads
        model = engine.session._model_path
        engine.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])

    def read(data: bytes, digits: int) -> str | None:
        text = ocr.classification(data)
        if mode == "math":
            match = EXPRESSION.match(re.sub(r"[^0-9+\-×xX*=?]", "", text).replace("x", "×").replace("X", "×")
                                    .replace("*", "×"))  # fmt: skip
            return str(value(match[0])) if match else None
        if mode != "digits":
            return re.sub(r"[^0-9A-Za-z]", "", text)
        found = re.sub(r"\D", "", text)
        return found[:digits] if len(found) >= digits else None

    return read


def folder_charset(folder: Path) -> str:
    """A corpus folder's own charset: the `charset:` line of its SOURCE.txt."""
    match = _SOURCE_CHARSET.search((folder / "SOURCE.txt").read_text())
    if match is None:
        raise SystemExit(f"{folder}/SOURCE.txt names no charset")
    return match[1]


def wanted_for(mode: str, folder: Path, label: str, case: bool, alternatives: int) -> Wanted:
    """What the service is asked for an image of `folder` labelled `label` (its length is known)."""
    if mode == "math":
        return Wanted(1, 1, math=True, alternatives=alternatives)
    charset = folder_charset(folder) if mode == "source" else mode
    return Wanted(len(label), len(label), alphabet(characters(charset), case), alternatives=alternatives)


def run(root: Path, limit: int | None, recognizer: Recognizer, baseline_threads: int | None = None,
        mode: str = "digits", case: bool = False, alternatives: int = 1) -> list[FolderResult]:  # fmt: skip
    """Read every image with both readers, timing each read (decoding the PNG included). Texts are
    kept as compared: lower case unless `case`, an expression's value in math mode."""
    baseline = baseline_reader(baseline_threads, mode)
    pattern = _NAME if mode == "digits" else _TEXT_NAME
    folders = [(name, files[:limit] if limit else files) for name, files in labelled_folders(root, pattern)]

    def key(text: str | None) -> str | None:
        if text is None or case or mode == "math":
            return text
        return text.lower()

    results = []
    with tqdm(total=sum(len(files) for _, files in folders), unit="img") as bar:
        for name, files in folders:
            result = FolderResult(name)
            for path, label in files:
                data = path.read_bytes()
                digits = len(label)
                start = time.perf_counter()
                image = Image.open(io.BytesIO(data))
                if mode == "digits" and alternatives == 1:  # today's reading, exactly
                    reading = recognizer.recognize(image, digits)
                else:
                    wanted = wanted_for(mode, path.parent, label, case, alternatives)
                    reading = read(recognizer, image, wanted)
                result.seconds.append(time.perf_counter() - start)
                start = time.perf_counter()
                result.baseline_texts.append(key(baseline(data, digits)))
                result.baseline_seconds.append(time.perf_counter() - start)
                result.labels.append(key(label))
                shown = [reading.text, *(text for text, _ in reading.alternatives[:1])]
                if mode == "math":
                    shown = [str(value(text)) if text else "" for text in shown]
                result.texts.append(key(shown[0]))
                result.seconds_best.append(key(shown[1]) if len(shown) > 1 else "")
                result.confidences.append(reading.confidence)
                bar.update()
            results.append(result)
    return results


def summary_row(result: FolderResult, min_confidence: float) -> list[str]:
    """Table cells: images, accuracy, answered, precision, ms, baseline accuracy, baseline ms."""
    labels = np.array(result.labels)
    right = np.array(result.texts) == labels
    answered = np.array(result.confidences) >= min_confidence
    precision = f"{right[answered].mean():.3f}" if answered.any() else "-"
    baseline_right = np.array([t == l for t, l in zip(result.baseline_texts, result.labels)])
    cells = [result.name, str(labels.size), f"{right.mean():.3f}", f"{answered.mean():.3f}", precision,
             f"{1000 * np.mean(result.seconds):.1f}", f"{baseline_right.mean():.3f}",
             f"{1000 * np.mean(result.baseline_seconds):.1f}"]
    if any(result.seconds_best):  # alternatives asked for: right first or second
        cells.append(f"{(right | (np.array(result.seconds_best) == labels)).mean():.3f}")
    return cells


HEADER = ["folder", "images", "accuracy", "answered", "precision", "ms/img",
          "baseline acc", "baseline ms/img"]


def table(results: list[FolderResult], min_confidence: float) -> list[list[str]]:
    """One row per folder, then the mean of folder accuracies and the pooled 'all' row."""
    everything = FolderResult("all")
    for result in results:
        everything.merge(result)
    rows = [summary_row(r, min_confidence) for r in results]
    means = [np.mean([float(row[i]) for row in rows]) for i in (2, 6)]
    rows.append(["mean of folders", "", f"{means[0]:.3f}", "", "", "", f"{means[1]:.3f}", ""])
    rows.append(summary_row(everything, min_confidence))
    return rows


def threshold_for(results: list[FolderResult], precision: float = 0.98) -> tuple[float, float]:
    """Lowest confidence threshold whose answered images (all folders) reach `precision`,
    and the answered rate there: the basis for choosing min_confidence."""
    confidence = np.concatenate([r.confidences for r in results])
    right = np.concatenate([np.array(r.texts) == np.array(r.labels) for r in results])
    return answered_at_precision(confidence, right, precision)


def self_label_line(results: list[FolderResult], threshold: float) -> str:
    """How right the answers a site would keep as samples are (CAPTCHAOCR_SELF_LABEL_MIN_CONFIDENCE),
    pooled over the folders: the setting is chosen so that they are at least 99.5% right."""
    confidence = np.concatenate([r.confidences for r in results])
    right = np.concatenate([np.array(r.texts) == np.array(r.labels) for r in results])
    kept = confidence >= threshold
    precision = f"{right[kept].mean():.4f} ({int(right[kept].sum())} of {int(kept.sum())})" if kept.any() else "-"
    return f"self-labels (confidence >= {threshold}): {kept.mean():.3f} of all images, right {precision}"


def answered_at_precision(confidence: np.ndarray, right: np.ndarray, precision: float) -> tuple[float, float]:
    """Lowest threshold on `confidence` at which the answers given are `right` at `precision`, and the
    share of images answered there ((1.0, 0.0) when no threshold reaches it)."""
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(right[order]) / np.arange(1, order.size + 1)
    reached = np.flatnonzero(running >= precision)
    if reached.size == 0:
        return 1.0, 0.0
    last = int(reached.max())
    return float(confidence[order[last]]), (last + 1) / order.size


def markdown(rows: list[list[str]], min_confidence: float, threshold: tuple[float, float]) -> str:
    header = HEADER + ["first or second"] * (len(rows[-1]) > len(HEADER))
    rows = [row + [""] * (len(header) - len(row)) for row in rows]
    lines = [f"min_confidence = {min_confidence}; pooled precision >= 0.98 holds down to a threshold of "
             f"{threshold[0]:.4f} (answering {threshold[1]:.3f} of all images)", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(results: list[FolderResult], path: Path, min_confidence: float) -> None:
    """Precision against answered rate as the confidence threshold sweeps, per folder and all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    everything = FolderResult("all")
    for result in results:
        everything.merge(result)
    figure, axes = plt.subplots(figsize=(8, 6))
    axes.set_prop_cycle(color=plt.get_cmap("tab10").colors)
    for result in results + [everything]:
        confidence = np.array(result.confidences)
        right = np.array(result.texts) == np.array(result.labels)
        order = np.argsort(-confidence, kind="stable")
        hits = np.cumsum(right[order])
        count = np.arange(1, order.size + 1)
        style = {"color": "black", "linewidth": 2.5} if result is everything else {}
        (line,) = axes.plot(count / order.size, hits / count, label=result.name, **style)
        at = confidence >= min_confidence
        if at.any():
            axes.plot([at.mean()], [right[at].mean()], "o", color=line.get_color())
    axes.set_xlabel("answered rate (confidence >= threshold)")
    axes.set_ylabel("precision (accuracy of the answered)")
    axes.set_title(f"Precision vs answered rate; dots at min_confidence={min_confidence}")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", metavar="root[=MODE]",
                        help="folder of <index>_<label>.png files, or of such folders; MODE: a charset "
                             "(digits, letters, alnum, lower, upper, characters), source, math")  # fmt: skip
    parser.add_argument("--case", action="store_true", help="tell upper from lower case")
    parser.add_argument("--alternatives", type=int, default=1, help="2: also the share right first or second")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    parser.add_argument("--markdown", type=output_file, default=None, help="also write the table here")
    parser.add_argument("--plot", type=output_file, default=None, help="PNG of precision vs answered rate")
    parser.add_argument("--min-confidence", type=float, default=Settings().min_confidence)
    parser.add_argument("--baseline-ort-threads", type=int, default=None,
                        help="ONNX threads of the baseline (default: ONNX Runtime's, all cores; "
                             "1 = one worker's budget, like the recognizer)")  # fmt: skip
    args = parser.parse_args()

    settings = Settings()
    recognizer = Recognizer.from_settings(settings)
    texts, everything = [], []
    for spec in args.roots:
        root, _, mode = spec.partition("=")
        results = run(Path(root), args.limit, recognizer, args.baseline_ort_threads, mode or "digits",
                      args.case, args.alternatives)  # fmt: skip
        everything += results
        rows = table(results, args.min_confidence)
        table_text = markdown(rows, args.min_confidence, threshold_for(results))
        self_labels = self_label_line(results, settings.self_label_min_confidence)
        texts.append(f"### {root} ({mode or 'digits'})\n\n{table_text}\n{self_labels}\n")
    text = "\n".join(texts)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        plot(everything, args.plot, args.min_confidence)


if __name__ == "__main__":
    main()
