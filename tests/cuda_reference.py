"""The numpy definitions the CUDA kernels must match, built on the runtime's own kernels.

Each function takes and returns arrays in the kernel's layout (CHW planes on the model side, HWC
samples on the image side), so a GPU test compares a kernel's output with its reference directly.
Where the runtime already defines the operation (Sobel, compose, feather blending, quantisation),
the reference calls that definition instead of restating it.
"""

from __future__ import annotations

import numpy as np

from upres.imageio import quantize as quantize_samples
from upres.kernels.edges import compose, sobel_magnitude
from upres.runtime.blend import FeatherAccumulator
from upres.runtime.tiling import Rect

_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def normalize(src: np.ndarray, y0: int, x0: int, h: int, w: int, channels: int) -> np.ndarray:
    """(H, W, C) uint8/uint16/float32 -> (channels, h, w) float32 / range; outside -> nearest edge."""
    rows = np.clip(np.arange(y0, y0 + h), 0, src.shape[0] - 1)
    cols = np.clip(np.arange(x0, x0 + w), 0, src.shape[1] - 1)
    region = src[rows][:, cols, :channels].astype(np.float32)
    rng = _RANGES[np.dtype(src.dtype)]
    if rng != 1.0:
        region /= np.float32(rng)  # as the image reader does: divide, not multiply by 1/range
    return np.ascontiguousarray(region.transpose(2, 0, 1))


def sobel_refine_input(coarse: np.ndarray) -> np.ndarray:
    """(3, h, w) coarse output -> (4, h, w): RGB clipped to [0, 1] + its Sobel magnitude."""
    rgb = np.clip(coarse.transpose(1, 2, 0), 0.0, 1.0)
    edge = sobel_magnitude(rgb)
    return np.ascontiguousarray(np.concatenate([rgb, edge[..., None]], axis=2).transpose(2, 0, 1))


def gated_compose(refine_in: np.ndarray, residual: np.ndarray, texture: float) -> np.ndarray:
    """(4, h, w) refine input + (3, h, w) residual -> (3, h, w) composed, clipped."""
    coarse = refine_in[:3].transpose(1, 2, 0)
    out = compose(coarse, residual.transpose(1, 2, 0), refine_in[3], texture)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def feather_span(canvas: Rect, out_rect: Rect) -> tuple[int, int, int, int, int, int] | None:
    """Where a tile output covering `out_rect` meets a canvas covering `canvas` (both in output
    pixels): (sy, sx, h, w) in the tile, (dy, dx) in the canvas; None if they do not meet.
    The same clipping as FeatherAccumulator.add, shared by the device canvas and its test."""
    y0, y1 = max(out_rect.y0, canvas.y0), min(out_rect.y1, canvas.y1)
    x0, x1 = max(out_rect.x0, canvas.x0), min(out_rect.x1, canvas.x1)
    if y0 >= y1 or x0 >= x1:
        return None
    return (y0 - out_rect.y0, x0 - out_rect.x0, y1 - y0, x1 - x0, y0 - canvas.y0, x0 - canvas.x0)


def feather_accumulate(acc: FeatherAccumulator, out_rect: Rect, tile: np.ndarray,
                       weights: np.ndarray) -> None:
    """Add a (C, h, w) tile output with its (h, w) weights to a host accumulator."""
    acc.add(out_rect, np.ascontiguousarray(tile.transpose(1, 2, 0)), weights)


def quantize(src: np.ndarray, sy: int, sx: int, h: int, w: int, dtype: np.dtype | type) -> np.ndarray:
    """(C, H, W) float32 region -> (h, w, C) samples: uint8/uint16 rounded, or float32 clipped."""
    region = np.ascontiguousarray(src[:, sy : sy + h, sx : sx + w].transpose(1, 2, 0))
    dt = np.dtype(dtype)
    if dt == np.float32:
        return np.clip(region, 0.0, 1.0)
    return quantize_samples(region, 8 if dt == np.uint8 else 16)
