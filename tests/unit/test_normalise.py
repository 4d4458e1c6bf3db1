"""Each normalisation step on small PIL-drawn images."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from worker import normalise

DARK, LIGHT = 40, 230


def bar_image(mode: str = "RGB", size=(60, 30), ink=(DARK,) * 3, paper=(LIGHT,) * 3) -> Image.Image:
    """A vertical bar (a stand-in glyph) in the middle of a plain canvas."""
    image = Image.new("RGB", size, paper)
    width, height = size
    ImageDraw.Draw(image).rectangle([width // 2 - 3, height // 4, width // 2 + 3, 3 * height // 4], fill=ink)
    return image.convert(mode)


def model_input(image: Image.Image, digits: int = 4, stretch: float = 1.0) -> np.ndarray:
    return normalise.prepare(image).model_input(normalise.Look("standard", "margin", stretch), digits)


def test_transparent_margins_flatten_behind_dark_ink_to_white():
    image = Image.new("RGBA", (60, 30), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle([20, 5, 40, 25], fill=(10, 10, 10, 255))
    rgb = normalise.flatten(image)
    assert rgb[0, 0].tolist() == [255, 255, 255]
    assert rgb[15, 30].tolist() == [10, 10, 10]


def test_transparent_margins_flatten_behind_light_ink_to_black():
    image = Image.new("RGBA", (60, 30), (255, 255, 255, 0))
    ImageDraw.Draw(image).rectangle([20, 5, 40, 25], fill=(250, 250, 250, 255))
    rgb = normalise.flatten(image)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[15, 30].tolist() == [250, 250, 250]


def test_palette_transparency_is_flattened():
    image = Image.new("P", (20, 10), 0)
    image.putpalette([255, 0, 0] + [20, 20, 20] * 255)
    image.info["transparency"] = 0
    ImageDraw.Draw(image).rectangle([5, 2, 10, 7], fill=1)
    rgb = normalise.flatten(image)
    assert rgb[0, 0].tolist() == [255, 255, 255]  # the transparent red is gone
    assert rgb[4, 7].tolist() == [20, 20, 20]


@pytest.mark.parametrize("mode", ["L", "LA", "CMYK", "I;16", "I", "F", "1", "P"])
def test_every_mode_flattens_to_rgb_keeping_dark_ink_dark(mode):
    image = bar_image("L", ink=(0, 0, 0), paper=(255, 255, 255))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype("<u2") * 257)
    else:
        image = image.convert(mode)
    assert image.mode == mode
    rgb = normalise.flatten(image)
    assert rgb.shape == (30, 60, 3)
    assert rgb[15, 30].mean() < 100 < rgb[0, 0].mean()


def test_a_sixteen_bit_image_holding_eight_bit_values_keeps_its_paper_light():
    image = bar_image("L", ink=(0, 0, 0), paper=(255, 255, 255)).convert("I;16")  # values stay 0..255
    rgb = normalise.flatten(image)
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[15, 30].mean() < 100


def test_light_on_dark_is_inverted_and_dark_on_light_kept():
    light_on_dark = normalise.luminance(normalise.flatten(bar_image(ink=(LIGHT,) * 3, paper=(DARK,) * 3)))
    inverted = normalise.dark_on_light(light_on_dark, light_on_dark)
    assert inverted[0, 0] > 200 and inverted[15, 30] < 50
    dark_on_light = normalise.luminance(normalise.flatten(bar_image()))
    np.testing.assert_array_equal(normalise.dark_on_light(dark_on_light, dark_on_light), dark_on_light)


def test_polarity_is_judged_inside_the_margins():
    grey = np.zeros((30, 60))          # wide black margins ...
    grey[10:20, 10:50] = 220.0         # ... around a light content area with dark ink
    grey[12:18, 28:31] = 30.0
    box = (slice(10, 20), slice(10, 50))
    np.testing.assert_array_equal(normalise.dark_on_light(grey, grey[box]), grey)


def test_uniform_margins_are_trimmed_to_the_content():
    image = Image.new("RGB", (100, 50), (0, 0, 0))
    ImageDraw.Draw(image).rectangle([20, 10, 79, 39], fill=(200, 220, 200))
    ImageDraw.Draw(image).rectangle([40, 20, 45, 30], fill=(20, 20, 20))
    rows, cols = normalise.content_box(normalise.flatten(image))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (10, 40, 20, 80)
    blank = normalise.flatten(Image.new("RGB", (10, 5), "white"))
    assert normalise.content_box(blank) == (slice(None), slice(None))  # nothing to trim to: kept whole


def test_long_lines_are_erased_but_strokes_crossing_them_survive():
    grey = np.full((30, 60), 255.0)
    grey[15, :] = 0.0          # a rule across the whole width
    grey[:, 50] = 0.0          # and one down the whole height
    grey[5:25, 20:23] = 0.0    # a glyph stroke crossing the rule (shorter than the image)
    cleaned = normalise.remove_long_lines(grey)
    assert cleaned[15, 5] == 255.0 and cleaned[15, 40] == 255.0
    assert cleaned[10, 50] == 255.0
    assert (cleaned[5:25, 20:23] == 0.0).all()


def test_colour_distance_separates_hues_of_equal_brightness():
    ink, paper = (200, 60, 60), (60, 120, 100)  # close luma, far apart in colour
    rgb = normalise.flatten(bar_image(ink=ink, paper=paper))
    luma = normalise.luminance(rgb)
    assert abs(luma[15, 30] - luma[0, 0]) < 30
    contrast = normalise.ink_contrast(rgb, rgb)
    assert contrast[0, 0] > 200 and contrast[15, 30] < 50


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (20, 40)])
def test_tiny_and_narrow_images_reach_model_height_and_enough_width(size):
    batch = model_input(Image.new("RGB", size, "white"))
    assert batch.shape[:3] == (1, 1, normalise.MODEL_HEIGHT)
    assert batch.shape[3] >= 64
    assert batch.dtype == np.float32 and 0.0 <= batch.min() <= batch.max() <= 1.0


def test_narrow_variants_squeeze_the_width():
    image = Image.new("RGB", (300, 60), "white")
    for left in (20, 270):  # two glyphs far apart: the content is wide
        ImageDraw.Draw(image).rectangle([left, 10, left + 8, 50], fill="black")
    wide = model_input(image).shape[3]
    narrow = model_input(image, stretch=normalise.NARROW_STRETCH).shape[3]
    assert narrow == pytest.approx(wide * normalise.NARROW_STRETCH, abs=2)


def test_eight_digits_get_a_wider_input_than_four():
    image = Image.new("RGB", (20, 20), "white")
    assert model_input(image, 8).shape[3] > model_input(image, 4).shape[3]


def test_huge_images_are_bounded():
    batch = model_input(bar_image(size=(6000, 400)))
    assert batch.shape[2] == normalise.MODEL_HEIGHT
    assert batch.shape[3] <= 16 * normalise.MODEL_HEIGHT


def test_colour_view_turns_coloured_ink_dark_on_light():
    page = normalise.prepare(bar_image(size=(80, 40), ink=(200, 60, 60), paper=(60, 120, 100)))
    grey = normalise.colour_distance(page)
    assert np.median(grey) > 200 and grey.min() < 50


def test_standard_makes_light_on_dark_dark_on_light():
    image = Image.new("RGB", (80, 40), (DARK,) * 3)
    ImageDraw.Draw(image).rectangle([20, 8, 60, 32], outline=(LIGHT,) * 3, width=3)  # a light "0"
    batch = model_input(image)[0, 0]
    assert np.median(batch) > 0.8 and batch.min() < 0.3


def test_margin_crop_keeps_some_of_the_images_own_margin_and_tight_crop_none():
    image = Image.new("RGB", (60, 30), (LIGHT,) * 3)
    ImageDraw.Draw(image).rectangle([20, 7, 39, 22], outline=(DARK,) * 3)  # a thin "0"
    page = normalise.prepare(image)
    (rows, cols), (margin_rows, margin_cols) = page.box, page.margin_box
    assert (rows.start, rows.stop, cols.start, cols.stop) == (7, 23, 20, 40)
    extra = round(normalise.MARGIN * (rows.stop - rows.start))
    assert (margin_rows.start, margin_rows.stop) == (rows.start - extra, rows.stop + extra)
    assert (margin_cols.start, margin_cols.stop) == (cols.start - extra, cols.stop + extra)

    def glyph_height(look: normalise.Look) -> float:  # share of the rows the glyph's darkest column covers
        return float((page.model_input(look, 4)[0, 0] < 0.5).mean(axis=0).max())

    assert glyph_height(normalise.Look("standard", "tight")) == 1.0
    assert 0.6 < glyph_height(normalise.Look("standard", "margin")) < 0.95


def test_margin_crop_stays_inside_the_image():
    image = Image.new("RGB", (40, 20), (LIGHT,) * 3)
    ImageDraw.Draw(image).rectangle([0, 0, 39, 19], outline=(DARK,) * 3)  # content up to every edge
    page = normalise.prepare(image)
    assert page.margin_box == (slice(0, 20), slice(0, 40))
