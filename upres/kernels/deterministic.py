"""Model-free upscale: Lanczos + constrained unsharp mask (no halos, no invented detail).

The sharpened value is clamped to the local min/max of the upscaled image, so sharpening steepens
edges without overshooting them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

USM_SIGMA = 1.2  # output pixels
USM_AMOUNT = 0.6
LANCZOS_RADIUS = 4  # cv2 INTER_LANCZOS4 reads 4 input pixels each side


def receptive_field(scale: int) -> int:
    """Input pixels of context each output pixel depends on (Lanczos, then blur + 3x3 clamp)."""
    blur_radius = math.ceil(4 * USM_SIGMA) + 1  # Gaussian kernel half-width + min/max window
    return LANCZOS_RADIUS + math.ceil(blur_radius / scale) + 1


def upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] -> (H*s, W*s, C) float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    up = cv2.resize(rgb, (w * scale, h * scale), interpolation=cv2.INTER_LANCZOS4)
    if up.ndim == 2:
        up = up[..., None]
    ksize = 2 * math.ceil(4 * USM_SIGMA) + 1
    blurred = cv2.GaussianBlur(up, (ksize, ksize), USM_SIGMA, borderType=cv2.BORDER_REPLICATE)
    if blurred.ndim == 2:
        blurred = blurred[..., None]
    sharp = up + USM_AMOUNT * (up - blurred)
    kernel = np.ones((3, 3), np.uint8)
    lo = cv2.erode(up, kernel, borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(up, kernel, borderType=cv2.BORDER_REPLICATE)
    if lo.ndim == 2:
        lo, hi = lo[..., None], hi[..., None]
    return np.clip(np.clip(sharp, lo, hi), 0.0, 1.0).astype(np.float32)
