"""Grain re-injection: noise with the statistics of the ring just outside the mask, added inside it.

Inpainting leaves a smooth patch; on film grain or sensor noise that smoothness is what gives a
retouch away. The grain is measured on a high-pass of the surrounding ring (its 3x3 colour
covariance, robust to the ring's edges), and synthesised from a seeded generator, so the same input
gives the same grain.
"""

from __future__ import annotations

import cv2
import numpy as np

RING = 6  # pixels of surrounding image measured
HIGHPASS_SIGMA = 1.0  # grain is what a Gaussian of this width removes
_MIN_RING = 32  # fewer ring pixels than this: too few to measure, no grain
_OUTLIER = 3.0  # ring pixels beyond this many robust deviations are edges, not grain


def highpass(image: np.ndarray) -> np.ndarray:
    return image - cv2.GaussianBlur(image, (0, 0), HIGHPASS_SIGMA, borderType=cv2.BORDER_REFLECT)


def ring_covariance(image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """3x3 covariance of the high-passed colours in the ring around ``mask``, or None when the
    ring is too small to say."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING + 1, 2 * RING + 1))
    ring = (cv2.dilate(mask.astype(np.uint8), disc) > 0) & ~mask
    samples = highpass(image)[ring].astype(np.float64)
    if len(samples) < _MIN_RING:
        return None
    # Edges crossing the ring are structure, not grain: drop samples far out in any channel.
    scale = 1.4826 * np.median(np.abs(samples), axis=0) + 1e-12
    keep = (np.abs(samples) <= _OUTLIER * scale).all(axis=1)
    if keep.sum() < _MIN_RING:
        return None
    return np.cov(samples[keep], rowvar=False)


def synthesize(shape: tuple[int, int], covariance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 noise whose high-pass has ``covariance``."""
    h, w = shape
    white = rng.standard_normal((h, w, 3)).astype(np.float32)
    # A Gaussian high-pass of white noise keeps only part of its variance: measure that on the
    # sample itself and scale it out, so the grain matches what the ring measured.
    kept = highpass(white).reshape(-1, 3).std(axis=0).astype(np.float64) + 1e-12
    root = np.linalg.cholesky(covariance + np.eye(3) * 1e-12)
    return ((white / kept.astype(np.float32)).reshape(-1, 3) @ root.T.astype(np.float32)).reshape(h, w, 3)


def add_grain(filled: np.ndarray, original: np.ndarray, mask: np.ndarray, amount: float,
              rng: np.random.Generator) -> np.ndarray:
    """``filled`` with ``amount`` (0..1) of matched grain added inside ``mask``."""
    if amount <= 0 or not mask.any():
        return filled
    cov = ring_covariance(original, mask)
    if cov is None:
        return filled
    noise = synthesize(mask.shape, cov, rng)
    out = filled.copy()
    out[mask] = np.clip(filled[mask] + np.float32(amount) * noise[mask], 0.0, 1.0)
    return out
