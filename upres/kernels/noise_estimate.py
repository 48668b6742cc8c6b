"""Cheap estimates of how damaged an input is: its noise level and its JPEG blockiness.

Both work on luma in 0..255 and look only at a few crops of a large image, so they cost a few
milliseconds whatever its size.

Noise: Immerkaer's estimator ("Fast noise variance estimation", CVIU 1996) — the image filtered by
the difference of two Laplacians, which cancels smooth image content up to second order, with
``sigma = sqrt(pi/2) / 6 * mean|response|`` — taken per 8x8 block, and reported as a low
percentile of the blocks that are not clipped: detail and edges raise a block's estimate, flat
blocks give the noise itself, and every photo has some flat blocks.

Blockiness: the mean absolute step between neighbouring pixels, per column (row) phase modulo 8.
JPEG codes 8x8 blocks independently, so the steps at one phase (the block boundary; whichever
phase, as a crop moves the grid) stand out from the other seven. Reported as that phase's excess
over the median of the others, in each direction, averaged: about 0 for an image never
JPEG-compressed, rising as the quality falls.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from upres.kernels.edges import LUMA_WEIGHTS

_BLOCK = 8
_CROP = 512
# A low percentile of 8x8 blocks reads white noise this much low (measured on pure noise, where
# every block is flat): divided out, so the estimate is the noise's sigma.
_PERCENTILE = 5
_PERCENTILE_BIAS = 0.724
_LAPLACE_DIFF = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in 0..255 (float32) of an HxW or HxWxC uint8 / uint16 / float (0..1) image."""
    img = image.astype(np.float32)
    if image.dtype == np.uint16:
        img /= 257.0
    elif image.dtype.kind == "f":
        img *= 255.0
    if img.ndim == 3:
        if img.shape[2] >= 3:
            r, g, b = LUMA_WEIGHTS
            img = img[..., 0] * r + img[..., 1] * g + img[..., 2] * b
        else:
            img = img[..., 0]
    return img


def _crops(gray: np.ndarray, grid: int = 8) -> list[np.ndarray]:
    """Up to five crops of _CROP px (centre and four quadrants' centres) of a large image; the
    image itself when it is small. Crop origins stay on the ``grid`` (blockiness phases)."""
    h, w = gray.shape
    if h * w <= 4 * _CROP * _CROP:
        return [gray]
    size = min(_CROP, h, w)
    out = []
    for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)):
        y = int(min(h - size, max(0, fy * h - size / 2))) // grid * grid
        x = int(min(w - size, max(0, fx * w - size / 2))) // grid * grid
        out.append(gray[y : y + size, x : x + size])
    return out


def _block_sigmas(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    if h < _BLOCK + 2 or w < _BLOCK + 2:
        return np.zeros(0, np.float32)
    response = np.abs(cv2.filter2D(gray, -1, _LAPLACE_DIFF, borderType=cv2.BORDER_REPLICATE))
    response = response[1:-1, 1:-1]
    inner = gray[1:-1, 1:-1]
    bh, bw = response.shape[0] // _BLOCK, response.shape[1] // _BLOCK
    cut = (slice(0, bh * _BLOCK), slice(0, bw * _BLOCK))
    blocks = response[cut].reshape(bh, _BLOCK, bw, _BLOCK).mean(axis=(1, 3))
    values = inner[cut].reshape(bh, _BLOCK, bw, _BLOCK)
    # Clipped blocks (blown highlights, crushed shadows) hold no noise to measure.
    clipped = ((values <= 2) | (values >= 253)).mean(axis=(1, 3)) > 0.1
    return (blocks[~clipped] * (math.sqrt(math.pi / 2) / 6)).astype(np.float32)


def noise_sigma(image: np.ndarray) -> float:
    """Estimated standard deviation of the image's noise, in 0..255 levels."""
    sigmas = np.concatenate([_block_sigmas(c) for c in _crops(luma(image))])
    if sigmas.size == 0:
        return 0.0
    return float(percentile(sigmas, _PERCENTILE)) / _PERCENTILE_BIAS


def percentile(values: np.ndarray, q: float) -> np.floating:
    """``np.percentile(values, q)`` of a 1-D float array (its default linear method), the same
    value and dtype bit for bit, from one ``np.partition``: NumPy's own percentile imports
    ``numpy.ma`` on first use (~13 ms, a twentieth of a run's start-up)."""
    n = values.size
    virtual = (n - 1) * (q / 100.0)
    lo = math.floor(virtual)
    hi = min(lo + 1, n - 1)
    part = np.partition(values, (lo, hi)) if n > 1 else values
    below, above = part[lo], part[hi]
    # NumPy's interpolation weight is a Python float (a weak scalar), its complement taken in
    # float64 and the blend computed in the array's dtype, from the nearer end.
    t = virtual - lo
    step = above - below
    return above - step * (1.0 - t) if t >= 0.5 else below + step * t


def _phase_excess(steps: np.ndarray, period: int) -> float:
    """Excess of the strongest of ``period`` phases of ``steps`` (rows x steps) over the second.

    Each step is taken relative to its neighbours' (two each side): a block edge stands out in
    smooth areas, where JPEG's steps show, and detail (high everywhere) cancels out. Against the
    second phase, not the median, so a period of 2 or 4 (a downscaled JPEG) is not counted.
    """
    if steps.shape[1] < 3 * period:
        return 0.0
    pad = np.pad(steps, ((0, 0), (2, 2)), mode="edge")
    around = (pad[:, :-4] + pad[:, 1:-3] + pad[:, 3:-1] + pad[:, 4:]) * 0.25
    relative = steps / (around + 1.0)
    n = relative.shape[1] // period * period
    phases = np.sort(relative[:, :n].reshape(relative.shape[0], -1, period).mean(axis=(0, 1)))
    return max(0.0, float(phases[-1] - phases[-2]) / max(float(phases[-2]), 1e-3))


def blockiness(image: np.ndarray, period: int = 8) -> float:
    """JPEG blockiness: 0 for an image never block-coded, about 0.05-0.7 at JPEG quality 90-40.

    ``period``: the block size in this image's pixels (8 x scale for an upscaled JPEG).
    """
    values = []
    for gray in _crops(luma(image), period):
        if min(gray.shape) < 4 * period:
            continue
        across = np.abs(np.diff(gray, axis=1))  # column steps
        down = np.abs(np.diff(gray, axis=0)).T
        values.append(0.5 * (_phase_excess(across, period) + _phase_excess(down, period)))
    return float(np.mean(values)) if values else 0.0
