"""Encoding: output format choice and the deterministic, atomic PNG, JPEG and TIFF writers."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile
from PIL import Image

from upres.imageio.checks import _PNG_MAGIC, ImageError
from upres.imageio.metadata import ImageMeta, _exif_for_output, _icc_for_mode, _load_exif, _scaled_dpi
from upres.imageio.samples import to_output_samples
from upres.runtime.atomic import atomic_output

OUTPUT_FORMATS = ("png", "tiff", "jpg")
JPEG_QUALITY = 95
# IFD0 text tags that tifffile can write into a TIFF output (it cannot write EXIF sub-IFDs).
_TIFF_TEXT_TAGS = (270, 271, 272, 306, 315, 33432)


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
