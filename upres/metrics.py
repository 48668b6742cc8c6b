"""PSNR and SSIM the way super-resolution papers report them.

Y channel of ITU-R BT.601 (studio range, as MATLAB `rgb2ycbcr`), `shave` pixels removed from each
border, images as uint8 RGB (grayscale images are their own Y after the same transform).
"""

from __future__ import annotations

import cv2
import numpy as np


def y_channel(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma (16..235) of a uint8 RGB or grayscale image, float64."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        return 16.0 + 219.0 * x / 255.0
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def _shave(x: np.ndarray, shave: int) -> np.ndarray:
    return x[shave:-shave, shave:-shave] if shave > 0 else x


def psnr(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """Y-channel PSNR in dB between two uint8 images of equal size."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    ya, yb = _shave(y_channel(a), shave), _shave(y_channel(b), shave)
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """Y-channel SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, valid region)."""
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ: {a.shape} vs {b.shape}")
    x, y = _shave(y_channel(a), shave), _shave(y_channel(b), shave)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = cv2.getGaussianKernel(11, 1.5)
    win = win @ win.T

    def filt(z: np.ndarray) -> np.ndarray:
        return cv2.filter2D(z, -1, win)[5:-5, 5:-5]

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))
