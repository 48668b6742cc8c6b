"""Encoding: output format choice and the deterministic, atomic PNG, JPEG and TIFF writers."""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from upres.core.atomic import atomic_output
from upres.core.choices import format_name
from upres.core.errors import ImageError
from upres.core.lazy import LazyModule
from upres.core.parallel import available_cores
from upres.imageio.carry import Carried, carry
from upres.imageio.checks import _PNG_MAGIC
from upres.imageio.compression import (
    STRIP_BYTES,
    TIFF_LEVELS,
    Compression,
    crc32,
    encoder_pool,
    png_codec,
    png_idat_stream,
)
from upres.imageio.metadata import ImageMeta
from upres.imageio.samples import NonFiniteError, output_channels, to_output_samples

if TYPE_CHECKING:
    import tifffile
else:  # not imported by a run that reads and writes no TIFF
    tifffile = LazyModule("tifffile")

OUTPUT_FORMATS = ("png", "tiff", "jpg")
JPEG_QUALITY = 95
TIFF_STRIP_BYTES = 1 << 18  # uncompressed bytes per TIFF strip: the unit of parallel compression


def resolve_format(fmt: str, source: ImageMeta | str) -> str:
    """Map ``--format`` (same|png|tiff|jpg) and the source format to png, tiff or jpg."""
    fmt = format_name(fmt)
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


def _png_chunk_parts(kind: bytes, data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Length, type, data, CRC: written as they are, the data (an IDAT piece) is not copied."""
    return struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc32(data, crc32(kind)))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return b"".join(_png_chunk_parts(kind, data))


def _png_metadata_chunks(carried: Carried) -> list[bytes]:
    """iCCP/pHYs/eXIf, then the source's colour and text chunks and XMP: all before IDAT."""
    chunks: list[bytes] = []
    if carried.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(carried.icc, 9)))
    if carried.dpi:
        ppm = [max(1, round(value / 0.0254)) for value in carried.dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if carried.exif:
        chunks.append(_png_chunk(b"eXIf", carried.exif.removeprefix(b"Exif\x00\x00")))
    chunks += [_png_chunk(kind, body) for kind, body in carried.png_chunks]
    return chunks


def _write_png(tmp: Path, samples: np.ndarray, carried: Carried, encoding: Encoding) -> None:
    height, width, channels = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, samples.dtype.itemsize * 8, color_type, 0, 0, 0)
    with open(tmp, "wb") as handle:
        handle.write(_PNG_MAGIC + _png_chunk(b"IHDR", header))
        handle.write(b"".join(_png_metadata_chunks(carried)))
        for piece in png_idat_stream(samples, encoding.compression, encoding.pool()):
            handle.writelines(_png_chunk_parts(b"IDAT", piece))
        handle.write(_png_chunk(b"IEND", b""))


# --------------------------------------------------------------------------------------------
# JPEG and TIFF


def _write_jpeg(tmp: Path, samples: np.ndarray, carried: Carried, encoding: Encoding) -> None:
    image = Image.fromarray(samples[..., 0] if samples.shape[2] == 1 else samples)
    options: dict[str, Any] = {"quality": JPEG_QUALITY, "subsampling": 0, "optimize": False}
    if carried.icc:
        options["icc_profile"] = carried.icc
    if carried.dpi:
        options["dpi"] = (round(carried.dpi[0]), round(carried.dpi[1]))
    if carried.exif:
        options["exif"] = carried.exif
    if carried.xmp:
        options["xmp"] = carried.xmp
    if carried.comments:
        options["comment"] = carried.comments[0]
    if extra := carried.jpeg_extra():
        options["extra"] = extra
    image.save(tmp, format="JPEG", **options)


def _tiff_options(
    channels: int, carried: Carried, compression: Compression = Compression.DEFAULT,
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
        "extratags": carried.tiff_extratags(),
    }
    if channels in (2, 4):
        options["extrasamples"] = ("unassalpha",)
    if carried.icc:
        options["iccprofile"] = carried.icc
    if carried.dpi:
        options["resolution"] = carried.dpi
        options["resolutionunit"] = "INCH"
    return options


def _write_tiff(tmp: Path, samples: np.ndarray, carried: Carried, encoding: Encoding) -> None:
    width, channels = samples.shape[1:]
    data = samples[..., 0] if channels == 1 else samples
    row_bytes = width * channels * samples.dtype.itemsize
    tifffile.imwrite(tmp, data, rowsperstrip=max(1, TIFF_STRIP_BYTES // row_bytes),
                     maxworkers=encoding.threads or available_cores(),
                     **_tiff_options(channels, carried, encoding.compression))


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

    def label(self, fmt: str) -> str:
        """The deflate an output of ``fmt`` (png|tiff|jpg) is written with, for its sidecar."""
        if fmt == "png":
            return f"{png_codec(self.compression).label}, PNG strips of {STRIP_BYTES >> 20} MiB"
        if fmt == "tiff":
            return f"libdeflate {TIFF_LEVELS[self.compression]} (imagecodecs), horizontal predictor"
        return f"JPEG quality {JPEG_QUALITY} (Pillow)"

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
    source's metadata (`metadata_record` says which), and DPI multiplied by ``scale``."""
    fmt = resolve_format(fmt, meta)
    carried = carry(meta, fmt, samples.shape[1], samples.shape[0], scale)
    try:
        with atomic_output(path) as tmp:
            _WRITERS[fmt](tmp, samples, carried, encoding or Encoding())
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


def metadata_record(meta: ImageMeta, fmt: str) -> dict[str, list[str]]:
    """Which of the source's metadata a ``fmt`` output (same|png|tiff|jpg, as written: a streamed
    output is always tiff) keeps, and which it cannot hold: ``{"kept": [...], "dropped": [...]}``,
    names such as ``icc_profile``, ``dpi``, ``exif``, ``xmp``, ``iptc``, ``comment``,
    ``text:<PNG keyword>``, ``gAMA``, and for JPEG ``alpha`` and ``16-bit samples``. For the
    sidecar; the same decisions as the writers make."""
    fmt = resolve_format(fmt, meta)
    carried = carry(meta, fmt, meta.width, meta.height, 1)
    # What JPEG cannot hold of the pixels themselves: they are written without it.
    lost = ([f"{meta.bit_depth}-bit samples"] if fmt == "jpg" and meta.bit_depth > 8 else []) + \
        (["alpha"] if fmt == "jpg" and meta.has_alpha else [])
    return {"kept": carried.kept, "dropped": [*meta.dropped, *lost, *carried.dropped]}
