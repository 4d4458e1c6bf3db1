"""Turn the base64 text a client sends into a decoded image, within the configured limits.

The API checks the base64 and the image header to refuse bad input before anything is queued; the
worker decodes it in full, checking again, because it cannot trust what a crawler put on the queue.
Every call into Pillow goes through :func:`_pillow`, so no decoding escapes the limits: only the formats
captchas come in are opened, Pillow's own bomb check uses the configured pixel limit, and whatever
Pillow raises on a crafted file refuses that one image.
"""

from __future__ import annotations

import binascii
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from shared.contract import ErrorCode, InputError
from shared.settings import Settings

_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/]*={0,2}")
MIN_IMAGE_SIDE = 8
# The formats captchas come in. Pillow knows some 40 more, and they widen what a crafted file reaches:
# ICO and ICNS decode the images they embed (whatever size those claim), EPS runs Ghostscript, TIFF and
# PSD bring decoders no captcha needs. A constant, not a setting: no deployment needs more.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
_FORMAT_NAMES = ", ".join(ALLOWED_FORMATS[:-1]) + " or " + ALLOWED_FORMATS[-1]
# PNG text and ICC chunks are inflated while the header is read (Pillow allows 64 MB per image): a 60 kB
# file could cost the API 150 ms of CPU. A captcha carries no more than a few kB of either.
PngImagePlugin.MAX_TEXT_CHUNK = PngImagePlugin.MAX_TEXT_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """The input limits from :class:`Settings`, in one small value the decoder needs."""

    max_image_bytes: int
    max_image_side: int
    max_image_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(settings.max_image_bytes, settings.max_image_side, settings.max_image_pixels)


def decode_base64(text: str, limits: ImageLimits) -> bytes:
    """Return the bytes of raw base64 or of a ``data:image/...;base64,`` URL.

    Line breaks and spaces are ignored (MIME base64 wraps lines) and the URL-safe alphabet is accepted;
    anything else that is not base64 is refused with the reason.
    """
    text = text.strip()
    if not text:
        raise InputError(ErrorCode.EMPTY_INPUT, "empty input: no image data")
    if text.startswith("data:"):
        text = _data_url_payload(text)
    text = "".join(text.split()).replace("-", "+").replace("_", "/")
    if not text:
        raise InputError(ErrorCode.EMPTY_INPUT, "empty input: the data URL holds no image data")
    if len(text) > (limits.max_image_bytes * 4) // 3 + 4:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"image too large: over {limits.max_image_bytes} bytes")
    if len(text) % 4 == 0:
        try:  # strict decoding checks the alphabet and the padding in C, 5x faster than a regex first
            return binascii.a2b_base64(text, strict_mode=True)
        except ValueError:
            pass
    if not _BASE64_CHARS.fullmatch(text):  # only for refused input: which reason to give
        raise InputError(ErrorCode.MALFORMED_BASE64, "malformed base64: characters outside the alphabet")
    raise InputError(ErrorCode.MALFORMED_BASE64, "malformed base64: wrong length or padding")


def _data_url_payload(url: str) -> str:
    header, comma, payload = url.partition(",")
    if not comma:
        raise InputError(ErrorCode.MALFORMED_DATA_URL, "malformed data URL: no comma before the data")
    mime, _, encoding = header[len("data:") :].partition(";")
    if not mime.lower().startswith("image/"):
        raise InputError(ErrorCode.MALFORMED_DATA_URL, f"data URL type {mime or 'missing'!r} is not an image")
    if encoding.lower() != "base64":
        raise InputError(ErrorCode.MALFORMED_DATA_URL, "malformed data URL: only ;base64 data is accepted")
    return payload


def open_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Decode image bytes, checking the size from the header before any pixel is decoded, and again
    after: the decoded image is what the worker reads, whatever the header said."""
    image = _open_header(data, limits)
    with _pillow(limits):
        image.load()
    _check_size(image.size, limits)
    return image


def _open_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """The image with only its header read, refused when its type or size is not acceptable."""
    if len(data) > limits.max_image_bytes:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"image too large: over {limits.max_image_bytes} bytes")
    with _pillow(limits):
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    _check_size(image.size, limits)
    return image


@contextmanager
def _pillow(limits: ImageLimits) -> Iterator[None]:
    """Run Pillow on untrusted bytes: its own bomb check at our pixel limit (it also guards whatever a
    plugin decodes past our checks), and anything it raises made the refusal of this image alone: its
    plugins raise a dozen exception types on crafted files (struct.error, EOFError, IndexError...)."""
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels  # process-wide; every caller sets the same value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(ErrorCode.IMAGE_TOO_LARGE, f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        detail = f"not a decodable image: not a {_FORMAT_NAMES} file"
        raise InputError(ErrorCode.NOT_AN_IMAGE, detail) from exc
    except Exception as exc:  # noqa: BLE001 - see the docstring: any failure to decode is this image's
        reason = str(exc) or type(exc).__name__
        raise InputError(ErrorCode.NOT_AN_IMAGE, f"not a decodable image: {reason}") from exc


def _check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    if max(width, height) > limits.max_image_side or width * height > limits.max_image_pixels:
        raise InputError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"image too large: {width}x{height} pixels (limits: side {limits.max_image_side}, "
            f"{limits.max_image_pixels} pixels)",
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise InputError(ErrorCode.IMAGE_TOO_SMALL, f"image too small: {width}x{height} pixels")


def check_image(text: str, limits: ImageLimits, min_bytes: int = 0) -> None:
    """What the API checks before queueing: base64, image type and size from the header (and, for a
    protocol that refuses tiny files, ``min_bytes``). The pixels are decoded once, by the worker (which
    refuses a corrupt body the same way, as ``not_an_image``)."""
    data = decode_base64(text, limits)
    if len(data) < min_bytes:
        raise InputError(ErrorCode.EMPTY_INPUT, f"the image file is {len(data)} bytes, under {min_bytes}")
    check_header(data, limits)


def check_header(data: bytes, limits: ImageLimits) -> None:
    """Image type and size from the header alone: cheap, and no pixel of a hostile file is decoded in
    the API (a thread pool decoding megapixel images at once grows it by hundreds of MB)."""
    _open_header(data, limits).close()


def decode_image(text: str, limits: ImageLimits) -> Image.Image:
    """Base64 text (raw or data URL) to a loaded image, or an :class:`InputError` saying why not."""
    return open_image(decode_base64(text, limits), limits)
