"""Decoding TIFF through tifffile: layout, metadata, samples to colour, and strip/tile segments."""

from __future__ import annotations

import enum
import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from PIL import Image

from upres.core.errors import ImageError
from upres.core.lazy import LazyModule
from upres.imageio.checks import _check_pixels, _corrupt
from upres.imageio.metadata import (
    _ORIENTATION_TAG,
    _RESOLUTION_UNIT,
    _X_RESOLUTION,
    _Y_RESOLUTION,
    DecodedImage,
    ImageMeta,
    Mode,
    _icc_for_mode,
    _oriented_dpi,
    _serialise_exif,
    _tiff_descriptive_exif,
    _valid_dpi,
    refused_icc,
)
from upres.imageio.pillow_decode import _pillow_tiff_pixels, _PillowSettings
from upres.imageio.samples import _check_float_range, _finish, _unit_float

if TYPE_CHECKING:
    import tifffile
else:  # not imported by a run that reads and writes no TIFF
    tifffile = LazyModule("tifffile")

# tifffile repairs some damage and logs it ("incorrect StripByteCounts count") instead of
# raising, naming no file. Those records are captured per thread while upres reads a file: the
# ones that repaired the image data fail it, the rest (unreadable vendor tags and the like) are
# dropped rather than printed on stderr beside upres's one line. An application that configured
# the "tifffile" logger itself keeps its configuration; its records reach this handler too.
_REPAIRS = ("missing data offset tag", "missing data ByteCounts tag", "missing ByteCounts tag",
            "incorrect StripByteCounts count", "incorrect StripOffsets count",
            "is missing required tags", "estimating ByteCounts", "invalid offset to first page")
_tifffile_records = threading.local()


class _RecordCapture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        records = getattr(_tifffile_records, "records", None)
        if records is not None:
            records.append(record)


_tifffile_logger = logging.getLogger("tifffile")
if _tifffile_logger.level == logging.NOTSET and not _tifffile_logger.handlers:
    _tifffile_logger.setLevel(logging.WARNING)
    _tifffile_logger.propagate = False
_tifffile_logger.addHandler(_RecordCapture())


def _repair(records: list[logging.LogRecord]) -> str | None:
    for record in records:
        message = record.getMessage()
        if any(repair in message for repair in _REPAIRS):
            return re.sub(r"^(<[^>]*>\s*)+", "", message).strip()
    return None


@contextmanager
def _tifffile_repairs(path: Path) -> Iterator[None]:
    """Fail ``path`` if tifffile repaired its image data while the block read it (that reason
    ahead of a library error that followed from the damage; upres's own checks, such as the
    declared size against --max-pixels, keep theirs)."""
    outer = getattr(_tifffile_records, "records", None)
    records: list[logging.LogRecord] = []
    _tifffile_records.records = records
    try:
        yield
    except ImageError:
        raise
    except Exception:
        if (repair := _repair(records)) is not None:
            raise ImageError(path, f"corrupt TIFF: {repair}") from None
        raise
    finally:
        _tifffile_records.records = outer
        if outer is not None:
            outer.extend(records)
    if (repair := _repair(records)) is not None:
        raise ImageError(path, f"corrupt TIFF: {repair}")


_JPEG = 7  # TIFF tag 259 (compression): JPEG


class _PHOTOMETRIC(enum.IntEnum):
    """TIFF tag 262's values that this module names (tifffile's PHOTOMETRIC, without importing
    tifffile): tifffile's members compare and hash as these integers."""

    MINISWHITE = 0
    MINISBLACK = 1
    RGB = 2
    PALETTE = 3
    SEPARATED = 5
    YCBCR = 6


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
    if photometric == _PHOTOMETRIC.YCBCR and page.compression == _JPEG:
        # The JPEG codec converts YCbCr to RGB (as libtiff's JPEGCOLORMODE_RGB does).
        photometric, color_samples = _PHOTOMETRIC.RGB, 3
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


def _tiff_exif(source: Path | BinaryIO, index: int, drop_description: bool) -> bytes | None:
    # Pillow keeps EXIF value types intact (tifffile turns the EXIF IFD into a name dict).
    try:
        with _PillowSettings.active(), Image.open(source) as image:
            image.seek(index)
            exif = image.getexif()
    except Exception:
        return None
    return _serialise_exif(_tiff_descriptive_exif(exif, drop_description))


def _tag_bytes(tif: Any, page: Any, code: int) -> bytes | None:
    """A tag's value as the bytes stored (IPTC is often typed LONG, XMP BYTE or UNDEFINED)."""
    value = _tiff_tag(page, code)
    if isinstance(value, bytes | bytearray):
        return bytes(value) or None
    if isinstance(value, tuple | list | np.ndarray) and len(value):
        try:
            return np.asarray(value, dtype=f"{tif.byteorder}u4").tobytes()
        except (TypeError, ValueError, OverflowError):
            return None
    return None


# At most this many pages are looked at for the full-resolution one (a thumbnail first).
_MAX_PAGES = 256
_REDUCED, _MASK = 1, 4  # NewSubfileType bits


def _is_full_resolution(page: Any) -> bool:
    subfiletype = int(_tiff_tag(page, 254, 0) or 0)
    old_subfiletype = int(_tiff_tag(page, 255, 1) or 1)  # SubfileType: 2 = reduced resolution
    return not subfiletype & (_REDUCED | _MASK) and old_subfiletype != 2


def _tiff_page(path: Path, tif: Any) -> tuple[int, Any]:
    """(index, page) of the image a TIFF holds: its first page, unless that is a reduced-
    resolution copy (NewSubfileType bit 0, a thumbnail some scanners write first), in which case
    the largest full-resolution page."""
    first = tif.pages.first
    if _is_full_resolution(first):
        return 0, first
    best: tuple[int, Any] | None = None
    for index, page in enumerate(islice(tif.pages, _MAX_PAGES)):
        if not isinstance(page, tifffile.TiffPage) or not _is_full_resolution(page):
            continue
        if best is None or page.imagewidth * page.imagelength > best[1].imagewidth * best[1].imagelength:
            best = (index, page)
    if best is None:
        raise ImageError(path, "TIFF holds only reduced-resolution (thumbnail) pages, no full-size "
                               "image")
    return best


def _tiff_meta(
    path: Path, tif: Any, page: Any, max_pixels: int, index: int = 0,
    source: BinaryIO | None = None,
) -> tuple[ImageMeta, int, _TiffLayout]:
    """``source``: the file's bytes being decoded (else ``path`` is opened for the EXIF)."""
    width, height = int(page.imagewidth), int(page.imagelength)
    _check_pixels(path, width, height, max_pixels)
    layout = _tiff_layout(path, page)
    orientation = int(_tiff_tag(page, _ORIENTATION_TAG, 1))
    orientation = orientation if 1 <= orientation <= 8 else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    gray = layout.photometric in (_PHOTOMETRIC.MINISBLACK, _PHOTOMETRIC.MINISWHITE)
    mode: Mode = "gray" if gray else "rgb"
    if source is not None:
        source.seek(0)
    meta = ImageMeta(
        mode=mode,
        bit_depth=_tiff_bit_depth(page, layout),
        has_alpha=layout.alpha_index is not None,
        icc_profile=_icc_for_mode(page.iccprofile, mode),
        dropped=refused_icc(page.iccprofile, mode),
        dpi=_oriented_dpi(_tiff_dpi(page), orientation),
        exif=_tiff_exif(source if source is not None else path, index,
                        drop_description=bool(tif.is_shaped)),
        source_format="TIFF",
        width=width,
        height=height,
        xmp=_tag_bytes(tif, page, 700),
        iptc=_tag_bytes(tif, page, 33723),
    )
    return meta, orientation, layout


def _check_segments(path: Path, page: Any, size: int) -> None:
    """Every strip or tile holds data, inside the file's ``size`` bytes. tifffile decodes a
    segment of 0 bytes as zeros: an image whose byte counts were lost would come out black."""
    counts = page.databytecounts
    unit = "tile" if page.is_tiled else "strip"
    for index, (offset, count) in enumerate(zip(page.dataoffsets, counts, strict=False)):
        if not count:
            raise ImageError(path, f"corrupt TIFF: {unit} {index + 1} of {len(counts)} has no data "
                                   "(byte count 0)")
        if offset + count > size:
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
        _check_float_range(path, samples, "TIFF")
        values = samples.astype(np.float32)
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


def _read_tiff(path: Path, data: bytes, max_pixels: int) -> DecodedImage:
    """Decode the TIFF file's ``data``."""
    source = io.BytesIO(data)
    try:
        with _tifffile_repairs(path), tifffile.TiffFile(io.BytesIO(data)) as tif:
            index, page = _tiff_page(path, tif)
            meta, orientation, layout = _tiff_meta(path, tif, page, max_pixels, index, source)
            _check_segments(path, page, len(data))
            try:
                raw = page.asarray()
            except (KeyError, ValueError, NotImplementedError) as exc:
                if not _pillow_can_replace(page):
                    raise ImageError(path, _tiff_codec_reason(page, exc)) from None
                color, alpha = _pillow_fallback(path, data, index, max_pixels, page)
            else:
                color, alpha = _tiff_color(path, page, layout, _samples_last(page, raw))
    except ImageError:
        raise
    except tifffile.TiffFileError as exc:
        raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None
    except Exception as exc:
        raise _corrupt(path, "TIFF", exc) from None
    return _finish(color, alpha, meta, orientation)


def _pillow_fallback(path: Path, data: bytes, index: int, max_pixels: int,
                     page: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels through Pillow (libtiff) for codecs tifffile lacks; metadata stays tifffile's."""
    try:
        return _pillow_tiff_pixels(path, data, index, max_pixels)
    except ImageError as exc:
        if exc.reason != "not a recognised image format":
            raise
    compression = getattr(page.compression, "name", page.compression)
    raise ImageError(path, f"TIFF compression {compression} is not supported")


def _tiff_codec_reason(page: Any, exc: BaseException) -> str:
    compression = getattr(page.compression, "name", page.compression)
    return f"cannot decode TIFF compression {compression} ({exc})"


def _probe_tiff(path: Path, max_pixels: int) -> ImageMeta:
    try:
        with _tifffile_repairs(path), tifffile.TiffFile(path) as tif:
            index, page = _tiff_page(path, tif)
            return _tiff_meta(path, tif, page, max_pixels, index)[0]
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(path, f"invalid or corrupt TIFF ({exc})") from None


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
