"""Hostile image files, made here rather than stored: one of every format Pillow can open, bombs (small
files whose headers, or whatever they embed, claim huge images) and truncated copies of each.

Each crafted file is checked to be what it claims: Pillow, with every format enabled, identifies it as
that format (see :func:`check_identified`), so the fuzz really offers every format.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

ALLOWED = {"PNG", "JPEG", "GIF", "BMP", "WEBP"}  # what the service reads
# Formats Pillow writes only with extra tools or handlers, or that it cannot open again.
UNSAVEABLE = {"BUFR", "GRIB", "HDF5", "PALM", "PDF", "WMF"}  # crafted below where Pillow opens them
# Modes tried in turn when saving a sample: the first each format accepts is used.
SAVE_MODES = ("RGB", "L", "P", "1", "RGBA", "F")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = b"", text_chunks: int = 0) -> bytes:
    """A 1-bit PNG whose header says ``width`` x ``height`` and whose pixel data is ``idat`` (zlib)."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    # zTXt chunks of 1 MB of zeros each: tiny compressed, each decompressed when the header is read.
    text = _chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"\0" * 1_000_000, 9)) * text_chunks
    pixels = _chunk(b"IDAT", idat or zlib.compress(b"")) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + header + text + pixels


def icns_with_slot(slot: bytes, data: bytes) -> bytes:
    """An ICNS file with one icon slot (``ic07`` is the 128x128 one) holding ``data``."""
    entry = slot + struct.pack(">I", len(data) + 8) + data
    return b"icns" + struct.pack(">I", len(entry) + 8) + entry


def ico_with(png: bytes) -> bytes:
    """An ICO whose directory claims a 16x16 icon and which embeds ``png`` (Pillow decodes it to open it)."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def blank_png(width: int, height: int) -> bytes:
    return saved(Image.new("1", (width, height), 0), "PNG", optimize=True)


def sample(image: Image.Image, fmt: str) -> bytes | None:
    """``image`` saved as ``fmt`` in the first mode the format takes, or None if it takes none."""
    for mode in SAVE_MODES:
        try:
            data = saved(image.convert(mode), fmt)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if data:
            return data
    return None


def cursor(image: Image.Image, claimed: tuple[int, int] | None = None) -> bytes:
    """A CUR file: an ICO of type 2 holding a bitmap; ``claimed`` overwrites the bitmap's own size."""
    data = bytearray(saved(image.resize((32, 32)), "ICO", sizes=[(32, 32)], bitmap_format="bmp"))
    data[2] = 2
    if claimed:
        bitmap = struct.unpack_from("<I", data, 18)[0]
        struct.pack_into("<ii", data, bitmap + 4, claimed[0], claimed[1] * 2)  # height counts the mask too
    return bytes(data)


def crafted(width: int, height: int) -> dict[str, bytes]:
    """Minimal files of the formats Pillow opens but cannot write, claiming ``width`` x ``height`` where
    the format can say so."""
    w, h = width, height
    filler = b"\x80" * min(w * h // 64, 4096)  # some pixel data, never all of it
    psd = (b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3) + struct.pack(">III", 0, 0, 0)
           + struct.pack(">H", 0) + filler)  # fmt: skip
    fits = b"".join(card.ljust(80).encode() for card in (
        "SIMPLE  = T", "BITPIX  = 8", "NAXIS   = 2", f"NAXIS1  = {w}", f"NAXIS2  = {h}", "END"))
    fits = fits.ljust(2880, b" ") + filler
    xpm = (b'/* XPM */\nstatic char *x[] = {\n"%d %d 2 1",\n"  c #FFFFFF",\n". c #000000",\n' % (w, h)
           + b"".join(b'"' + b" ." * (w // 2) + b'",\n' for _ in range(min(h, 4))) + b"};\n")
    sun = struct.pack(">8I", 0x59A66A95, w, h, 8, w * h, 1, 0, 0) + filler
    gbr = struct.pack(">5I", 20 + 8 + 2, 2, w, h, 1) + b"GIMP" + struct.pack(">I", 10) + b"x\0" + b"\x80" * 64
    imt = b"width %d\nheight %d\npixel n8\n\x0c" % (w, h) + filler
    pixar = bytearray(b"\x80\xe8\x00\x00".ljust(1024, b"\0"))
    pixar[416:420] = struct.pack("<HH", h, w)
    pixar[424:428] = struct.pack("<HH", 14, 2)
    mpeg = b"\x00\x00\x01\xb3" + ((w & 0xFFF) << 12 | h & 0xFFF).to_bytes(3, "big") + b"\x00" * 64
    xv = b"P7 332\n#XVVERSION:Version 2.28\n#END_OF_COMMENTS\n%d %d 255\n" % (w, h) + filler
    ftex = b"FTEX" + struct.pack("<7i", 0, w, h, 1, 1, 1, 32) + struct.pack("<i", w * h // 64) + b"\x80" * 64
    pcx = saved(Image.new("L", (min(w, 256), min(h, 256)), 128), "PCX")
    dcx = struct.pack("<II", 987654321, 12) + struct.pack("<I", 0) + pcx
    mcidas = struct.pack("!64i", *([0, 4] + [0] * 6 + [h, w, 1, 0, 0, 1, 0] + [0] * 18 + [256] + [0] * 30))
    pcd = b"\0" * 2048 + b"PCD_".ljust(1539, b"\0") + filler
    scale = -(-max(w, h) // 30000)  # the bounding box is in shorts: fewer units per inch for more pixels
    wmf = struct.pack("<IHhhhhHIH", 0x9AC6CDD7, 0, 0, 0, w // scale, h // scale, 72 // scale, 0, 0)
    wmf += b"\x01\x00\x09\x00" + b"\0" * 40
    iptc = b"".join(b"\x1c" + bytes(tag) + struct.pack(">H", len(value)) + value for tag, value in (
        ((3, 60), b"\x01\x00"), ((3, 20), struct.pack(">I", w)), ((3, 30), struct.pack(">I", h)),
        ((3, 120), b"\x01"), ((8, 10), filler[:64])))  # fmt: skip
    fli = bytearray(128)
    struct.pack_into("<IHHHHH", fli, 0, 128 + 16, 0xAF12, 1, w & 0xFFFF, h & 0xFFFF, 8)
    fli += struct.pack("<IHH8x", 16, 0xF1FA, 0)
    stubs = {"BUFR": b"BUFR" + filler[:64], "GRIB": b"GRIB\0\0\0\x01" + filler[:64],
             "HDF5": b"\x89HDF\r\n\x1a\n" + filler[:64]}  # fmt: skip
    return {**stubs, "MCIDAS": mcidas + filler, "PCD": pcd, "WMF": wmf, "IPTC": iptc, "FLI": bytes(fli),
            "PSD": psd, "FITS": fits, "XPM": xpm, "SUN": sun, "GBR": gbr, "IMT": imt, "PIXAR": bytes(pixar),
            "MPEG": mpeg, "XVTHUMB": xv, "FTEX": ftex, "DCX": dcx}  # fmt: skip


def every_format(image: Image.Image) -> dict[str, bytes]:
    """``image`` in every format Pillow can write and open again, plus the crafted open-only ones."""
    Image.init()
    files: dict[str, bytes] = {}
    for fmt in sorted(set(Image.SAVE) - UNSAVEABLE - {"MPO"}):  # one frame as MPO is a JPEG
        data = sample(image.resize((128, 128)) if fmt in {"ICNS", "ICO"} else image, fmt)
        if data is not None:
            files[fmt] = data
    files["CUR"] = cursor(image)
    files.update({fmt: data for fmt, data in crafted(*image.size).items() if fmt not in files})
    return files


def bombs() -> dict[str, bytes]:
    """Small files whose header, or what they embed, claims many more pixels than any captcha has."""
    lying_bmp = bytearray(saved(Image.new("L", (8, 8)), "BMP"))
    lying_bmp[18:26] = struct.pack("<ii", 4000, 2000)  # within the pixel limit, no pixels behind it
    big_gif = bytearray(saved(Image.new("P", (16, 16)), "GIF", save_all=True,
                              append_images=[Image.new("P", (16, 16), 1)] * 3))  # fmt: skip
    big_gif[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen
    first_frame = big_gif.index(b"\x2c")
    return {
        "icns-bomb-png-slot": icns_with_slot(b"ic07", png_claiming(14000, 14000)),
        "icns-large-png-slot": icns_with_slot(b"ic07", blank_png(2500, 2500)),
        "ico-claims-16-embeds-3000": ico_with(blank_png(3000, 3000)),
        "ico-claims-16-embeds-2000": ico_with(blank_png(2000, 2000)),
        "cur-claims-30000": cursor(Image.new("L", (8, 8)), claimed=(30000, 30000)),
        "png-bomb-16000": blank_png(16000, 16000),
        "png-header-only-60000": png_claiming(60000, 60000),
        "png-lying-4000x2000": png_claiming(4000, 2000, zlib.compress(b"\0" * 1000)),
        "png-ztxt-bomb": png_claiming(64, 32, zlib.compress(b"\0" * 33 * 5 * 32), text_chunks=60),
        "gif-huge-logical-screen": bytes(big_gif),
        "gif-frame-beyond-screen": bytes(big_gif[:6]) + struct.pack("<HH", 16, 16)
        + bytes(big_gif[10:first_frame]) + b"\x2c" + struct.pack("<HHHH", 0, 0, 30000, 30000)
        + bytes(big_gif[first_frame + 9 :]),
        "bmp-lying-4000x2000": bytes(lying_bmp),
        "tiff-bomb": saved(Image.new("1", (16000, 16000)), "TIFF", compression="tiff_deflate"),
        "webp-claims-16000": _webp_claiming(16000, 16000),
        "jpeg-header-60000": _jpeg_claiming(60000, 60000),
        "jpeg-lying-4000x2000": _jpeg_claiming(4000, 2000),
        **{f"{fmt.lower()}-claims-60000": data for fmt, data in crafted(60000, 60000).items()},
        **{f"{fmt.lower()}-claims-4000x2000": data for fmt, data in crafted(4000, 2000).items()},
        "eps-huge-bounding-box": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 60000 60000\nshowpage\n%%EOF",
    }


def large_images() -> dict[str, bytes]:
    """Valid blank images as large as the limits allow, whose truncated copies promise 8 megapixels."""
    return {
        "gif-4000x2000": saved(Image.new("P", (4000, 2000)), "GIF"),
        "webp-4000x2000": saved(Image.new("L", (4000, 2000)), "WEBP", lossless=True),
        "png-4000x2000": blank_png(4000, 2000),
    }


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG's header with its frame size changed, and the scan data cut short."""
    data = bytearray(saved(Image.new("L", (16, 16), 128), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[: data.index(b"\xff\xda") + 20])


def _webp_claiming(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header says ``width`` x ``height`` (of at most 16384) over 16x16 pixels."""
    data = bytearray(saved(Image.new("L", (16, 16)), "WEBP", lossless=True))
    bits = struct.unpack_from("<I", data, 21)[0] & ~0xFFFFFFF | (width - 1) | (height - 1) << 14
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


def truncated(files: dict[str, bytes], fractions: tuple[float, ...]) -> dict[str, bytes]:
    """Each file cut to each fraction of its length (at least 16 bytes): headers promising what is missing."""
    cuts: dict[str, bytes] = {}
    for name, data in files.items():
        for fraction in fractions:
            end = max(16, int(len(data) * fraction))
            if end < len(data):
                cuts[f"{name}-cut-{end}"] = data[:end]
    return cuts


def check_identified(files: dict[str, bytes]) -> None:
    """Every sample is identified by Pillow as its format (else the fuzz would not offer that format)."""
    for fmt, data in files.items():
        opened = Image.open(io.BytesIO(data))
        assert opened.format.upper() == fmt, (fmt, opened.format)
