"""Image normalisation: turn any captcha image into what the OCR models read best.

The ddddocr models were trained on dark text on a light background, on images
whose height is scaled to 64 pixels. Captchas arrive in every PIL mode, with
transparency, light-on-dark palettes, empty margins and sizes from tiny to huge;
each step below removes one of those differences, generically (nothing here
knows about a particular generator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

MODEL_HEIGHT = 64
# Huge inputs are shrunk first so the cost stays bounded; 4x the model height
# keeps enough detail for the final Lanczos resize.
_MAX_SIZE = (32 * MODEL_HEIGHT, 4 * MODEL_HEIGHT)
_MAX_WIDTH = 16 * MODEL_HEIGHT
LINE_SPAN = 0.85          # share of a row/column that must be dark for it to be a line
_MARGIN_TOLERANCE = 24    # grey levels of variation a row/column may show and still be "empty"
MARGIN = 0.1              # of the content's height: the image's own margin that a "margin" crop keeps


def flatten(image: Image.Image) -> np.ndarray:
    """Any PIL image -> float32 RGB array (H, W, 3) in 0..255, transparency flattened.

    Transparent pixels are composited onto a background that contrasts with the
    opaque content (white behind dark ink, black behind light ink), so ink drawn
    on a transparent canvas never vanishes into its background.
    """
    if image.width > _MAX_SIZE[0] or image.height > _MAX_SIZE[1]:
        image = image.copy()
        image.thumbnail(_MAX_SIZE, Image.Resampling.BOX)
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        # Scaled by the brightest value, not the mode's range: a 16-bit image holding 8-bit values
        # (what PIL makes of an 'L' image) would otherwise be all but black.
        top = max(float(values.max()), 255.0)
        grey = np.clip(values * (255.0 / top), 0.0, 255.0)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
    rgb, alpha = rgba[..., :3], rgba[..., 3:] / 255.0
    if alpha.min() >= 1.0:
        return rgb
    weight = float(alpha.sum())
    ink = float((luminance(rgb) * alpha[..., 0]).sum() / weight) if weight > 0 else 0.0
    background = 255.0 if ink < 128.0 else 0.0
    return rgb * alpha + background * (1.0 - alpha)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's convert('L') computes it."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def content_box(rgb: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns inside the border of (nearly) one colour: the margins carry no digits."""
    grey = luminance(rgb)
    rows = np.flatnonzero(np.ptp(grey, axis=1) > _MARGIN_TOLERANCE)
    cols = np.flatnonzero(np.ptp(grey, axis=0) > _MARGIN_TOLERANCE)
    if rows.size == 0 or cols.size == 0:
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def dark_on_light(grey: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Invert when the background of `content` (its most common tone: the median) is dark."""
    return 255.0 - grey if float(np.median(content)) < 128.0 else grey


def ink_contrast(rgb: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Grey image where darkness = colour distance from the background colour.

    Luma can make coloured digits nearly as bright as a coloured background; the
    distance in RGB from the median colour of `content` (the image inside its
    margins) keeps them apart whatever the hues.
    Scaled by a high percentile, not the maximum, so one black line does not
    wash out every paler glyph.
    """
    sample = content[::2, ::2]  # statistics from every 4th pixel: as good, 4x cheaper
    background = np.median(sample.reshape(-1, 3), axis=0)
    distance = np.sqrt(((rgb - background) ** 2).sum(axis=2))
    top = max(float(np.percentile(np.sqrt(((sample - background) ** 2).sum(axis=2)), 99)), 1.0)
    return 255.0 - np.clip(distance * (255.0 / top), 0.0, 255.0)


def remove_long_lines(grey: np.ndarray, span: float = LINE_SPAN) -> np.ndarray:
    """Erase straight horizontal/vertical lines that cross most of the image (grids, rules).

    Run on the untrimmed image, where glyphs leave some margin: a run of rows (or
    columns) that is dark over more than `span` of its length is no glyph: each of its pixels is replaced by the lighter of the pixels just
    beyond the run, so a stroke that crosses the line (dark on both sides) survives.
    """
    out = grey.copy()
    for lines in (out, out.T):  # rows, then columns (a view: edits land in `out`)
        full = (lines < 128.0).mean(axis=1) > span
        start = 0
        while start < full.size:
            if not full[start]:
                start += 1
                continue
            end = start
            while end + 1 < full.size and full[end + 1]:
                end += 1
            light = np.full(lines.shape[1], 255.0)
            before = lines[start - 1] if start > 0 else light
            after = lines[end + 1] if end + 1 < full.size else light
            lines[start:end + 1] = np.maximum(lines[start:end + 1], np.minimum(before, after))
            start = end + 1
    return out


def to_model_input(grey: np.ndarray, digits: int, stretch: float = 1.0) -> np.ndarray:
    """Grey (H, W) 0..255 -> float32 (1, 1, 64, W') in 0..1, as ddddocr feeds its models.

    Width is scaled with the height (times `stretch`), then padded with background
    so the output has enough time steps for `digits` characters, and capped for
    very long strips.
    """
    height, width = grey.shape
    new_width = max(1, round(width * stretch * MODEL_HEIGHT / height))
    new_width = min(new_width, _MAX_WIDTH)
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    image = image.resize((new_width, MODEL_HEIGHT), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.float32)
    min_width = 16 * max(digits, 4)
    if new_width < min_width:
        left = (min_width - new_width) // 2
        fill = float(np.median(array))
        array = np.pad(array, ((0, 0), (left, min_width - new_width - left)), constant_values=fill)
    return (array / 255.0)[None, None]


def grow_box(box: tuple[slice, slice], shape: tuple[int, ...], fraction: float) -> tuple[slice, slice]:
    """`box` widened on every side by `fraction` of its height, within the image: the image's own
    margin around the content, so glyphs that touch the content's edge are not cut."""
    rows, cols = box
    top, bottom, _ = rows.indices(shape[0])
    left, right, _ = cols.indices(shape[1])
    extra = round(fraction * (bottom - top))
    return (slice(max(0, top - extra), min(shape[0], bottom + extra)),
            slice(max(0, left - extra), min(shape[1], right + extra)))


@dataclass(frozen=True)
class Look:
    """One way of showing a page to a model: a view, a crop and a horizontal stretch.

    Crops: "margin" keeps some of the image's own margin around the content (`MARGIN`);
    "tight" is the content alone, so the glyphs fill more of the model's height.
    """

    view: str
    crop: Literal["margin", "tight"] = "margin"
    stretch: float = 1.0

    def __str__(self) -> str:
        crop = "" if self.crop == "margin" else f"/{self.crop}"
        stretch = "" if self.stretch == 1.0 else f"*{self.stretch:g}"
        return f"{self.view}{crop}{stretch}"


@dataclass
class Page:
    """An image flattened once, with its content box; every look at it starts here and each view is
    computed at most once (a page lives for one request)."""

    rgb: np.ndarray
    box: tuple[slice, slice]
    margin_box: tuple[slice, slice]
    views: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def view(self, name: str) -> np.ndarray:
        if name not in self.views:
            self.views[name] = VIEWS[name](self)
        return self.views[name]

    def model_input(self, look: Look, digits: int) -> np.ndarray:
        box = self.box if look.crop == "tight" else self.margin_box
        return to_model_input(self.view(look.view)[box], digits, look.stretch)


def prepare(image: Image.Image) -> Page:
    """Flatten once per request; every view below starts from this."""
    rgb = flatten(image)
    box = content_box(rgb)
    return Page(rgb, box, grow_box(box, rgb.shape, MARGIN))


def standard(page: Page) -> np.ndarray:
    """The first view: luma, dark-on-light, long lines erased (the whole image; looks crop it)."""
    grey = luminance(page.rgb)
    return remove_long_lines(dark_on_light(grey, grey[page.box]))


def colour_distance(page: Page) -> np.ndarray:
    """A second view for unsure readings: ink measured as colour distance from the background."""
    return remove_long_lines(ink_contrast(page.rgb, page.rgb[page.box]))


VIEWS = {"standard": standard, "colour_distance": colour_distance}

# Fonts differ in width and spacing; the models read glyphs best near the aspect
# ratio they were trained on, so a horizontally squeezed second look recovers
# wide or widely spaced digits that the first scale misreads.
NARROW_STRETCH = 0.75
