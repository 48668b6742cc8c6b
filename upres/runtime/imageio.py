"""Image input/output for the upres runtime.

Decoding turns any supported file into float32 RGB in [0, 1] (plus optional alpha) and an
:class:`ImageMeta` describing what must survive the round trip: colour mode, bit depth, ICC
profile, DPI and EXIF. Encoding quantises back to the source bit depth and writes through
:func:`~upres.runtime.atomic.atomic_output`, so a crash never leaves a half-written file under
the final name. Encoders are configured to be deterministic (no timestamps).

Pillow decodes most formats; OpenCV decodes 16-bit PNGs (Pillow reduces 48/64-bit PNGs to 8
bits); tifffile decodes and writes TIFF, including 16-bit RGB, float and BigTIFF.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import queue
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageFile, UnidentifiedImageError

from upres.runtime.atomic import atomic_output

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "BigTiffStripWriter",
    "DecodedImage",
    "ImageError",
    "ImageMeta",
    "display_path",
    "input_sha256",
    "output_suffix",
    "probe_image",
    "quantize",
    "read_image",
    "read_region",
    "resolve_format",
    "to_output_samples",
    "write_image",
]

# Twice Pillow's default MAX_IMAGE_PIXELS, i.e. the size at which Pillow itself refuses.
DEFAULT_MAX_PIXELS = 178_956_970
OUTPUT_FORMATS = ("png", "tiff", "jpg")
JPEG_QUALITY = 95

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ORIENTATION_TAG = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 282, 283, 296
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 0xA002, 0xA003
# Descriptive IFD0 tags worth carrying from a TIFF source (layout tags must not be copied).
# Software (305) is left out: the output is not made by the source's software.
_TIFF_EXIF_KEEP = (270, 271, 272, 306, 315, 33432, _ORIENTATION_TAG, _EXIF_IFD, _GPS_IFD)
# IFD0 text tags that tifffile can write into a TIFF output (it cannot write EXIF sub-IFDs).
_TIFF_TEXT_TAGS = (270, 271, 272, 306, 315, 33432)
_BT601 = (0.299, 0.587, 0.114)
# Samples per pixel by PNG colour type, and the Adam7 passes (x0, y0, dx, dy).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 20  # bytes inflated at a time when checking PNG data: a zlib bomb stays small
_HASH_BLOCK = 1 << 20

Mode = Literal["rgb", "gray"]

# tifffile logs what it repairs in malformed files ("incorrect StripByteCounts count") at ERROR
# level on stderr, naming no file; what cannot be read raises, and becomes the one-line ImageError
# the user should see. An explicit logging configuration by the application still wins.
if logging.getLogger("tifffile").level == logging.NOTSET:
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def display_path(path: Path | str | bytes) -> str:
    """``path`` as one printable line: control characters escaped (a file name may hold a
    newline) and bytes that are not UTF-8 shown as ``\\xNN`` instead of lone surrogates, which
    would make printing or encoding the message fail."""
    text = os.fsdecode(path)
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of an undecodable byte
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif not char.isprintable():  # also lone surrogates of other origins
            shown.append(char.encode("unicode_escape").decode("ascii"))
        else:
            shown.append(char)
    return "".join(shown)


class ImageError(Exception):
    """A file could not be read or written; ``str()`` is one line: ``"{path}: {reason}"``."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        # One printable line even when a library's message quotes a hostile file name.
        self.reason = display_path(" ".join(str(reason).split()))
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{display_path(self.path)}: {self.reason}"

    def __reduce__(self) -> tuple[type[ImageError], tuple[Path, str]]:
        # Default exception pickling would call ImageError(message) and fail across processes.
        return (type(self), (self.path, self.reason))


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


# --------------------------------------------------------------------------------------------
# Small shared helpers


def _sci(value: float) -> str:
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    pixels = width * height
    if width <= 0 or height <= 0:
        raise ImageError(path, f"invalid image size {width}x{height}")
    if pixels > max_pixels:
        raise ImageError(
            path,
            f"image is {width}x{height} = {_sci(pixels)} pixels, above --max-pixels {max_pixels}",
        )


def _os_error(path: Path, exc: OSError) -> ImageError:
    if isinstance(exc, FileNotFoundError):
        return ImageError(path, "file not found")
    if isinstance(exc, PermissionError):
        return ImageError(path, "permission denied")
    return ImageError(path, exc.strerror or str(exc))


def _check_kind(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(path, "is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block the reader and a device such as /dev/zero never ends.
        raise ImageError(path, "not a regular file")
    if info.st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")


def _check_file(path: Path) -> bytes:
    """Validate that ``path`` is a readable non-empty regular file; return its first bytes."""
    try:
        _check_kind(path, path.stat())
        with path.open("rb") as handle:
            return handle.read(32)
    except OSError as exc:
        raise _os_error(path, exc) from None


def input_sha256(path: Path) -> str:
    """SHA-256 of an input file, read only once it is known to be a non-empty regular file.

    The type is checked before opening (opening a FIFO blocks) and again on the open descriptor,
    in case the name was replaced in between; O_NONBLOCK keeps even that open from blocking.
    """
    path = Path(path)
    try:
        _check_kind(path, path.stat())
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _os_error(path, exc) from None
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as handle:
            _check_kind(path, os.fstat(handle.fileno()))
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
    except OSError as exc:
        raise _os_error(path, exc) from None
    return digest.hexdigest()


def _is_tiff(head: bytes) -> bool:
    return head[:4] in _TIFF_MAGICS


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


def _unit_float(array: np.ndarray, maxval: float) -> np.ndarray:
    out = array.astype(np.float32)
    if maxval != 1.0:
        out /= np.float32(maxval)
    return out


def _checked_float(path: Path, array: np.ndarray) -> np.ndarray:
    if not np.isfinite(array).all():
        raise ImageError(path, "floating-point image contains NaN or infinite values")
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _to_rgb(color: np.ndarray) -> np.ndarray:
    if color.ndim == 2:
        color = color[..., None]
    if color.shape[2] == 1:
        return np.repeat(color, 3, axis=2)
    return color


# --------------------------------------------------------------------------------------------
# EXIF


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


# --------------------------------------------------------------------------------------------
# Pillow decoding


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


def _png_raw_size(width: int, height: int, depth: int, color_type: int, interlace: int) -> int:
    """Bytes the IDAT stream must inflate to: filter byte + packed samples per row (per pass)."""
    bits = depth * _PNG_CHANNELS[color_type]

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w > 0 and h > 0 else 0

    if not interlace:
        return rows(width, height)
    return sum(rows(-(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7)


def _bad_png(path: Path, detail: str) -> ImageError:
    return ImageError(path, f"truncated or corrupt PNG data ({detail})")


def _png_ihdr(path: Path, data: bytes, max_pixels: int) -> int:
    """Validate an IHDR body (size against ``max_pixels`` first); return the raw data size."""
    if len(data) != 13:
        raise _bad_png(path, "malformed IHDR chunk")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data)
    _check_pixels(path, width, height, max_pixels)
    if color_type not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16) or interlace > 1:
        raise _bad_png(path, f"invalid IHDR: colour type {color_type}, bit depth {depth}, "
                                  f"interlace {interlace}")
    return _png_raw_size(width, height, depth, color_type, interlace)


class _PngData:
    """Counts the bytes the IDAT stream inflates to, a step at a time (a zlib bomb stays small),
    stopping once the image is complete."""

    def __init__(self, path: Path, expected: int) -> None:
        self.path, self.expected, self.size = path, expected, 0
        self._inflater = zlib.decompressobj()

    def feed(self, data: bytes) -> None:
        try:
            while data and self.size <= self.expected and not self._inflater.eof:
                self.size += len(self._inflater.decompress(data, _INFLATE_STEP))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise _bad_png(self.path, f"zlib: {exc}") from None


def _png_chunk_body(path: Path, handle: Any, kind: bytes, length: int, data: _PngData | None) -> bytes:
    """Read a critical chunk in blocks, checking its CRC; IDAT goes to ``data``, IHDR is returned."""
    crc, body, left = zlib.crc32(kind), b"", length
    inflate_error: ImageError | None = None
    while left:
        block = handle.read(min(left, _HASH_BLOCK))
        left -= len(block)
        crc = zlib.crc32(block, crc)
        if kind == b"IHDR":
            body += block
        elif kind == b"IDAT" and data is not None and inflate_error is None:
            try:
                data.feed(block)
            except ImageError as exc:
                inflate_error = exc  # a CRC mismatch, if there is one, is the better reason
    if struct.unpack(">I", handle.read(4))[0] != crc:
        raise _bad_png(path, f"CRC mismatch in the {repr(kind)[2:-1]} chunk")
    if inflate_error is not None:
        raise inflate_error
    return body


def _check_png(path: Path, max_pixels: int) -> None:
    """Walk a PNG's chunks before decoding it: the declared size (refused above ``max_pixels``
    before anything is inflated), chunks cut off by the end of the file, CRCs of critical chunks
    (as libpng does) and whether the image data inflates to the full image. Pillow fills a short
    zlib stream with black rows and ignores IDAT CRCs, so without this a damaged scan would
    silently become a damaged output."""
    data: _PngData | None = None
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(len(_PNG_MAGIC))
        while (head := handle.read(8)) and len(head) == 8:
            length, kind = struct.unpack(">I4s", head)
            if handle.tell() + length + 4 > size:
                # Checked first, so that chunk reads below never come up short.
                raise _bad_png(path, f"the {repr(kind)[2:-1]} chunk ends past the end of the file")
            if data is None and kind != b"IHDR":
                raise _bad_png(path, "the first chunk is not IHDR")
            if kind[0] & 0x20:  # ancillary chunk: Pillow checks the ones it reads
                handle.seek(length + 4, os.SEEK_CUR)
                continue
            body = _png_chunk_body(path, handle, kind, length, data)
            if kind == b"IHDR":
                data = _PngData(path, _png_ihdr(path, body, max_pixels))
            elif kind == b"IEND":
                break
    if len(head) not in (0, 8):
        raise _bad_png(path, "the file ends inside a chunk header")
    if data is None:
        raise _bad_png(path, "no IHDR chunk")
    if data.size < data.expected:
        raise _bad_png(path, f"the image data inflates to {data.size} of {data.expected} bytes")


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


def _corrupt(path: Path, fmt: str, exc: BaseException) -> ImageError:
    detail = str(exc).strip()
    reason = f"truncated or corrupt {fmt} data"
    return ImageError(path, f"{reason} ({detail})" if detail else reason)


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


def _finish(
    color: np.ndarray, alpha: np.ndarray | None, meta: ImageMeta, orientation: int
) -> DecodedImage:
    rgb = np.ascontiguousarray(_orient(_to_rgb(color), orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    meta.has_alpha = alpha is not None
    return DecodedImage(rgb=rgb, alpha=alpha, meta=meta)


# --------------------------------------------------------------------------------------------
# TIFF decoding (tifffile)

_PHOTOMETRIC = tifffile.PHOTOMETRIC
_COLOR_SAMPLES = {
    _PHOTOMETRIC.MINISBLACK: 1,
    _PHOTOMETRIC.MINISWHITE: 1,
    _PHOTOMETRIC.PALETTE: 1,
    _PHOTOMETRIC.RGB: 3,
    _PHOTOMETRIC.SEPARATED: 4,
}


@dataclass
class _TiffLayout:
    photometric: Any
    color_samples: int
    alpha_index: int | None
    associated_alpha: bool
    maxval: float  # value of full intensity for integer samples; 1.0 for float


def _tiff_tag(page: Any, code: int, default: Any = None) -> Any:
    tag = page.tags.get(code)
    return default if tag is None else tag.value


def _tiff_dpi(page: Any) -> tuple[float, float] | None:
    unit = int(_tiff_tag(page, _RESOLUTION_UNIT, 2))
    if unit not in (2, 3):
        return None

    def rational(value: Any) -> float:
        if isinstance(value, tuple):
            return value[0] / value[1] if value[1] else 0.0
        return float(value)

    try:
        x = rational(_tiff_tag(page, _X_RESOLUTION))
        y = rational(_tiff_tag(page, _Y_RESOLUTION))
    except (TypeError, ValueError, IndexError):
        return None
    factor = 2.54 if unit == 3 else 1.0
    return _valid_dpi((x * factor, y * factor))


def _tiff_layout(path: Path, page: Any) -> _TiffLayout:
    photometric = page.photometric
    color_samples = _COLOR_SAMPLES.get(photometric)
    if color_samples is None:
        name = getattr(photometric, "name", photometric)
        raise ImageError(path, f"unsupported TIFF photometric interpretation {name}")
    if photometric == _PHOTOMETRIC.SEPARATED and int(_tiff_tag(page, 332, 1)) != 1:
        raise ImageError(path, "unsupported TIFF ink set (only CMYK is supported)")
    if page.samplesperpixel < color_samples:
        raise ImageError(path, f"TIFF has {page.samplesperpixel} samples, expected {color_samples}")
    if page.shaped[1] != 1:
        raise ImageError(path, "volumetric (multi-plane) TIFF images are not supported")
    dtype = page.dtype
    if dtype is None or dtype.kind not in "buf":
        raise ImageError(path, f"unsupported TIFF sample format ({dtype or 'unknown'})")
    extrasamples = tuple(int(v) for v in page.extrasamples)
    alpha_index = None
    associated = False
    if page.samplesperpixel > color_samples and extrasamples and extrasamples[0] in (1, 2):
        alpha_index = color_samples
        associated = extrasamples[0] == 1
    bits = min(int(page.bitspersample), dtype.itemsize * 8)
    maxval = 1.0 if dtype.kind in "fb" else float(2**bits - 1)
    return _TiffLayout(photometric, color_samples, alpha_index, associated, maxval)


def _tiff_bit_depth(page: Any, layout: _TiffLayout) -> int:
    if layout.photometric == _PHOTOMETRIC.PALETTE:
        colormap = page.colormap
        eight_bit = colormap is not None and not np.any(np.asarray(colormap) % 257)
        return 8 if eight_bit else 16
    return 8 if page.dtype.kind in "bu" and page.bitspersample <= 8 else 16


def _tiff_exif(path: Path, drop_description: bool) -> bytes | None:
    # Pillow keeps EXIF value types intact (tifffile turns the EXIF IFD into a name dict).
    try:
        with _PillowSettings.active(), Image.open(path) as image:
            exif = image.getexif()
    except Exception:
        return None
    return _serialise_exif(_tiff_descriptive_exif(exif, drop_description))


def _tiff_meta(
    path: Path, tif: Any, page: Any, max_pixels: int
) -> tuple[ImageMeta, int, _TiffLayout]:
    width, height = int(page.imagewidth), int(page.imagelength)
    _check_pixels(path, width, height, max_pixels)
    layout = _tiff_layout(path, page)
    orientation = int(_tiff_tag(page, _ORIENTATION_TAG, 1))
    orientation = orientation if 1 <= orientation <= 8 else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    gray = layout.photometric in (_PHOTOMETRIC.MINISBLACK, _PHOTOMETRIC.MINISWHITE)
    mode: Mode = "gray" if gray else "rgb"
    meta = ImageMeta(
        mode=mode,
        bit_depth=_tiff_bit_depth(page, layout),
        has_alpha=layout.alpha_index is not None,
        icc_profile=_icc_for_mode(page.iccprofile, mode),
        dpi=_tiff_dpi(page),
        exif=_tiff_exif(path, drop_description=bool(tif.is_shaped)),
        source_format="TIFF",
        width=width,
        height=height,
    )
    return meta, orientation, layout


def _check_segments(path: Path, page: Any) -> None:
    size = path.stat().st_size
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if count and offset + count > size:
            raise ImageError(path, "truncated TIFF: image data extends past the end of the file")


def _samples_last(page: Any, array: np.ndarray) -> np.ndarray:
    """Reshape tifffile's page array to (H, W, samples)."""
    separate, _, height, width, contig = page.shaped
    array = array.reshape(page.shaped)[:, 0]
    if separate > 1:
        return np.moveaxis(array[..., 0], 0, -1)
    return array[0].reshape(height, width, contig)


def _tiff_color(
    path: Path, page: Any, layout: _TiffLayout, samples: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    if samples.dtype.kind == "f":
        if not np.isfinite(samples).all():
            raise ImageError(path, "floating-point TIFF contains NaN or infinite values")
        values = np.clip(samples.astype(np.float32), 0.0, 1.0)
    else:
        values = _unit_float(samples, layout.maxval)
    alpha = None
    if layout.alpha_index is not None:
        alpha = np.ascontiguousarray(values[..., layout.alpha_index])
    photometric = layout.photometric
    if photometric == _PHOTOMETRIC.PALETTE:
        # Index the colormap with the raw integer samples, not the normalised ones.
        colormap = np.asarray(page.colormap)
        color = _unit_float(np.moveaxis(colormap[:, samples[..., 0]], 0, -1), 65535.0)
    elif photometric == _PHOTOMETRIC.SEPARATED:
        cmy, black = values[..., :3], values[..., 3:4]
        color = (1.0 - cmy) * (1.0 - black)
    elif photometric == _PHOTOMETRIC.MINISWHITE:
        color = 1.0 - values[..., :1]
    else:
        color = values[..., : layout.color_samples]
    if alpha is not None and layout.associated_alpha:
        # Premultiplied alpha: recover straight colour, which is what PNG/TIFF outputs store.
        with np.errstate(divide="ignore", invalid="ignore"):
            color = np.where(alpha[..., None] > 0, color / alpha[..., None], 0.0)
        color = np.clip(color, 0.0, 1.0)
    return np.ascontiguousarray(color, dtype=np.float32), alpha


def _pillow_can_replace(page: Any) -> bool:
    """Pillow silently reduces 16-bit RGB TIFFs to 8 bits; only fall back to it when exact."""
    return page.bitspersample <= 8 or page.samplesperpixel == 1


def _read_tiff(path: Path, max_pixels: int) -> DecodedImage:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            meta, orientation, layout = _tiff_meta(path, tif, page, max_pixels)
            _check_segments(path, page)
            try:
                raw = page.asarray()
            except (KeyError, ValueError, NotImplementedError) as exc:
                if not _pillow_can_replace(page):
                    raise ImageError(path, _tiff_codec_reason(page, exc)) from None
                return _read_pillow(path, max_pixels, b"")
            color, alpha = _tiff_color(path, page, layout, _samples_last(page, raw))
    except ImageError:
        raise
    except tifffile.TiffFileError as exc:
        raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None
    except Exception as exc:
        raise _corrupt(path, "TIFF", exc) from None
    return _finish(color, alpha, meta, orientation)


def _tiff_codec_reason(page: Any, exc: BaseException) -> str:
    compression = getattr(page.compression, "name", page.compression)
    if "imagecodecs" in str(exc):
        return f"TIFF compression {compression} needs the optional 'imagecodecs' package"
    return f"cannot decode TIFF ({exc})"


def _probe_tiff(path: Path, max_pixels: int) -> ImageMeta:
    try:
        with tifffile.TiffFile(path) as tif:
            return _tiff_meta(path, tif, tif.pages.first, max_pixels)[0]
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None


# --------------------------------------------------------------------------------------------
# Public reading API


def probe_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageMeta:
    """Read only the header: size (refused above ``max_pixels``), mode, depth and metadata."""
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        return _probe_tiff(path, max_pixels)
    with _open_pillow(path) as image:
        return _pillow_meta(path, image, max_pixels, head)[0]


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``path`` to float32 RGB in [0, 1] (gray replicated), optional alpha, and metadata.

    The pixel count is checked against ``max_pixels`` from the header before any decoding.
    EXIF orientation is applied to the pixels. Animated and multi-page files yield their first
    frame. Every failure is reported as :class:`ImageError`.
    """
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        return _read_tiff(path, max_pixels)
    if head.startswith(_PNG_MAGIC):
        try:
            _check_png(path, max_pixels)
        except OSError as exc:
            raise _os_error(path, exc) from None
    return _read_pillow(path, max_pixels, head)


def _region_from_segments(
    tif: Any, page: Any, y0: int, y1: int, x0: int, x1: int
) -> np.ndarray:
    """Decode only the strips/tiles that intersect the region."""
    chunk_h, chunk_w = int(page.chunks[0]), int(page.chunks[1])
    across = -(-int(page.imagewidth) // chunk_w)
    samples = int(page.shaped[4])
    out = np.zeros((y1 - y0, x1 - x0, samples), dtype=page.dtype)
    handle = tif.filehandle
    for row in range(y0 // chunk_h, (y1 - 1) // chunk_h + 1):
        for col in range(x0 // chunk_w, (x1 - 1) // chunk_w + 1):
            index = row * across + col
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            if not count:
                continue  # sparse segment: zeros
            handle.seek(offset)
            segment, indices, _ = page.decode(handle.read(count), index, jpegtables=page.jpegtables)
            segment = segment[0]  # (length, width, samples)
            top, left = int(indices[2]), int(indices[3])
            ys = slice(max(y0, top), min(y1, top + segment.shape[0]))
            xs = slice(max(x0, left), min(x1, left + segment.shape[1]))
            out[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = segment[
                ys.start - top : ys.stop - top, xs.start - left : xs.stop - left
            ]
    return out


def _plain_tiff(page: Any, layout: _TiffLayout) -> bool:
    """Gray or RGB, chunky, unrotated integer/float samples: regions of it decode on their own
    to exactly what the whole-image decoder gives for those pixels."""
    return (
        layout.photometric in (_PHOTOMETRIC.MINISBLACK, _PHOTOMETRIC.RGB)
        and int(_tiff_tag(page, _ORIENTATION_TAG, 1)) == 1
        and page.shaped[0] == 1
        and page.dtype.kind in "uf"
        and not layout.associated_alpha
    )


def _tiff_region(path: Path, y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
    """Region of a plain (gray/RGB, chunky, unrotated) TIFF without decoding the rest, or None
    when the layout needs the general decoder."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        layout = _tiff_layout(path, page)
        if not _plain_tiff(page, layout):
            return None
        _check_bounds(path, y0, y1, x0, x1, int(page.imagelength), int(page.imagewidth))
        _check_segments(path, page)
        if page.is_contiguous and page.compression == tifffile.COMPRESSION.NONE:
            mapped = tifffile.memmap(path, page=0, mode="r")
            region = np.asarray(mapped[y0:y1, x0:x1]).reshape(y1 - y0, x1 - x0, -1)
            del mapped
        else:
            region = _region_from_segments(tif, page, y0, y1, x0, x1)
        color, _ = _tiff_color(path, page, layout, region)
    return np.ascontiguousarray(_to_rgb(color))


class _RegionBoundsError(ValueError):
    pass


def _check_bounds(path: Path, y0: int, y1: int, x0: int, x1: int, height: int, width: int) -> None:
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise _RegionBoundsError(
            f"{path}: region [{y0}:{y1}, {x0}:{x1}] is outside the {height}x{width} image"
        )


def read_region(
    path: Path, y0: int, y1: int, x0: int, x1: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Float32 RGB in [0, 1] of rows ``y0:y1`` and columns ``x0:x1`` (oriented coordinates).

    Uncompressed contiguous TIFFs are memory-mapped and tiled/stripped TIFFs decode only the
    intersecting segments; other files fall back to a full decode (cache the result if many
    regions of the same non-TIFF file are needed).
    """
    path = Path(path)
    head = _check_file(path)
    if _is_tiff(head):
        try:
            region = _tiff_region(path, y0, y1, x0, x1)
        except (ImageError, _RegionBoundsError):
            raise
        except Exception as exc:
            raise _corrupt(path, "TIFF", exc) from None
        if region is not None:
            return region
    image = read_image(path, max_pixels)
    _check_bounds(path, y0, y1, x0, x1, image.meta.height, image.meta.width)
    return np.ascontiguousarray(image.rgb[y0:y1, x0:x1])


# --------------------------------------------------------------------------------------------
# Output formats


def resolve_format(fmt: str, source: ImageMeta | str) -> str:
    """Map ``--format`` (same|png|tiff|jpg) and the source format to png, tiff or jpg."""
    fmt = fmt.lower().lstrip(".")
    aliases = {"tif": "tiff", "jpeg": "jpg"}
    fmt = aliases.get(fmt, fmt)
    if fmt in OUTPUT_FORMATS:
        return fmt
    if fmt != "same":
        raise ValueError(f"unknown output format {fmt!r}; expected same, png, tiff or jpg")
    source_format = source.source_format if isinstance(source, ImageMeta) else source
    return {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "TIFF": "tiff"}.get(
        source_format.upper(), "png"
    )


def output_suffix(fmt: str, source: ImageMeta | str = "PNG") -> str:
    """File extension for an output: ``output_suffix("same", "JPEG") == ".jpg"``."""
    return {"png": ".png", "tiff": ".tif", "jpg": ".jpg"}[resolve_format(fmt, source)]


def quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] -> uint8/uint16, clipped, rounding half to even (``np.rint``)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    scaled = np.clip(values, 0.0, 1.0, dtype=np.float32)
    scaled *= np.float32(255.0 if bit_depth == 8 else 65535.0)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8 if bit_depth == 8 else np.uint16)


def to_output_samples(
    rgb: np.ndarray, alpha: np.ndarray | None, mode: Mode, bit_depth: int
) -> np.ndarray:
    """Quantised (H, W, C) samples: C = 1|3 colour (+1 alpha). Gray uses BT.601 luma."""
    if mode == "gray":
        red, green, blue = (rgb[..., i].astype(np.float32) for i in range(3))
        color = (red * _BT601[0] + green * _BT601[1] + blue * _BT601[2])[..., None]
    else:
        color = rgb
    planes = [quantize(color, bit_depth)]
    if alpha is not None:
        planes.append(quantize(alpha, bit_depth)[..., None])
    return np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]


def _scaled_dpi(meta: ImageMeta | None, scale: int) -> tuple[float, float] | None:
    if meta is None or meta.dpi is None:
        return None
    return (meta.dpi[0] * scale, meta.dpi[1] * scale)


# --------------------------------------------------------------------------------------------
# PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_encode_raw(samples: np.ndarray) -> bytes:
    """Minimal PNG encoder (Sub filter) for gray+alpha, which OpenCV cannot write."""
    height, width, channels = samples.shape
    depth = samples.dtype.itemsize * 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(samples.dtype.newbyteorder(">")).view(np.uint8).reshape(height, -1)
    step = channels * samples.dtype.itemsize
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 1  # filter type Sub: byte minus the same byte of the previous pixel
    filtered[:, 1 : 1 + step] = rows[:, :step]
    np.subtract(rows[:, step:], rows[:, :-step], out=filtered[:, 1 + step :])
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"".join(
        [
            _PNG_MAGIC,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_encode(samples: np.ndarray) -> bytes:
    channels = samples.shape[2]
    if channels == 2:
        return _png_encode_raw(samples)
    order = {1: [0], 3: [2, 1, 0], 4: [2, 1, 0, 3]}[channels]
    bgr = np.ascontiguousarray(samples[..., order])
    params = [
        cv2.IMWRITE_PNG_COMPRESSION, 6,
        cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_DEFAULT,
    ]  # fmt: skip
    ok, encoded = cv2.imencode(".png", bgr if channels > 1 else bgr[..., 0], params)
    if not ok:
        raise ValueError("OpenCV failed to encode PNG")
    return encoded.tobytes()


def _png_with_metadata(
    encoded: bytes, icc: bytes | None, dpi: tuple[float, float] | None, exif: bytes | None
) -> bytes:
    """Insert iCCP/pHYs/eXIf right after IHDR (all must precede IDAT) and drop any colour,
    time or text chunks the encoder added."""
    dropped = {b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"eXIf", b"tIME", b"tEXt", b"zTXt",
               b"iTXt"}  # fmt: skip
    extra: list[bytes] = []
    if icc:
        extra.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc, 9)))
    if dpi:
        ppm = [max(1, round(value / 0.0254)) for value in dpi]
        extra.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        extra.append(_png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    out = [encoded[: len(_PNG_MAGIC)]]
    pos = len(_PNG_MAGIC)
    while pos < len(encoded):
        (length,) = struct.unpack(">I", encoded[pos : pos + 4])
        kind = encoded[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind not in dropped:
            out.append(encoded[pos:end])
        if kind == b"IHDR":
            out.extend(extra)
        pos = end
    return b"".join(out)


def _write_png(
    tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None
) -> None:
    tmp.write_bytes(_png_with_metadata(_png_encode(samples), icc, dpi, exif))


# --------------------------------------------------------------------------------------------
# JPEG and TIFF


def _write_jpeg(
    tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None
) -> None:
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options: dict[str, Any] = {"quality": JPEG_QUALITY, "subsampling": 0, "optimize": False}
    if icc:
        options["icc_profile"] = icc
    if dpi:
        options["dpi"] = (round(dpi[0]), round(dpi[1]))
    if exif:
        options["exif"] = exif
    image.save(tmp, format="JPEG", **options)


def _tiff_text_tags(exif: bytes | None) -> list[tuple[int, int, int, Any, bool]]:
    tags: list[tuple[int, int, int, Any, bool]] = []
    loaded = _load_exif(exif)
    for code in _TIFF_TEXT_TAGS:
        value = loaded.get(code)
        if not isinstance(value, str) or not value.strip("\x00 "):
            continue
        # TIFF ASCII is nominally 7-bit; real files carry UTF-8, which tifffile accepts as bytes.
        payload: Any = value if value.isascii() else value.encode("utf-8")
        tags.append((code, 2, 0, payload, True))
    return tags


def _tiff_options(
    channels: int, icc: bytes | None, dpi: tuple[float, float] | None, exif: bytes | None
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "photometric": "rgb" if channels >= 3 else "minisblack",
        "compression": "zlib",
        "predictor": True,
        "metadata": None,  # no JSON shape description
        "software": "upres",
        "datetime": None,  # deterministic output: no write timestamp
        "extratags": _tiff_text_tags(exif),
    }
    if channels in (2, 4):
        options["extrasamples"] = ("unassalpha",)
    if icc:
        options["iccprofile"] = icc
    if dpi:
        options["resolution"] = dpi
        options["resolutionunit"] = "INCH"
    return options


def _write_tiff(
    tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None
) -> None:
    channels = samples.shape[2]
    data = samples[..., 0] if channels == 1 else samples
    tifffile.imwrite(tmp, data, **_tiff_options(channels, icc, dpi, exif))


_WRITERS = {"png": _write_png, "jpg": _write_jpeg, "tiff": _write_tiff}


def _validate_output_arrays(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{path}: rgb must have shape (H, W, 3), got {rgb.shape}")
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise ValueError(f"{path}: alpha shape {alpha.shape} does not match {rgb.shape[:2]}")
    if not np.isfinite(rgb).all() or (alpha is not None and not np.isfinite(alpha).all()):
        raise ImageError(path, "output pixels contain NaN or infinite values")


def write_image(
    path: Path,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    meta: ImageMeta,
    scale: int,
    fmt: str,
) -> None:
    """Encode float [0, 1] ``rgb`` (+ ``alpha``) as png, tiff or jpg at ``path``, atomically.

    Keeps the source's mode (gray written as one BT.601 luma channel) and bit depth (jpg is
    always 8-bit and drops alpha), its ICC profile and EXIF, and multiplies DPI by ``scale`` so
    the physical print size is unchanged. Same inputs give byte-identical files.
    """
    path = Path(path)
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    fmt = resolve_format(fmt, meta)
    _validate_output_arrays(path, rgb, alpha)
    bit_depth = 8 if fmt == "jpg" else meta.bit_depth
    samples = to_output_samples(rgb, None if fmt == "jpg" else alpha, meta.mode, bit_depth)
    dpi = _scaled_dpi(meta, scale)
    icc = _icc_for_mode(meta.icc_profile, meta.mode)
    exif = _exif_for_output(meta.exif, samples.shape[1], samples.shape[0], dpi)
    try:
        with atomic_output(path) as tmp:
            _WRITERS[fmt](tmp, samples, icc, dpi, exif)
    except OSError as exc:
        raise ImageError(path, f"cannot write {fmt.upper()}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------
# Streaming BigTIFF output


class _Abort(Exception):
    """Raised inside the tile generator to stop tifffile when the producer failed."""


_ABORT = object()


class BigTiffStripWriter:
    """Write an image too large for RAM as a tiled BigTIFF, fed top-to-bottom in strips.

    ``write_strip`` takes full-width strips of any height, already quantised to ``dtype``.
    A background thread runs ``tifffile.imwrite`` on a generator of tiles fed through a queue
    of one tile row, so memory stays O(width * tile) plus the strip being written. The file
    appears under ``path`` only after a clean exit; on any error the temporary file is removed.
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        channels: int,
        dtype: np.dtype[Any] | type,
        tile: int = 256,
        meta: ImageMeta | None = None,
        scale: int = 1,
    ) -> None:
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"channels must be 1-4, got {channels}")
        if tile <= 0 or tile % 16:
            raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
        if height <= 0 or width <= 0:
            raise ValueError(f"invalid image size {width}x{height}")
        self.path = Path(path)
        self.height, self.width, self.channels = height, width, channels
        self.dtype = np.dtype(dtype)
        self.tile = tile
        mode: Mode = "rgb" if channels >= 3 else "gray"
        dpi = _scaled_dpi(meta, scale)
        icc = _icc_for_mode(meta.icc_profile, mode) if meta else None
        exif = _exif_for_output(meta.exif, width, height, dpi) if meta else None
        self._options = _tiff_options(channels, icc, dpi, exif)
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._rows_written = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._atomic: Any = None

    @property
    def rows_written(self) -> int:
        return self._rows_written

    def __enter__(self) -> BigTiffStripWriter:
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        self._thread = threading.Thread(target=self._run, args=(tmp,), daemon=True)
        self._thread.start()
        return self

    def _shape(self) -> tuple[int, ...]:
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    def _run(self, tmp: Path) -> None:
        try:
            tifffile.imwrite(
                tmp,
                data=self._tiles(),
                shape=self._shape(),
                dtype=self.dtype,
                tile=(self.tile, self.tile),
                bigtiff=True,
                maxworkers=1,  # tifffile's worker pool would buffer many tiles ahead
                **self._options,
            )
        except BaseException as exc:
            self._error = exc

    def _tiles(self) -> Iterator[np.ndarray]:
        bands = -(-self.height // self.tile)
        for _ in range(bands):
            band = self._queue.get()
            if band is _ABORT:
                raise _Abort
            for left in range(0, self.width, self.tile):
                yield band[:, left : left + self.tile]

    def _put(self, item: Any) -> None:
        assert self._thread is not None
        while True:
            if self._error is not None or not self._thread.is_alive():
                raise ImageError(self.path, f"TIFF writer stopped: {self._error}")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write_strip(self, strip: np.ndarray) -> None:
        """Append the next ``strip`` (rows, width[, channels]) below what was written so far."""
        if self._thread is None:
            raise RuntimeError("BigTiffStripWriter must be used as a context manager")
        strip = np.asarray(strip)
        if strip.ndim == 2:
            strip = strip[..., None]
        if strip.ndim != 3 or strip.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"strip shape {strip.shape} does not match width {self.width} and "
                f"{self.channels} channel(s)"
            )
        if strip.dtype != self.dtype:
            raise ValueError(f"strip dtype {strip.dtype} does not match {self.dtype}")
        if self._rows_written + self._pending_rows + strip.shape[0] > self.height:
            raise ValueError(f"strips exceed the image height {self.height}")
        self._pending.append(strip)
        self._pending_rows += strip.shape[0]
        while self._pending_rows >= self.tile:
            self._emit(self.tile)

    def _emit(self, rows: int) -> None:
        buffer = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        band = np.ascontiguousarray(buffer[:rows])
        rest = buffer[rows:]
        self._pending = [rest.copy()] if len(rest) else []
        self._pending_rows = len(rest)
        if self.channels == 1:
            band = band[..., 0]
        self._put(band)
        self._rows_written += rows

    def _finish(self) -> None:
        if self._pending_rows:
            self._emit(self._pending_rows)
        if self._rows_written != self.height:
            raise ValueError(f"only {self._rows_written} of {self.height} rows were written")

    def _abort(self) -> None:
        assert self._thread is not None
        while self._thread.is_alive():
            try:
                self._queue.put(_ABORT, timeout=0.1)
                return
            except queue.Full:
                continue

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._thread is not None
        failure: BaseException | None = exc
        if failure is None:
            try:
                self._finish()
            except BaseException as error:
                failure = error
        if failure is not None:
            self._abort()
        self._thread.join()
        if failure is None and self._error is not None:
            failure = ImageError(self.path, f"cannot write TIFF: {self._error}")
        if failure is None:
            self._atomic.__exit__(None, None, None)
            return False
        self._atomic.__exit__(type(failure), failure, failure.__traceback__)
        if exc is None:
            raise failure
        return False
