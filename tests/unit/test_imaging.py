"""shared/imaging.py in process, on the hostile files of tests/hostile_images.py: fast, no services."""

from __future__ import annotations

import base64
import io
import warnings

import pytest
from PIL import Image

from shared.contract import ErrorCode, InputError
from shared.imaging import ImageLimits, check_image, open_image
from tests import hostile_images

LIMITS = ImageLimits(max_image_bytes=2 * 1024 * 1024, max_image_side=4096, max_image_pixels=8_000_000)
CAPTCHA = Image.new("RGB", (150, 50), "white")
FILES = {**hostile_images.every_format(CAPTCHA), **hostile_images.bombs(), **hostile_images.large_images()}
FILES |= hostile_images.truncated(FILES, (0, 0.5))


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_is_decoded_within_the_limits_or_refused_with_a_reason(name: str) -> None:
    """Whatever Pillow raises on a crafted file is an InputError; what decodes is within the limits."""
    try:
        image = open_image(FILES[name], LIMITS)
    except InputError as error:
        assert error.code in {ErrorCode.NOT_AN_IMAGE, ErrorCode.IMAGE_TOO_LARGE, ErrorCode.IMAGE_TOO_SMALL}
        return
    assert image.format in hostile_images.ALLOWED
    assert image.width <= LIMITS.max_image_side and image.width * image.height <= LIMITS.max_image_pixels


@pytest.mark.parametrize("fmt", sorted(set(hostile_images.every_format(CAPTCHA)) - hostile_images.ALLOWED))
def test_other_formats_are_refused_from_the_header(fmt: str) -> None:
    with pytest.raises(InputError) as refused:
        check_image(base64.b64encode(FILES[fmt]).decode(), LIMITS)
    assert refused.value.code == ErrorCode.NOT_AN_IMAGE
    assert "PNG, JPEG, GIF, BMP or WEBP" in refused.value.detail


def test_pillows_own_limit_is_the_configured_one() -> None:
    """It guards whatever Pillow decodes in the process past our own checks."""
    check_image(base64.b64encode(FILES["PNG"]).decode(), ImageLimits(2 * 1024 * 1024, 4096, 1_000_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(Image.DecompressionBombWarning):
            Image.open(io.BytesIO(hostile_images.blank_png(1500, 1000)))
