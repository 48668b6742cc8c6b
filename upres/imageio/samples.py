"""Conversions between stored samples and float32 pixels in [0, 1], in both directions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upres.imageio.checks import ImageError
from upres.imageio.metadata import DecodedImage, ImageMeta, Mode, _orient

_BT601 = (0.299, 0.587, 0.114)


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


def _finish(
    color: np.ndarray, alpha: np.ndarray | None, meta: ImageMeta, orientation: int
) -> DecodedImage:
    rgb = np.ascontiguousarray(_orient(_to_rgb(color), orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, orientation))
    meta.has_alpha = alpha is not None
    return DecodedImage(rgb=rgb, alpha=alpha, meta=meta)


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
