"""Encoding: output format choice and the deterministic, atomic PNG, JPEG and TIFF writers."""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from upres.imageio.checks import _PNG_MAGIC, ImageError
from upres.imageio.compression import (
    TIFF_LEVELS,
    Compression,
    available_cores,
    encoder_pool,
    png_idat_stream,
)
from upres.imageio.metadata import ImageMeta, _exif_for_output, _icc_for_mode, _load_exif, _scaled_dpi
from upres.imageio.samples import NonFiniteError, output_channels, to_output_samples
from upres.runtime.atomic import atomic_output

OUTPUT_FORMATS = ("png", "tiff", "jpg")
JPEG_QUALITY = 95
# IFD0 text tags that tifffile can write into a TIFF output (it cannot write EXIF sub-IFDs).
_TIFF_TEXT_TAGS = (270, 271, 272, 306, 315, 33432)
TIFF_STRIP_BYTES = 1 << 18  # uncompressed bytes per TIFF strip: the unit of parallel compression


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


# --------------------------------------------------------------------------------------------
# PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_metadata_chunks(
    icc: bytes | None, dpi: tuple[float, float] | None, exif: bytes | None
) -> list[bytes]:
    """iCCP/pHYs/eXIf, which must precede IDAT."""
    chunks: list[bytes] = []
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc, 9)))
    if dpi:
        ppm = [max(1, round(value / 0.0254)) for value in dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    return chunks


def _write_png(tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None,
               encoding: Encoding) -> None:
    height, width, channels = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, samples.dtype.itemsize * 8, color_type, 0, 0, 0)
    with open(tmp, "wb") as handle:
        handle.write(_PNG_MAGIC + _png_chunk(b"IHDR", header))
        handle.write(b"".join(_png_metadata_chunks(icc, dpi, exif)))
        for piece in png_idat_stream(samples, encoding.compression, encoding.pool()):
            handle.write(_png_chunk(b"IDAT", piece))
        handle.write(_png_chunk(b"IEND", b""))


# --------------------------------------------------------------------------------------------
# JPEG and TIFF


def _write_jpeg(tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None,
                encoding: Encoding) -> None:
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
    channels: int, icc: bytes | None, dpi: tuple[float, float] | None, exif: bytes | None,
    compression: Compression = Compression.DEFAULT,
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "photometric": "rgb" if channels >= 3 else "minisblack",
        # Strips are independent streams: tifffile compresses them with libdeflate (imagecodecs).
        "compression": "zlib",
        "compressionargs": {"level": TIFF_LEVELS[compression]},
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


def _write_tiff(tmp: Path, samples: np.ndarray, icc: bytes | None, dpi: Any, exif: bytes | None,
                encoding: Encoding) -> None:
    width, channels = samples.shape[1:]
    data = samples[..., 0] if channels == 1 else samples
    row_bytes = width * channels * samples.dtype.itemsize
    tifffile.imwrite(tmp, data, rowsperstrip=max(1, TIFF_STRIP_BYTES // row_bytes),
                     maxworkers=encoding.threads or available_cores(),
                     **_tiff_options(channels, icc, dpi, exif, encoding.compression))


_WRITERS = {"png": _write_png, "jpg": _write_jpeg, "tiff": _write_tiff}


def _validate_output_arrays(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{path}: rgb must have shape (H, W, 3), got {rgb.shape}")
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise ValueError(f"{path}: alpha shape {alpha.shape} does not match {rgb.shape[:2]}")


@dataclass(frozen=True)
class Encoding:
    """How lossless outputs are compressed: the trade-off and the threads for parallel strips
    (0 = every core; 1 = in the calling thread). The bytes do not depend on ``threads``."""

    compression: Compression = Compression.DEFAULT
    threads: int = 0

    def pool(self) -> Executor | None:
        return None if self.threads == 1 else encoder_pool(self.threads)


def output_samples_shape(meta: ImageMeta, scale: int, fmt: str) -> tuple[tuple[int, int, int], Any]:
    """(shape, dtype) of the samples `write_samples` takes for this image, format and scale."""
    fmt = resolve_format(fmt, meta)
    alpha = meta.has_alpha and fmt != "jpg"
    depth = 8 if fmt == "jpg" else meta.bit_depth
    shape = (meta.height * scale, meta.width * scale, output_channels(meta.mode, alpha))
    return shape, np.uint8 if depth == 8 else np.uint16


def write_samples(path: Path, samples: np.ndarray, meta: ImageMeta, scale: int, fmt: str,
                  encoding: Encoding | None = None) -> None:
    """Encode quantised ``samples`` (shaped as `output_samples_shape` says) atomically, with the
    source's ICC profile and EXIF, and DPI multiplied by ``scale``."""
    fmt = resolve_format(fmt, meta)
    dpi = _scaled_dpi(meta, scale)
    icc = _icc_for_mode(meta.icc_profile, meta.mode)
    exif = _exif_for_output(meta.exif, samples.shape[1], samples.shape[0], dpi)
    try:
        with atomic_output(path) as tmp:
            _WRITERS[fmt](tmp, samples, icc, dpi, exif, encoding or Encoding())
    except OSError as exc:
        raise ImageError(path, f"cannot write {fmt.upper()}: {exc.strerror or exc}") from None


def write_image(
    path: Path,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    meta: ImageMeta,
    scale: int,
    fmt: str,
    encoding: Encoding | None = None,
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
    try:
        samples = to_output_samples(rgb, None if fmt == "jpg" else alpha, meta.mode, bit_depth)
    except NonFiniteError as exc:
        raise ImageError(path, str(exc)) from None
    write_samples(path, samples, meta, scale, fmt, encoding)
