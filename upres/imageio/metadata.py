"""What survives the round trip: ImageMeta, DecodedImage and the EXIF/ICC/DPI/orientation helpers."""

from __future__ import annotations

import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from upres.imageio.checks import _PNG_MAGIC

_ORIENTATION_TAG = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 282, 283, 296
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 0xA002, 0xA003
# Descriptive IFD0 tags worth carrying from a TIFF source (layout tags must not be copied).
# Software (305) is left out: the output is not made by the source's software.
_TIFF_EXIF_KEEP = (270, 271, 272, 306, 315, 33432, _ORIENTATION_TAG, _EXIF_IFD, _GPS_IFD)

Mode = Literal["rgb", "gray"]


@dataclass
class ImageMeta:
    """What an output must preserve from its source. ``width``/``height`` and ``dpi`` are
    post-orientation (a 90-degree rotation swaps the DPI axes too); ``exif`` has its orientation
    reset to 1 because the rotation is applied to the pixels.

    The descriptive metadata archives rely on is kept as found, and updated only where an upscale
    makes it stale (pixel dimensions, resolution, orientation): ``xmp`` (the XMP packet),
    ``iptc`` (IPTC-IIM records, as TIFF tag 33723 or Photoshop's resource 0x0404 hold them),
    ``comments`` (JPEG COM segments, GIF comments) and ``png_chunks`` ((type, body) of PNG
    tEXt/zTXt/iTXt text and the gAMA/cHRM/sRGB colour chunks, in file order).
    `upres.imageio.metadata_record` says which of them an output format can hold.
    """

    mode: Mode
    bit_depth: int
    has_alpha: bool
    icc_profile: bytes | None
    dpi: tuple[float, float] | None
    exif: bytes | None
    source_format: str
    width: int
    height: int
    xmp: bytes | None = None
    iptc: bytes | None = None
    comments: tuple[bytes, ...] = ()
    png_chunks: tuple[tuple[bytes, bytes], ...] = ()
    # what the decoder could not keep for the pixels it made (a CMYK profile on RGB pixels)
    dropped: tuple[str, ...] = ()


@dataclass
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1]
    meta: ImageMeta
    # SHA-256 of the very bytes these pixels were decoded from ("" when not decoded from a file).
    sha256: str = ""


def _valid_dpi(dpi: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


def refused_icc(icc: bytes | None, mode: Mode) -> tuple[str, ...]:
    """("icc_profile",) where a source's profile does not describe the pixels decoded from it."""
    return ("icc_profile",) if icc and _icc_for_mode(icc, mode) is None else ()


def _icc_for_mode(icc: bytes | None, mode: Mode) -> bytes | None:
    """Keep a profile only if it describes the colour space the pixels are stored in (a CMYK
    profile on converted RGB pixels, or an RGB one on gray pixels, would be wrong)."""
    if not icc or len(icc) < 20:
        return None
    expected = b"RGB " if mode == "rgb" else b"GRAY"
    return bytes(icc) if icc[16:20] == expected else None


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array, like PIL.ImageOps.exif_transpose."""
    if orientation == 2:
        out = array[:, ::-1]
    elif orientation == 3:
        out = array[::-1, ::-1]
    elif orientation == 4:
        out = array[::-1]
    elif orientation == 5:
        out = array.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(array, -1)
    elif orientation == 7:
        out = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(array, 1)
    else:
        return array
    return np.ascontiguousarray(out)


def _load_exif(raw: bytes | None) -> Image.Exif:
    exif = Image.Exif()
    if raw:
        try:
            exif.load(raw)
        except Exception:  # malformed EXIF must not make the image unreadable
            return Image.Exif()
    return exif


def _orientation_of(exif: Image.Exif) -> int:
    try:
        value = int(exif.get(_ORIENTATION_TAG, 1))
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_dpi(exif: Image.Exif) -> tuple[float, float] | None:
    """DPI from EXIF resolution tags, for containers that carry none of their own."""
    unit = exif.get(_RESOLUTION_UNIT, 2)
    if unit not in (2, 3) or _X_RESOLUTION not in exif or _Y_RESOLUTION not in exif:
        return None
    factor = 2.54 if unit == 3 else 1.0
    try:
        return _valid_dpi((float(exif[_X_RESOLUTION]) * factor, float(exif[_Y_RESOLUTION]) * factor))
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _tiff_descriptive_exif(exif: Image.Exif, drop_description: bool) -> Image.Exif:
    kept = Image.Exif()
    for tag in _TIFF_EXIF_KEEP:
        if tag not in exif or (tag == 270 and drop_description):
            continue
        kept[tag] = exif.get_ifd(tag) if tag in (_EXIF_IFD, _GPS_IFD) else exif[tag]
    return kept


def _serialise_exif(exif: Image.Exif) -> bytes | None:
    """EXIF bytes (``Exif\\0\\0`` + TIFF structure) with orientation reset, or None if empty."""
    if len(exif) == 0:
        return None
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    try:
        return exif.tobytes()
    except Exception:  # unserialisable vendor data: drop EXIF rather than fail the image
        return None


def _exif_for_output(
    raw: bytes | None, width: int, height: int, dpi: tuple[float, float] | None
) -> bytes | None:
    """Update the tags an upscale makes stale: pixel dimensions and resolution."""
    if not raw:
        return None
    exif = _load_exif(raw)
    if len(exif) == 0:
        return None
    if dpi is not None and (_X_RESOLUTION in exif or _Y_RESOLUTION in exif):
        exif[_X_RESOLUTION] = float(dpi[0])
        exif[_Y_RESOLUTION] = float(dpi[1])
        exif[_RESOLUTION_UNIT] = 2
    if _EXIF_IFD in exif:
        sub = exif.get_ifd(_EXIF_IFD)
        if _PIXEL_X_DIMENSION in sub:
            sub[_PIXEL_X_DIMENSION] = width
        if _PIXEL_Y_DIMENSION in sub:
            sub[_PIXEL_Y_DIMENSION] = height
    return _serialise_exif(exif)


# PNG chunks kept as found: text (captions, rights, provenance) and colour meaning (a linear
# PNG read without its gAMA looks wrong). XMP, in an iTXt of its own keyword, is kept apart.
PNG_KEPT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"gAMA", b"cHRM", b"sRGB")
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"


@dataclass
class PngAncillary:
    """What a PNG's chunk walk found that Pillow does not hand over whole (chunks after IDAT,
    which Pillow only reads by decoding, and the kind of each text chunk)."""

    exif: bytes | None = None
    xmp: bytes | None = None
    chunks: tuple[tuple[bytes, bytes], ...] = ()


_TEXT_LIMIT = 1 << 24  # a compressed text or XMP chunk inflates to at most this (a zlib bomb)


def bounded_inflate(data: bytes) -> bytes | None:
    """``data`` inflated, or None if it is not zlib data or inflates past `_TEXT_LIMIT`."""
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, _TEXT_LIMIT)
    except zlib.error:
        return None
    return out if inflater.eof else None


def _png_itxt_xmp(body: bytes) -> bytes | None:
    """The XMP packet of an ``XML:com.adobe.xmp`` iTXt body, else None."""
    keyword, _, rest = body.partition(b"\x00")
    if keyword != PNG_XMP_KEYWORD or len(rest) < 2 or rest[0] not in (0, 1):
        return None
    compressed = rest[0] == 1
    _, _, rest = rest[2:].partition(b"\x00")  # language tag
    _, _, text = rest.partition(b"\x00")  # translated keyword
    return bounded_inflate(text) if compressed else text


def _png_collect(found: list[tuple[bytes, bytes]]) -> PngAncillary:
    exif, xmp, kept = None, None, []
    for kind, body in found:
        if kind == b"eXIf":
            exif = exif or body
        elif kind == b"iTXt" and (packet := _png_itxt_xmp(body)) is not None:
            xmp = xmp or packet
        elif kind in PNG_KEPT_CHUNKS:
            kept.append((kind, body))
    return PngAncillary(exif, xmp, tuple(kept))


def _png_ancillary(path: Path) -> PngAncillary:
    """The ancillary chunks of a PNG on disk, seeking over every other chunk's body (for probing:
    `read_image` collects them while checking the whole file)."""
    found: list[tuple[bytes, bytes]] = []
    with path.open("rb") as handle:
        handle.seek(len(_PNG_MAGIC))
        while True:
            head = handle.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind == b"eXIf" or kind in PNG_KEPT_CHUNKS:
                body = handle.read(length)
                if len(body) != length:
                    break
                found.append((kind, body))
                handle.seek(4, os.SEEK_CUR)
            else:
                handle.seek(length + 4, os.SEEK_CUR)
    return _png_collect(found)


def _oriented_dpi(dpi: tuple[float, float] | None, orientation: int) -> tuple[float, float] | None:
    """DPI of the displayed axes: orientations 5-8 turn the stored rows into columns."""
    if dpi is None or orientation not in (5, 6, 7, 8):
        return dpi
    return (dpi[1], dpi[0])


_PHOTOSHOP = b"Photoshop 3.0\x00"
_IPTC_RESOURCE = 0x0404


def _photoshop_iptc(payload: bytes) -> bytes | None:
    """The IPTC-IIM records (image resource 0x0404) of a Photoshop APP13 payload."""
    if not payload.startswith(_PHOTOSHOP):
        return None
    offset = len(_PHOTOSHOP)
    while offset + 12 <= len(payload) and payload[offset : offset + 4] == b"8BIM":
        resource = struct.unpack(">H", payload[offset + 4 : offset + 6])[0]
        name_length = payload[offset + 6]
        offset += 6 + ((name_length + 2) & ~1)  # a Pascal string, padded to even length
        if offset + 4 > len(payload):
            return None
        size = struct.unpack(">I", payload[offset : offset + 4])[0]
        body = payload[offset + 4 : offset + 4 + size]
        if resource == _IPTC_RESOURCE:
            return bytes(body) or None
        offset += 4 + size + size % 2
    return None


def _photoshop_app13(iptc: bytes) -> bytes:
    """A Photoshop APP13 payload holding only ``iptc`` (its other resources, such as thumbnails
    and resolution, would be stale after an upscale)."""
    body = iptc + b"\x00" * (len(iptc) % 2)
    return _PHOTOSHOP + b"8BIM" + struct.pack(">HBBI", _IPTC_RESOURCE, 0, 0, len(iptc)) + body


def _scaled_dpi(meta: ImageMeta | None, scale: int) -> tuple[float, float] | None:
    if meta is None or meta.dpi is None:
        return None
    return (meta.dpi[0] * scale, meta.dpi[1] * scale)
