"""What survives the round trip: ImageMeta, DecodedImage and the EXIF/ICC/DPI/orientation helpers."""

from __future__ import annotations

import math
import os
import struct
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
    """What an output must preserve from its source. ``width``/``height`` are post-orientation;
    ``exif`` has its orientation reset to 1 because the rotation is applied to the pixels."""

    mode: Mode
    bit_depth: int
    has_alpha: bool
    icc_profile: bytes | None
    dpi: tuple[float, float] | None
    exif: bytes | None
    source_format: str
    width: int
    height: int


@dataclass
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1]
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1]
    meta: ImageMeta


def _valid_dpi(dpi: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


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


def _png_late_exif(path: Path) -> bytes | None:
    """Find an eXIf chunk by seeking over chunk bodies (Pillow only sees chunks after IDAT by
    decoding the whole image)."""
    with path.open("rb") as handle:
        handle.seek(len(_PNG_MAGIC))
        while True:
            head = handle.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            if kind == b"eXIf":
                data = handle.read(length)
                return data if len(data) == length else None
            if kind == b"IEND":
                return None
            handle.seek(length + 4, os.SEEK_CUR)


def _scaled_dpi(meta: ImageMeta | None, scale: int) -> tuple[float, float] | None:
    if meta is None or meta.dpi is None:
        return None
    return (meta.dpi[0] * scale, meta.dpi[1] * scale)
