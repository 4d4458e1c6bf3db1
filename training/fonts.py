"""The fonts the synthetic captchas are drawn with: every system font that draws each character of a
charset, all of them distinct (so a capitals-only font never draws "a" for an "a" label)."""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shared.charsets import DIGITS

PACKAGES = Path(__file__).with_name("font-packages.txt")  # the Debian font packages to install

# Fonts that map the digit code points to pictures (dingbats, symbols, keyboard keys): distinct, but
# not plain digits.
SYMBOL_FONTS = re.compile(r"D050000L|Dingbat|Symbol|LinBiolinum_K", re.IGNORECASE)


def _bitmaps(path: str, charset: str) -> list[bytes] | None:
    try:
        font = ImageFont.truetype(path, 32)
    except OSError:
        return None
    bitmaps = []
    for char in charset:
        image = Image.new("L", (48, 48), 0)
        ImageDraw.Draw(image).text((8, 4), char, font=font, fill=255)
        array = np.asarray(image)
        if array.mean() < 2:
            return None
        bitmaps.append(array.tobytes())
    return bitmaps


@lru_cache(maxsize=4)
def fonts_for(charset: str = DIGITS) -> tuple[str, ...]:
    """Paths of installed TrueType/OpenType fonts whose characters of `charset` are all drawn and all
    different (symbol and math-extension fonts fail that)."""
    listing = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True,
                             check=True).stdout.split()
    fonts = []
    for path in sorted(set(listing)):
        if Path(path).suffix.lower() not in (".ttf", ".otf") or SYMBOL_FONTS.search(Path(path).name):
            continue
        bitmaps = _bitmaps(path, charset)
        if bitmaps is not None and len(set(bitmaps)) == len(charset):
            fonts.append(path)
    if not fonts:
        raise RuntimeError(f"no usable fonts; install the packages listed in {PACKAGES}")
    return tuple(fonts)


@lru_cache(maxsize=4)
def font_groups(charset: str = DIGITS) -> tuple[tuple[str, ...], ...]:
    """`fonts_for(charset)` grouped by folder (about one per font package), so that drawing a group
    first gives a package with forty weights no more say than one with a single font."""
    groups: dict[Path, list[str]] = {}
    for path in fonts_for(charset):
        groups.setdefault(Path(path).parent, []).append(path)
    return tuple(tuple(paths) for paths in groups.values())
