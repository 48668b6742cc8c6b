"""Decoding TIFF through tifffile: layout, metadata, samples to colour, and strip/tile segments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from upres.imageio.checks import ImageError, _check_pixels, _corrupt
from upres.imageio.metadata import (
    _ORIENTATION_TAG,
    _RESOLUTION_UNIT,
    _X_RESOLUTION,
    _Y_RESOLUTION,
    DecodedImage,
    ImageMeta,
    Mode,
    _icc_for_mode,
    _serialise_exif,
    _tiff_descriptive_exif,
    _valid_dpi,
)
from upres.imageio.pillow_decode import _PillowSettings, _read_pillow
from upres.imageio.samples import _finish, _unit_float

# tifffile logs what it repairs in malformed files ("incorrect StripByteCounts count") at ERROR
# level on stderr, naming no file; what cannot be read raises, and becomes the one-line ImageError
# the user should see. An explicit logging configuration by the application still wins.
if logging.getLogger("tifffile").level == logging.NOTSET:
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


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
