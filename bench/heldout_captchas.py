"""Draw labelled 4-digit captchas with generators that are not in ../shared/corpus.

The corpus is what the recognizer is measured and chosen on; these generators check that what was
chosen there also holds on captchas it never saw. The generators pin their own Pillow (util-captcha
wants Pillow < 10), so this script runs in a venv of its own and imports nothing from the project:

    python3 -m venv .venv-heldout
    .venv-heldout/bin/pip install wheezy.captcha==3.2.2 util-captcha==0.2.2 easy-captcha-python==1.0.0
    .venv-heldout/bin/python bench/heldout_captchas.py bench/out/heldout [--count 200]
    .venv/bin/python -m bench.accuracy bench/out/heldout

Writes <out>/<generator>/<index>_<label>.png, each generator with its own options left at their
defaults where it has them; labels and drawings come from seeded random sources (reproducible).
"""

from __future__ import annotations

import argparse
import io
import random
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from PIL import Image


def wheezy_captcha(text: str) -> Image.Image:
    """wheezy.captcha's documented recipe: warped, rotated, offset glyphs, a curve, noise, smoothing."""
    import util_captcha
    from wheezy.captcha import image as wheezy

    font = str(Path(util_captcha.__file__).parent / "fonts" / "arial.ttf")  # wheezy ships no font
    draw = wheezy.captcha(drawings=[
        wheezy.background(),
        wheezy.text(fonts=[font], drawings=[wheezy.warp(), wheezy.rotate(), wheezy.offset()]),
        wheezy.curve(), wheezy.noise(), wheezy.smooth(),
    ], width=200, height=75)  # fmt: skip
    return draw(list(text))


def util_captcha(text: str) -> Image.Image:
    """util-captcha's README example: rotated, warped glyphs, noise curves and dots, translucent canvas."""
    from util_captcha import ImageCaptcha

    captcha = ImageCaptcha()
    captcha.draw_chars(text)
    captcha.draw_noise_curve()
    captcha.draw_noise_dots()
    return Image.open(captcha.generate())


def easy_captcha_python(text: str) -> Image.Image:
    """easy-captcha-python's PNG captcha (digits only); its text is drawn from our label."""
    from easy_captcha import TYPE_ONLY_NUMBER, SpecCaptcha
    from easy_captcha.base import randoms

    randoms.secrets = SimpleNamespace(randbelow=random.randrange)  # it draws from `secrets`: not seedable
    captcha = SpecCaptcha(130, 48, len(text))
    captcha.char_type = TYPE_ONLY_NUMBER
    captcha.text_char = lambda: list(text)  # the library has no text parameter
    buffer = io.BytesIO()
    captcha.out(buffer)
    buffer.seek(0)
    return Image.open(buffer)


GENERATORS: dict[str, Callable[[str], Image.Image]] = {
    "wheezy_captcha": wheezy_captcha,
    "util_captcha": util_captcha,
    "easy_captcha_python": easy_captcha_python,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder to write one sub-folder per generator into")
    parser.add_argument("--count", type=int, default=200, help="captchas per generator")
    args = parser.parse_args()
    for name, draw in GENERATORS.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(args.count):
            labels = random.Random(7000 + index)
            text = "".join(labels.choice("0123456789") for _ in range(4))
            random.seed(9000 + index)  # the generators draw from the global random source
            draw(text).save(folder / f"{index:04d}_{text}.png")
        print(f"{name}: {args.count} images in {folder}")


if __name__ == "__main__":
    main()
