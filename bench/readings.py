"""How far can choosing among many readings of one image go? A study, not the product's path.

Usage (from the project root):
    python -m bench.readings ../shared/corpus [--limit N] [--markdown out.md]

Reads every image in many ways (each model x each view x each horizontal stretch), then compares
rules that pick one answer per image without knowing the label: each view alone (the standard view at
x1 with the first model is the recognizer's first reading), the most probable reading, the mean or
geometric mean of each candidate string's probability over all readings, a majority vote; and the
oracle (right if any reading is right), the ceiling of any rule. For each rule: mean exact-match
accuracy over the folders, and the share of all images answered at 98% precision when the rule's score
is the threshold. The README's accuracy section quotes its table.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from bench import output_file
from bench.accuracy import answered_at_precision, labelled_folders
from worker.ctc import forward_probabilities
from worker.normalise import Page, colour_distance, luminance, prepare, standard, to_model_input
from worker.recognizer import DIGITS, MODEL_COLUMNS, Model, decode_digits

DIGIT_COUNT = 4
MODEL_NAMES = tuple(MODEL_COLUMNS)  # the recognizer's default model first


def otsu(grey: np.ndarray) -> np.ndarray:
    """Black and white at the threshold that best separates the two tones (Otsu's method)."""
    counts = np.histogram(grey, bins=256, range=(0, 256))[0] / grey.size
    below, mean_below = np.cumsum(counts), np.cumsum(counts * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (mean_below[-1] * below - mean_below) ** 2 / (below * (1 - below))
    return np.where(grey > np.nanargmax(spread), 255.0, 0.0)


def pil_filter(grey: np.ndarray, kind: ImageFilter.Filter) -> np.ndarray:
    """A PIL filter applied to a float grey array."""
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    return np.asarray(image.filter(kind), dtype=np.float32)


def framed(view: Callable[[Page], np.ndarray]) -> Callable[[Page], np.ndarray]:
    """A view cropped as the recognizer's first look crops it: the content with some of its margin."""
    return lambda page: view(page)[page.margin_box]


VIEWS: dict[str, Callable[[Page], np.ndarray]] = {
    "standard": framed(standard),
    "colour_distance": framed(colour_distance),
    "otsu": framed(lambda page: otsu(standard(page))),
    "median3": framed(lambda page: pil_filter(standard(page), ImageFilter.MedianFilter(3))),
    "blur": framed(lambda page: pil_filter(standard(page), ImageFilter.GaussianBlur(1.2))),
    "luma": lambda page: luminance(page.rgb),
    "colour_otsu": framed(lambda page: otsu(colour_distance(page))),
}
STRETCHES = (1.0, 0.75, 1.3)
# The second model only on the two views the recognizer uses: it is three times slower.
SECOND_MODEL_VIEWS = ("standard", "colour_distance")

# "<model> <view> x<stretch>" -> (T, 11) probabilities, the top string, its probability
Readings = dict[str, tuple[np.ndarray, str, float]]


def read_all_ways(models: list[Model], image: Image.Image) -> Readings:
    """Every (view, stretch, model) reading of one image, decoded as the recognizer decodes."""
    page, readings = prepare(image), {}
    for view_name, view in VIEWS.items():
        grey = view(page)
        for stretch in STRETCHES:
            batch = to_model_input(grey, DIGIT_COUNT, stretch)
            for model in models:
                if model is not models[0] and view_name not in SECOND_MODEL_VIEWS:
                    continue
                probabilities = model.digit_probabilities(batch)
                text, probability = decode_digits(probabilities, DIGIT_COUNT)
                readings[f"{model.name} {view_name} x{stretch:g}"] = (probabilities, text, probability)
    return readings


def pooled(readings: Readings, geometric: bool) -> tuple[str, float]:
    """The candidate string whose (geometric) mean probability over every reading is highest."""
    candidates = sorted({text for _, text, _ in readings.values() if text})
    if not candidates:
        return "", 0.0
    labels = np.array([[DIGITS.index(c) + 1 for c in text] for text in candidates])
    scores = np.array([forward_probabilities(probabilities, labels) for probabilities, _, _ in readings.values()])
    pooled_scores = np.exp(np.log(np.maximum(scores, 1e-300)).mean(axis=0)) if geometric else scores.mean(axis=0)
    best = int(np.argmax(pooled_scores))
    return candidates[best], float(pooled_scores[best])


def vote(readings: Readings) -> tuple[str, float]:
    """Most frequent string (ties: the more probable); score = its share of votes x its best probability."""
    votes = Counter(text for _, text, _ in readings.values())
    text, probability = max(((t, p) for _, t, p in readings.values()), key=lambda tp: (votes[tp[0]], tp[1]))
    return text, votes[text] / len(readings) * probability


def alone(key: str) -> Callable[[Readings, str], tuple[str, float]]:
    """The rule that answers with one named reading."""
    return lambda readings, _: readings[key][1:]


RULES: dict[str, Callable[[Readings, str], tuple[str, float]]] = {
    **{f"{view} view alone (model 1, x1)": alone(f"{MODEL_NAMES[0]} {view} x1") for view in VIEWS},
    "most probable reading": lambda r, _: max(((t, p) for _, t, p in r.values()), key=lambda tp: tp[1]),
    "mean probability of each string": lambda r, _: pooled(r, geometric=False),
    "geometric mean probability": lambda r, _: pooled(r, geometric=True),
    "majority vote": lambda r, _: vote(r),
    "oracle (right if any reading is)": lambda r, label: (label, 1.0) if any(t == label for _, t, _ in r.values()) else ("", 0.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder of <index>_<label>.png files, or of such folders")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    parser.add_argument("--markdown", type=output_file, default=None, help="also write the table here")
    args = parser.parse_args()

    models = [Model(name, ort_threads=1) for name in MODEL_NAMES]
    outcomes: dict[str, list[tuple[str, bool, float]]] = {rule: [] for rule in RULES}  # (folder, right, score)
    for folder, files in labelled_folders(args.root):
        for path, label in tqdm(files[: args.limit], desc=folder, unit="img"):
            with Image.open(path) as image:
                readings = read_all_ways(models, image)
            for rule, choose in RULES.items():
                text, score = choose(readings, label)
                outcomes[rule].append((folder, text == label, score))
    lines = [f"{len(readings)} readings per image", "",
             "| rule | mean accuracy of folders | answered at 98% precision |", "|---|---|---|"]  # fmt: skip
    for rule, rows in outcomes.items():
        folders = sorted({folder for folder, _, _ in rows})
        accuracy = np.mean([np.mean([right for f, right, _ in rows if f == folder]) for folder in folders])
        right = np.array([right for _, right, _ in rows])
        answered = answered_at_precision(np.array([score for _, _, score in rows]), right, 0.98)[1]
        lines.append(f"| {rule} | {accuracy:.3f} | {answered:.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
