"""Synthetic captchas: what captchas in general do to digits and letters, drawn at random.

Nothing here imitates one generator. Each captcha draws its own choice of the usual tricks: many
fonts, sizes, rotations and spacings (overlapping to far apart), plain, gradient or textured
backgrounds in any colour, light-on-dark, low contrast, one colour per glyph, hollow, outlined,
shadowed and tiny hard-edged (bitmap-like) glyphs, lines, curves, dots,
circles and grids over and under the text, wave distortion, blur, low resolution, JPEG, and
transparent margins. The model learns characters, not a generator's style.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from shared.charsets import DIGITS, LOWER, UPPER
from training.fonts import font_groups

Colour = tuple[int, int, int]


def _colour(rng: random.Random) -> Colour:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _luma(colour: Colour) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def _contrasting(rng: random.Random, background: Colour, least: float) -> Colour:
    """A random colour whose luma differs from the background's by at least `least`."""
    for _ in range(50):
        colour = _colour(rng)
        if abs(_luma(colour) - _luma(background)) >= least:
            return colour
    return (0, 0, 0) if _luma(background) > 127 else (255, 255, 255)


def _background(rng: random.Random, size: tuple[int, int], base: Colour) -> Image.Image:
    kind = rng.random()
    if kind < 0.55:
        return Image.new("RGB", size, base)
    width, height = size
    if kind < 0.8:  # linear gradient towards a nearby colour
        other = tuple(int(np.clip(c + rng.uniform(-70, 70), 0, 255)) for c in base)
        ramp = np.linspace(0.0, 1.0, width)[None, :, None]
        array = np.array(base)[None, None] * (1 - ramp) + np.array(other)[None, None] * ramp
        return Image.fromarray(np.repeat(array, height, axis=0).astype(np.uint8))
    # texture: smoothed noise around the base colour
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(10, 45), (height, width, 3))
    array = np.clip(np.array(base)[None, None] + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(array).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))


def _glyph(rng: random.Random, char: str, font: ImageFont.FreeTypeFont, colour: Colour, style: str,
           second: Colour, aliased: bool) -> Image.Image:
    """One character on a transparent layer, rotated, sheared and squeezed at random. `style` is "plain",
    "hollow" (outline only), "outlined" (filled, with an outline in `second`) or "shadow" (a copy in
    `second` offset behind it); `aliased` draws hard-edged pixels, as bitmap-font captchas do."""
    left, top, right, bottom = font.getbbox(char)
    pad = 4 + font.size // 6
    layer = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if aliased:
        draw.fontmode = "1"
    at = (pad - left, pad - top)
    outline = max(1, font.size // rng.choice((10, 14, 20)))
    if style == "hollow":
        draw.text(at, char, font=font, fill=(0, 0, 0, 0), stroke_width=outline, stroke_fill=colour + (255,))
    elif style == "outlined":
        draw.text(at, char, font=font, fill=colour + (255,), stroke_width=outline,
                  stroke_fill=second + (255,))
    else:
        if style == "shadow":
            offset = max(1, font.size // rng.choice((8, 12, 16)))
            draw.text((at[0] + offset, at[1] + offset), char, font=font, fill=second + (255,))
        stroke = rng.choice((0, 0, 0, 1, 2))
        draw.text(at, char, font=font, fill=colour + (255,), stroke_width=stroke,
                  stroke_fill=colour + (255,))
    squeeze = rng.uniform(0.7, 1.35)
    layer = layer.resize((max(1, int(layer.width * squeeze)), layer.height), Image.Resampling.BICUBIC)
    shear = rng.uniform(-0.35, 0.35) if rng.random() < 0.3 else 0.0
    if shear:
        extra = int(abs(shear) * layer.height)
        layer = layer.transform((layer.width + extra, layer.height), Image.Transform.AFFINE,
                                (1, shear, -extra if shear > 0 else 0, 0, 1, 0), Image.Resampling.BICUBIC)
    angle = rng.gauss(0, 14) if rng.random() < 0.85 else rng.uniform(-45, 45)
    if aliased and rng.random() < 0.7:
        angle = 0.0
    return layer.rotate(angle, Image.Resampling.BICUBIC, expand=True)


def _curve(rng: random.Random, width: int, height: int) -> list[tuple[float, float]]:
    """A sine-like curve or a straight segment across much of the image."""
    x0, x1 = rng.uniform(-0.1, 0.4) * width, rng.uniform(0.6, 1.1) * width
    y0, y1 = rng.uniform(0, height), rng.uniform(0, height)
    amplitude = rng.uniform(0, 0.35) * height if rng.random() < 0.5 else 0.0
    waves, phase = rng.uniform(0.3, 2.5), rng.uniform(0, 2 * math.pi)
    points = []
    for i in range(41):
        t = i / 40
        y = y0 + (y1 - y0) * t + amplitude * math.sin(phase + 2 * math.pi * waves * t)
        points.append((x0 + (x1 - x0) * t, y))
    return points


def _clutter(rng: random.Random, image: Image.Image, ink: Colour, count_scale: float) -> None:
    """Lines, curves, dots, circles and grids, in the ink colour or any colour."""
    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(int(rng.choice((0, 0, 1, 1, 2, 3, 5)) * count_scale)):
        colour = ink if rng.random() < 0.5 else _colour(rng)
        draw.line(_curve(rng, width, height), fill=colour, width=rng.choice((1, 1, 2, 2, 3, 4)))
    if rng.random() < 0.4:
        for _ in range(int(rng.randrange(3, 40) * count_scale)):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(1, 0.15 * height * count_scale)
            colour = _colour(rng) if rng.random() < 0.7 else ink
            if rng.random() < 0.6:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            else:
                draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=rng.choice((1, 2)))
    if rng.random() < 0.08:
        step = rng.randrange(4, 12)
        colour = ink if rng.random() < 0.5 else _colour(rng)
        for x in range(rng.randrange(step), width, step):
            draw.line((x, 0, x, height), fill=colour)
        for y in range(rng.randrange(step), height, step):
            draw.line((0, y, width, y), fill=colour)


def _speckle(rng: random.Random, image: Image.Image) -> Image.Image:
    array = np.asarray(image).copy()
    generator = np.random.default_rng(rng.randrange(2**32))
    mask = generator.random(array.shape[:2]) < rng.uniform(0.01, 0.15)
    array[mask] = generator.integers(0, 256, (int(mask.sum()), 3))
    return Image.fromarray(array)


def _wave(rng: random.Random, image: Image.Image) -> Image.Image:
    """Shift rows (and maybe columns) along sine waves: the classic captcha warp."""
    array = np.asarray(image)
    height, width = array.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    amp_x, amp_y = rng.uniform(0, 0.08) * height, rng.uniform(0, 0.1) * height
    per_x, per_y = rng.uniform(0.5, 2) * height, rng.uniform(0.5, 3) * height
    src_c = cols + amp_x * np.sin(2 * math.pi * rows / per_x + rng.uniform(0, 6.3))
    src_r = rows + amp_y * np.sin(2 * math.pi * cols / per_y + rng.uniform(0, 6.3))
    src_r = np.clip(np.rint(src_r), 0, height - 1).astype(np.int64)
    src_c = np.clip(np.rint(src_c), 0, width - 1).astype(np.int64)
    return Image.fromarray(array[src_r, src_c])


def captcha(rng: random.Random, text: str, charset: str = DIGITS) -> Image.Image:
    """One random captcha showing `text` (drawn from `charset`, which picks the fonts); RGB, or RGBA
    with transparent margins."""
    groups = font_groups(charset)
    aliased = rng.random() < 0.1  # tiny hard-edged digits, as from a bitmap font
    height = rng.randrange(10, 22) if aliased else rng.randrange(22, 110)
    size = max(8, int(height * rng.uniform(0.5, 0.9)))
    background = _colour(rng)
    least_contrast = rng.uniform(30, 200) if rng.random() < 0.2 else rng.uniform(50, 200)
    ink = _contrasting(rng, background, least_contrast)
    one_font = rng.random() < 0.7
    font = ImageFont.truetype(rng.choice(rng.choice(groups)), size)
    per_glyph_colour = rng.random() < 0.3
    style = rng.choices(("plain", "hollow", "outlined", "shadow"), (0.8, 0.05, 0.08, 0.07))[0]
    second = _contrasting(rng, background, rng.uniform(30, 150))
    glyphs = []
    for char in text:
        glyph_font = font if one_font else ImageFont.truetype(rng.choice(rng.choice(groups)), size)
        colour = _contrasting(rng, background, least_contrast) if per_glyph_colour else ink
        glyphs.append(_glyph(rng, char, glyph_font, colour, style, second, aliased))
    spacing = rng.choice((rng.uniform(-0.3, 0.1), rng.uniform(0.0, 0.4), rng.uniform(0.3, 1.8)))
    margin_x = int(rng.uniform(0.0, 0.8) * size)
    margin_y = int(rng.uniform(0.0, 0.4) * size)
    widths = [g.width for g in glyphs]
    total = sum(widths) + int(spacing * size * 0.5) * (len(glyphs) - 1)
    canvas_w = max(total, widths[0]) + 2 * margin_x + 2
    canvas_h = max(g.height for g in glyphs) + 2 * margin_y + 2
    image = _background(rng, (canvas_w, canvas_h), background)
    if rng.random() < 0.5:
        _clutter(rng, image, ink, 1.0)  # behind the text
    x = margin_x
    for glyph in glyphs:
        centred = margin_y + (canvas_h - 2 * margin_y - glyph.height) // 2
        y = centred + int(rng.uniform(-0.12, 0.12) * canvas_h)
        image.paste(glyph, (x, max(0, min(canvas_h - glyph.height, y))), glyph)
        x += glyph.width + int(spacing * size * 0.5)
    if rng.random() < 0.6:
        _clutter(rng, image, ink, 0.6)  # over the text: less of it, so the digits stay legible
    if rng.random() < 0.35:
        image = _wave(rng, image)
    if rng.random() < 0.15:
        image = _speckle(rng, image)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.15:  # low resolution, scaled back up or not
        factor = rng.uniform(0.35, 0.7)
        small = image.resize((max(8, int(image.width * factor)), max(8, int(image.height * factor))),
                             Image.Resampling.BILINEAR)
        image = small if rng.random() < 0.5 else small.resize(image.size, Image.Resampling.NEAREST)
    if rng.random() < 0.15:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randrange(25, 85))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if rng.random() < 0.1:
        image = _transparent_frame(rng, image)
    return image


def _transparent_frame(rng: random.Random, image: Image.Image) -> Image.Image:
    """Put the captcha inside a bigger transparent canvas (the transparent pixels' RGB is random)."""
    width, height = image.size
    frame = Image.new("RGBA", (int(width * rng.uniform(1, 1.4)), int(height * rng.uniform(1.2, 2.5))),
                      _colour(rng) + (0,))
    frame.paste(image.convert("RGBA"), ((frame.width - width) // 2, (frame.height - height) // 2))
    return frame


def random_text(rng: random.Random, charset: str = DIGITS) -> str:
    """Digits: mostly 4 (the product's default), sometimes 3 to 6. Other charsets: 3 to 8 characters,
    each drawn alone or in runs of one case or kind, as sites pick them from their own alphabets."""
    if charset == DIGITS:
        length = rng.choice((4, 4, 4, 4, 4, 3, 5, 5, 6))
        return "".join(rng.choice(charset) for _ in range(length))
    length = rng.choice((3, 4, 4, 4, 5, 5, 5, 6, 6, 7, 8))
    kind = rng.choice((charset, charset, DIGITS + UPPER, DIGITS + LOWER, UPPER, LOWER))
    alphabet = "".join(char for char in charset if char in kind) or charset
    return "".join(rng.choice(alphabet) for _ in range(length))
