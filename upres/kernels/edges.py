"""Sobel edge map, edge gate and the hybrid compose step (numpy/OpenCV reference).

These are the definitions: the runtime's hybrid stage (`upres.runtime.stages.add_texture`) computes
the same values in place on planes, `upres.models.edge_ops` is their torch twin for training, and
tests hold all three equal.
"""

from __future__ import annotations

import cv2
import numpy as np

# ITU-R BT.601 luma weights, the same as the evaluation's Y channel.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# A 3x3 Sobel response on a [0, 1] step edge peaks at 4; dividing by it maps edges to ~[0, 1].
SOBEL_NORM = 4.0
# Edge strength at which the gate has fallen to exp(-1) of its full value.
GATE_KNEE = 0.25

# Radius (in pixels) that the Sobel filter reaches; the tiler adds it to the refine halo.
SOBEL_RADIUS = 1


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (H, W, 3) float32 RGB image in [0, 1]."""
    r, g, b = LUMA_WEIGHTS
    return (r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]).astype(np.float32)


def sobel_magnitude(rgb: np.ndarray) -> np.ndarray:
    """Normalised Sobel gradient magnitude of the luma, (H, W) float32, replicate borders."""
    return _sobel_of_luma(luma(rgb))


def sobel_magnitude_planes(rgb: np.ndarray) -> np.ndarray:
    """:func:`sobel_magnitude` of a (3, H, W) image: the same values, read from planes."""
    return _sobel_of_luma(luma_planes(rgb))


def luma_planes(rgb: np.ndarray) -> np.ndarray:
    """:func:`luma` of (3, H, W) planes (or of rows of them): the same values."""
    r, g, b = LUMA_WEIGHTS
    return (r * rgb[0] + g * rgb[1] + b * rgb[2]).astype(np.float32)


def sobel_gradients(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 Sobel derivatives (x, y) of a luma plane, replicate borders."""
    return (cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE),
            cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE))


def gradient_magnitude(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The normalised edge strength of Sobel derivatives (element-wise: rows of them give rows)."""
    return (np.sqrt(gx * gx + gy * gy) / SOBEL_NORM).astype(np.float32)


def _sobel_of_luma(y: np.ndarray) -> np.ndarray:
    return gradient_magnitude(*sobel_gradients(y))


def edge_gate(edge: np.ndarray, knee: float = GATE_KNEE) -> np.ndarray:
    """1 on flat areas, falling smoothly towards 0 on strong edges so texture never moves them."""
    e = edge / np.float32(knee)
    return np.exp(-(e * e)).astype(np.float32)


def compose(
    coarse: np.ndarray, residual: np.ndarray, edge: np.ndarray, texture: float
) -> np.ndarray:
    """out = coarse + texture * gate(edge) * residual, clipped to [0, 1]. HWC float32."""
    gate = edge_gate(edge)[..., None]
    out = coarse + np.float32(texture) * gate * residual
    return np.clip(out, 0.0, 1.0).astype(np.float32)
