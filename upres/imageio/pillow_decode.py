"""Decoding through Pillow (OpenCV for 16-bit PNGs): every format except TIFF."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from upres.imageio.checks import _PNG_MAGIC, ImageError, _check_pixels, _corrupt
from upres.imageio.metadata import (
    DecodedImage,
    ImageMeta,
    Mode,
    _exif_dpi,
    _icc_for_mode,
    _load_exif,
    _orientation_of,
    _png_late_exif,
    _serialise_exif,
    _tiff_descriptive_exif,
    _valid_dpi,
)
from upres.imageio.samples import _checked_float, _finish, _unit_float


class _PillowSettings:
    """Scoped override of Pillow's global decoding switches, reference counted across threads.

    Our own ``max_pixels`` check replaces Pillow's bomb guard (which would refuse sizes the user
    allowed with --max-pixels), and truncated files must always raise.
    """

    _lock = threading.Lock()
    _users = 0
    _saved: tuple[int | None, bool] = (None, False)

    @classmethod
    @contextmanager
    def active(cls) -> Iterator[None]:
        with cls._lock:
            if cls._users == 0:
                cls._saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
                Image.MAX_IMAGE_PIXELS = None
                ImageFile.LOAD_TRUNCATED_IMAGES = False
            cls._users += 1
        try:
            yield
        finally:
            with cls._lock:
                cls._users -= 1
                if cls._users == 0:
                    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = cls._saved


@contextmanager
def _open_pillow(path: Path) -> Iterator[Image.Image]:
    with _PillowSettings.active():
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise ImageError(path, "not a recognised image format") from None
        except PermissionError:
            raise ImageError(path, "permission denied") from None
        except Exception as exc:
            raise ImageError(path, f"unreadable image header ({exc})") from None
        with image:
            yield image


def _source_format(image: Image.Image) -> str:
    fmt = (image.format or "UNKNOWN").upper()
    return "JPEG" if fmt == "MPO" else fmt  # MPO is a multi-picture JPEG (many cameras)


def _pillow_layout(path: Path, image: Image.Image) -> tuple[Mode, int, bool]:
    """(mode, bit_depth, has_alpha) that decoding this Pillow image will produce."""
    mode = image.mode
    if mode in ("1", "L"):
        return "gray", 8, False
    if mode in ("LA", "La"):
        return "gray", 8, True
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return "gray", 16, False
    if mode in ("P", "PA"):
        return "rgb", 8, mode == "PA" or "transparency" in image.info
    if mode in ("RGBA", "RGBa"):
        return "rgb", 8, True
    if mode in ("RGB", "RGBX", "CMYK", "YCbCr", "HSV"):
        return "rgb", 8, False
    raise ImageError(path, f"unsupported pixel mode {mode!r}")


def _png_header(head: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG IHDR, or None if ``head`` is not a PNG."""
    if not head.startswith(_PNG_MAGIC) or head[12:16] != b"IHDR" or len(head) < 26:
        return None
    return head[24], head[25]


def _pillow_meta(
    path: Path, image: Image.Image, max_pixels: int, head: bytes
) -> tuple[ImageMeta, int]:
    width, height = image.size
    _check_pixels(path, width, height, max_pixels)
    source_format = _source_format(image)
    mode, bit_depth, has_alpha = _pillow_layout(path, image)
    png = _png_header(head) if source_format == "PNG" else None
    if png is not None and png[0] == 16:
        bit_depth = 16
        mode = "gray" if png[1] in (0, 4) else "rgb"
        has_alpha = png[1] in (4, 6)
    if source_format == "PNG":
        exif = _load_exif(image.info.get("exif") or _png_late_exif(path))
    else:
        try:
            exif = image.getexif()
        except Exception:
            exif = Image.Exif()
    orientation = _orientation_of(exif)
    if source_format == "TIFF":
        exif = _tiff_descriptive_exif(exif, drop_description=False)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    meta = ImageMeta(
        mode=mode,
        bit_depth=bit_depth,
        has_alpha=has_alpha,
        icc_profile=_icc_for_mode(image.info.get("icc_profile"), mode),
        dpi=_valid_dpi(image.info.get("dpi")) or _exif_dpi(exif),
        exif=_serialise_exif(exif),
        source_format=source_format,
        width=width,
        height=height,
    )
    return meta, orientation


def _pillow_pixels(path: Path, image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode to float32 (color (H, W, C), alpha (H, W) | None) in [0, 1], C in {1, 3}."""
    fmt = _source_format(image)
    try:
        image.load()
        mode, _, has_alpha = _pillow_layout(path, image)
        if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            return _unit_float(np.asarray(image), 65535.0)[..., None], None
        if image.mode == "I":
            values = np.asarray(image)
            if values.size and (values.min() < 0 or values.max() > 65535):
                raise ImageError(path, "32-bit integer samples outside 0..65535 are not supported")
            return _unit_float(values, 65535.0)[..., None], None
        if image.mode == "F":
            return _checked_float(path, np.asarray(image))[..., None], None
        target = ("LA" if has_alpha else "L") if mode == "gray" else "RGBA" if has_alpha else "RGB"
        converted = image if image.mode == target else image.convert(target)
        values = _unit_float(np.asarray(converted), 255.0)
    except ImageError:
        raise
    except Exception as exc:
        raise _corrupt(path, fmt, exc) from None
    if values.ndim == 2:
        values = values[..., None]
    if has_alpha:
        return values[..., :-1], values[..., -1]
    return values, None


def _png16_pixels(path: Path, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    data = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageError(path, "truncated or corrupt PNG data")
    values = _unit_float(decoded, 65535.0 if decoded.dtype == np.uint16 else 255.0)
    if values.ndim == 2:
        return values[..., None], None
    channels = values.shape[2]
    alpha = values[..., 3] if channels == 4 else None
    color = values[..., 2::-1] if channels >= 3 else values[..., :1]  # OpenCV stores BGR(A)
    if gray:
        color = color[..., :1]
    return np.ascontiguousarray(color), alpha


def _read_pillow(path: Path, max_pixels: int, head: bytes) -> DecodedImage:
    with _open_pillow(path) as image:
        meta, orientation = _pillow_meta(path, image, max_pixels, head)
        if meta.source_format == "PNG" and meta.bit_depth == 16:
            color, alpha = _png16_pixels(path, gray=meta.mode == "gray")
        else:
            color, alpha = _pillow_pixels(path, image)
    return _finish(color, alpha, meta, orientation)
