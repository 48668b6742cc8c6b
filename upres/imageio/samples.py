"""Conversions between stored samples and float32 pixels in [0, 1], in both directions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upres.core.errors import ImageError
from upres.core.parallel import in_row_parts
from upres.imageio.metadata import DecodedImage, ImageMeta, Mode, _orient

_BT601 = (0.299, 0.587, 0.114)


def _unit_float(array: np.ndarray, maxval: float) -> np.ndarray:
    out = array.astype(np.float32)
    if maxval != 1.0:
        out /= np.float32(maxval)
    return out


def _check_float_range(path: Path, array: np.ndarray, what: str = "image") -> None:
    """Float samples must be finite and in 0..1. Values outside it (HDR, scientific or
    unnormalised data) would be clipped to white or black without a word, and upres does not
    guess a tone mapping: the file is refused, with the range found and how to fix it."""
    if not np.isfinite(array).all():
        raise ImageError(path, f"floating-point {what} contains NaN or infinite values")
    if array.size == 0:
        return
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise ImageError(path, f"floating-point samples range from {low:.6g} to {high:.6g}, outside "
                               "0..1: rescale the image into 0..1 (or save it as 16-bit integers) "
                               "before upscaling")


def _checked_float(path: Path, array: np.ndarray) -> np.ndarray:
    _check_float_range(path, array)
    return array.astype(np.float32)


def _to_rgb(color: np.ndarray) -> np.ndarray:
    if color.ndim == 2:
        color = color[..., None]
    if color.shape[2] == 1:
        return np.repeat(color, 3, axis=2)
    return color


def _finish(
    color: np.ndarray, alpha: np.ndarray | None, meta: ImageMeta, orientation: int
) -> DecodedImage:
    rgb = np.ascontiguousarray(_orient(_to_rgb(color), orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    meta.has_alpha = alpha is not None
    return DecodedImage(rgb=rgb, alpha=alpha, meta=meta)


_QUANTIZE_BLOCK = 1 << 18  # floats per block: a block's temporaries stay in the L2 cache


class NonFiniteError(ValueError):
    """Output pixels hold NaN or infinity (a broken model): nothing is written."""


def samples_peak(out: np.ndarray, shape: tuple[int, ...]) -> np.float32:
    """The largest sample of uint8/uint16 ``out``, once it is checked to have ``shape``."""
    if out.dtype == np.uint8:
        peak = np.float32(255.0)
    elif out.dtype == np.uint16:
        peak = np.float32(65535.0)
    else:
        raise ValueError(f"samples must be uint8 or uint16, got {out.dtype}")
    if tuple(shape) != out.shape:
        raise ValueError(f"shape {tuple(shape)} does not match the samples' {out.shape}")
    return peak


def quantize_into(values: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = rint(clip(values, 0, 1) * max)`` for uint8/uint16 ``out`` of the same shape,
    in one pass over cache-sized blocks of rows (rounding half to even, as ``np.rint``).

    clip(v, 0, 1) * m equals clip(v * m, 0, m) exactly in float32 (m * 1.0 is exact and the
    product is monotonic), so the block is scaled first and clipped in place: no whole-image
    float temporaries. Raises NonFiniteError on NaN or infinite values.
    """
    peak = samples_peak(out, values.shape)
    if values.size == 0:
        return
    rows = max(1, _QUANTIZE_BLOCK // max(1, values[0].size))

    def blocks(y0: int, y1: int) -> None:
        block = np.empty((min(rows, y1 - y0), *values.shape[1:]), np.float32)
        for y in range(y0, y1, rows):
            part = block[: min(rows, y1 - y)]
            np.multiply(values[y : y + len(part)], peak, out=part)
            round_into(part, peak, out[y : y + len(part)])

    # Rows split among the cores (each block computed as alone: the same samples on any number).
    in_row_parts(values.shape[0], blocks, align=rows, min_rows=2 * rows)


def round_into(scaled: np.ndarray, peak: np.float32, out: np.ndarray) -> None:
    """Float32 ``scaled`` (values times ``peak``, overwritten) clipped to 0..peak and rounded half
    to even into integer ``out`` of its shape; NonFiniteError on NaN or infinite values."""
    if not np.isfinite(scaled).all():
        raise NonFiniteError("output pixels contain NaN or infinite values")
    np.clip(scaled, 0.0, peak, out=scaled)
    np.rint(scaled, out=scaled)
    np.copyto(out, scaled, casting="unsafe")


def quantize(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] -> uint8/uint16, clipped, rounding half to even (``np.rint``)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    out = np.empty(values.shape, np.uint8 if bit_depth == 8 else np.uint16)
    quantize_into(np.asarray(values, dtype=np.float32), out)
    return out


def output_channels(mode: Mode, alpha: bool) -> int:
    return (1 if mode == "gray" else 3) + (1 if alpha else 0)


def samples_into(pixels: np.ndarray, out: np.ndarray, mode: Mode) -> None:
    """Quantise float (h, w, 3 or 4) pixels (RGB, alpha last; any strides, values clipped to
    [0, 1]) into ``out`` (h, w, C) samples:
    C = 1|3 colour (+1 alpha, present in ``out`` only if it is kept). Gray is BT.601 luma."""
    colour = out.shape[2] - (1 if out.shape[2] in (2, 4) else 0)
    if mode == "gray":
        # Luma of the clipped colour (quantize_into clips what it is given, not its inputs).
        red, green, blue = (np.clip(pixels[..., i], 0.0, 1.0) for i in range(3))
        luma = red * np.float32(_BT601[0]) + green * np.float32(_BT601[1])
        luma += blue * np.float32(_BT601[2])
        quantize_into(luma[..., None], out[..., :1])
    else:
        quantize_into(pixels[..., :3], out[..., :3])
    if colour < out.shape[2]:
        if pixels.shape[2] < 4:
            raise ValueError("the samples keep alpha, but the pixels have none")
        quantize_into(pixels[..., 3:4], out[..., colour:])


def to_output_samples(
    rgb: np.ndarray, alpha: np.ndarray | None, mode: Mode, bit_depth: int
) -> np.ndarray:
    """Quantised (H, W, C) samples: C = 1|3 colour (+1 alpha). Gray uses BT.601 luma."""
    height, width = rgb.shape[:2]
    out = np.empty((height, width, output_channels(mode, alpha is not None)),
                   np.uint8 if bit_depth == 8 else np.uint16)
    pixels = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    samples_into(np.asarray(pixels, dtype=np.float32), out, mode)
    return out
