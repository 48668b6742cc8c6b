"""Decoding through Pillow (OpenCV for 16-bit PNGs): every format except TIFF."""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from upres.core.errors import ImageError
from upres.imageio import libtiff_messages
from upres.imageio.checks import _PNG_MAGIC, _check_pixels, _corrupt
from upres.imageio.metadata import (
    DecodedImage,
    ImageMeta,
    Mode,
    PngAncillary,
    _exif_dpi,
    _icc_for_mode,
    _load_exif,
    _orientation_of,
    _oriented_dpi,
    _photoshop_iptc,
    _png_ancillary,
    _serialise_exif,
    _tiff_descriptive_exif,
    _valid_dpi,
    refused_icc,
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
def _open_pillow(path: Path, source: BinaryIO | None = None) -> Iterator[Image.Image]:
    """``source`` (the file's bytes, read once) or else ``path``, opened by Pillow."""
    with _PillowSettings.active():
        try:
            image = Image.open(source if source is not None else path)
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
    # A PNG's (or GIF's) tRNS colour: those pixels are transparent, an alpha channel of 0 and 1.
    keyed = "transparency" in image.info
    if mode in ("1", "L"):
        return "gray", 8, keyed
    if mode in ("LA", "La"):
        return "gray", 8, True
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return "gray", 16, False
    if mode in ("P", "PA"):
        return "rgb", 8, mode == "PA" or keyed
    if mode in ("RGBA", "RGBa"):
        return "rgb", 8, True
    if mode == "RGB":
        return "rgb", 8, keyed
    if mode in ("RGBX", "CMYK", "YCbCr", "HSV"):
        return "rgb", 8, False
    raise ImageError(path, f"unsupported pixel mode {mode!r}")


def _png_header(head: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG IHDR, or None if ``head`` is not a PNG."""
    if not head.startswith(_PNG_MAGIC) or head[12:16] != b"IHDR" or len(head) < 26:
        return None
    return head[24], head[25]


def _pillow_dpi(image: Image.Image, exif: Image.Exif) -> tuple[float, float] | None:
    if _source_format(image) == "TIFF":
        # Pillow reports a TIFF without resolution tags as 1 DPI (2.54 with a centimetre unit).
        tags = getattr(image, "tag_v2", {})
        if 282 not in tags or 283 not in tags or tags.get(296, 2) not in (2, 3):
            return None
        factor = 2.54 if tags.get(296, 2) == 3 else 1.0
        try:
            return _valid_dpi((float(tags[282]) * factor, float(tags[283]) * factor))
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    return _valid_dpi(image.info.get("dpi")) or _exif_dpi(exif)


def _pillow_descriptive(image: Image.Image, png: PngAncillary | None) -> dict[str, object]:
    """XMP, IPTC and comments as Pillow read them (PNG's come from the chunk walk)."""
    if png is not None:
        return {"xmp": png.xmp, "png_chunks": png.chunks}
    xmp = image.info.get("xmp")
    applist = getattr(image, "applist", [])
    photoshop = b"".join(body for marker, body in applist if marker == "APP13")
    comments = tuple(body for marker, body in applist if marker == "COM")
    if not applist and isinstance(image.info.get("comment"), bytes):  # GIF's comment extension
        comments = (image.info["comment"],)
    return {"xmp": bytes(xmp) if isinstance(xmp, bytes | bytearray) and xmp else None,
            "iptc": _photoshop_iptc(photoshop), "comments": comments}


def _pillow_meta(
    path: Path, image: Image.Image, max_pixels: int, head: bytes, png: PngAncillary | None = None
) -> tuple[ImageMeta, int]:
    """``png``: what the chunk walk of a PNG being decoded found (else the file is probed)."""
    width, height = image.size
    _check_pixels(path, width, height, max_pixels)
    source_format = _source_format(image)
    mode, bit_depth, has_alpha = _pillow_layout(path, image)
    header = _png_header(head) if source_format == "PNG" else None
    if header is not None and header[0] == 16:
        bit_depth = 16
        mode = "gray" if header[1] in (0, 4) else "rgb"
        has_alpha = header[1] in (4, 6)
    if source_format == "PNG":
        png = png if png is not None else _png_ancillary(path)
        exif = _load_exif(image.info.get("exif") or png.exif)
    else:
        png = None
        try:
            exif = image.getexif()
        except Exception:
            exif = Image.Exif()
    deep = _deep_layout(image)
    if deep is not None:
        mode, bit_depth, has_alpha = deep
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
        dpi=_oriented_dpi(_pillow_dpi(image, exif), orientation),
        exif=_serialise_exif(exif),
        source_format=source_format,
        width=width,
        height=height,
        dropped=refused_icc(image.info.get("icc_profile"), mode),
        **_pillow_descriptive(image, png),  # type: ignore[arg-type]
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


def _png16_pixels(path: Path, data: bytes, gray: bool) -> tuple[np.ndarray, np.ndarray | None]:
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
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


# --------------------------------------------------------------------------------------------
# Formats Pillow reduces to 8 bits: 16-bit RGB PPM and JPEG 2000 deeper than 8 bits


def _ppm_raster(image: Image.Image) -> tuple[int, int] | None:
    """(offset, maxval) of a PPM whose samples are wider than a byte, else None."""
    tiles = getattr(image, "tile", None)  # ImageFile's, not in Image's type
    if _source_format(image) != "PPM" or image.mode != "RGB" or not tiles:
        return None
    tile = tiles[0]
    maxval = tile.args[-1] if isinstance(tile.args, tuple) else 255
    return (tile.offset, int(maxval)) if isinstance(maxval, int) and maxval > 255 else None


# The codestream's SIZ marker follows the JP2 header boxes (an ICC profile, XML): well inside this.
_JP2_HEADER_BYTES = 1 << 22


def _jpeg2000_precision(data: bytes) -> tuple[int, int, bool] | None:
    """(components, bits, signed) from a JPEG 2000 codestream's SIZ marker, or None."""
    at = data.find(b"\xff\x4f\xff\x51")
    if at < 0 or at + 48 > len(data):
        return None
    siz = data[at + 4 :]
    components = struct.unpack(">H", siz[36:38])[0]
    if components == 0 or len(siz) < 38 + 3 * components:
        return None
    depths = [siz[38 + 3 * i] for i in range(components)]
    return components, max((d & 0x7F) + 1 for d in depths), any(d & 0x80 for d in depths)


def _deep_layout(image: Image.Image) -> tuple[Mode, int, bool] | None:
    """(mode, 16, has_alpha) where Pillow would decode samples deeper than 8 bits to 8 bits."""
    if _ppm_raster(image) is not None:
        return "rgb", 16, False
    if _source_format(image) == "JPEG2000":
        source = getattr(image, "fp", None)
        if source is None:
            return None
        position = source.tell()
        source.seek(0)
        precision = _jpeg2000_precision(source.read(_JP2_HEADER_BYTES))
        source.seek(position)
        if precision is not None and precision[1] > 8:
            components = precision[0]
            return ("gray" if components <= 2 else "rgb"), 16, components in (2, 4)
    return None


def _ppm16_pixels(path: Path, data: bytes, image: Image.Image) -> np.ndarray:
    raster = _ppm_raster(image)
    assert raster is not None
    offset, maxval = raster
    width, height = image.size
    count = width * height * 3
    if image.tile[0].codec_name == "ppm_plain":  # type: ignore[attr-defined]  # an ImageFile
        tokens = data[offset:].split()[:count]
        if len(tokens) < count:
            raise ImageError(path, "truncated PPM data")
        values = np.array(tokens).astype(np.int64)
    else:
        if len(data) < offset + 2 * count:
            raise ImageError(path, "truncated PPM data")
        values = np.frombuffer(data, ">u2", count, offset)
    if values.max(initial=0) > maxval:
        raise ImageError(path, f"corrupt PPM data: a sample is above the maxval {maxval}")
    return _unit_float(values.reshape(height, width, 3), float(maxval))


def _jpeg2000_pixels(path: Path, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    import imagecodecs

    precision = _jpeg2000_precision(data)
    assert precision is not None
    if precision[2]:
        raise ImageError(path, "signed JPEG 2000 samples are not supported")
    try:
        decoded = imagecodecs.jpeg2k_decode(data)
    except Exception as exc:
        raise _corrupt(path, "JPEG 2000", exc) from None
    values = _unit_float(decoded, float(2 ** precision[1] - 1))
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[2] in (2, 4):
        return np.ascontiguousarray(values[..., :-1]), np.ascontiguousarray(values[..., -1])
    return values, None


# --------------------------------------------------------------------------------------------
# Decoding


def _load_tiff(path: Path, image: Image.Image) -> None:
    """Load a TIFF through Pillow's libtiff, its messages kept for the reason, not printed."""
    with libtiff_messages.captured() as messages:
        try:
            image.load()
        except Exception as exc:
            if messages.errors:
                raise ImageError(path, f"cannot decode TIFF ({'; '.join(messages.errors)})") from None
            raise _corrupt(path, "TIFF", exc) from None
    if messages.errors:
        raise ImageError(path, f"corrupt TIFF data ({'; '.join(messages.errors)})")


def _pillow_image_pixels(path: Path, data: bytes, image: Image.Image,
                         meta: ImageMeta) -> tuple[np.ndarray, np.ndarray | None]:
    if meta.source_format == "PNG" and meta.bit_depth == 16:
        return _png16_pixels(path, data, gray=meta.mode == "gray")
    if _ppm_raster(image) is not None:
        return _ppm16_pixels(path, data, image), None
    if meta.source_format == "JPEG2000" and meta.bit_depth == 16:
        return _jpeg2000_pixels(path, data)
    if meta.source_format == "JPEG":
        from upres.imageio.jpeg_check import check_jpeg_data

        check_jpeg_data(path, data)
    if meta.source_format == "TIFF":
        _load_tiff(path, image)
    return _pillow_pixels(path, image)


def _read_pillow(path: Path, max_pixels: int, data: bytes,
                 png: PngAncillary | None = None) -> DecodedImage:
    """Decode the file's ``data`` (``png``: what `_check_png` found in it)."""
    with _open_pillow(path, io.BytesIO(data)) as image:
        meta, orientation = _pillow_meta(path, image, max_pixels, data[:32], png)
        color, alpha = _pillow_image_pixels(path, data, image, meta)
    return _finish(color, alpha, meta, orientation)


def _pillow_tiff_pixels(path: Path, data: bytes, frame: int,
                        max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels of TIFF page ``frame`` through Pillow (for codecs tifffile does not have)."""
    with _open_pillow(path, io.BytesIO(data)) as image:
        try:
            image.seek(frame)
        except EOFError:
            raise ImageError(path, f"cannot decode TIFF page {frame}") from None
        _check_pixels(path, image.size[0], image.size[1], max_pixels)
        _load_tiff(path, image)
        return _pillow_pixels(path, image)
