"""Image normalisation: turn any captcha image into what the OCR models read best.

The ddddocr models were trained on dark text on a light background, on images
whose height is scaled to 64 pixels. Captchas arrive in every PIL mode, with
transparency, light-on-dark palettes, empty margins and sizes from tiny to huge;
each step below removes one of those differences, generically (nothing here
knows about a particular generator).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MODEL_HEIGHT = 64
_MAX_SIDE = 1024          # huge inputs are shrunk first so cost stays bounded
_MAX_WIDTH = 16 * MODEL_HEIGHT
_MARGIN_TOLERANCE = 24    # grey levels of variation a row/column may show and still be "empty"


def flatten(image: Image.Image) -> np.ndarray:
    """Any PIL image -> float32 RGB array (H, W, 3) in 0..255, transparency flattened.

    Transparent pixels are composited onto a background that contrasts with the
    opaque content (white behind dark ink, black behind light ink), so ink drawn
    on a transparent canvas never vanishes into its background.
    """
    if max(image.size) > _MAX_SIDE:
        image = image.copy()
        image.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BOX)
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 255.0)
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


def trim_margins(rgb: np.ndarray) -> np.ndarray:
    """Cut away border rows/columns of (nearly) one colour: they carry no digits."""
    grey = luminance(rgb)
    rows = np.flatnonzero(np.ptp(grey, axis=1) > _MARGIN_TOLERANCE)
    cols = np.flatnonzero(np.ptp(grey, axis=0) > _MARGIN_TOLERANCE)
    if rows.size == 0 or cols.size == 0:
        return rgb
    return rgb[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def dark_on_light(grey: np.ndarray) -> np.ndarray:
    """Invert when the background (the most common tone: the median) is dark."""
    return 255.0 - grey if float(np.median(grey)) < 128.0 else grey


def ink_contrast(rgb: np.ndarray) -> np.ndarray:
    """Grey image where darkness = colour distance from the background colour.

    Luma can make coloured digits nearly as bright as a coloured background; the
    distance in RGB from the median colour keeps them apart whatever the hues.
    """
    background = np.median(rgb.reshape(-1, 3), axis=0)
    distance = np.sqrt(((rgb - background) ** 2).sum(axis=2))
    top = float(distance.max())
    return 255.0 - distance * (255.0 / top) if top > 0 else np.full(distance.shape, 255.0)


def pad_margin(grey: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Add a thin light border so glyphs touching the crop edge are not cut."""
    pad = max(1, int(round(fraction * grey.shape[0])))
    return np.pad(grey, pad, mode="constant", constant_values=float(np.median(grey)))


def to_model_input(grey: np.ndarray, digits: int) -> np.ndarray:
    """Grey (H, W) 0..255 -> float32 (1, 1, 64, W') in 0..1, as ddddocr feeds its models.

    Width is scaled with the height, then padded with background so the output
    has enough time steps for `digits` characters, and capped for very long strips.
    """
    height, width = grey.shape
    new_width = max(1, round(width * MODEL_HEIGHT / height))
    new_width = min(new_width, _MAX_WIDTH)
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), mode="L")
    image = image.resize((new_width, MODEL_HEIGHT), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.float32)
    min_width = 16 * max(digits, 4)
    if new_width < min_width:
        left = (min_width - new_width) // 2
        fill = float(np.median(array))
        array = np.pad(array, ((0, 0), (left, min_width - new_width - left)), constant_values=fill)
    return (array / 255.0)[None, None]


def standard(image: Image.Image, digits: int) -> np.ndarray:
    """The first reading: flatten, trim, grey, dark-on-light, pad, scale."""
    rgb = trim_margins(flatten(image))
    return to_model_input(pad_margin(dark_on_light(luminance(rgb))), digits)


def colour_distance(image: Image.Image, digits: int) -> np.ndarray:
    """A second look for unsure readings: ink measured as colour distance from the background."""
    rgb = trim_margins(flatten(image))
    return to_model_input(pad_margin(ink_contrast(rgb)), digits)


def untrimmed(image: Image.Image, digits: int) -> np.ndarray:
    """A second look without trimming, for when trimming cut into a faint glyph."""
    return to_model_input(dark_on_light(luminance(flatten(image))), digits)


NORMALISATIONS = {"standard": standard, "colour_distance": colour_distance, "untrimmed": untrimmed}
