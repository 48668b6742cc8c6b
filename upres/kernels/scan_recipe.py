"""The scan degradation recipe: how training (and the degraded evaluation sets) make LR from HR.

In the spirit of Real-ESRGAN's second-order model and BSRGAN's shuffled one, tuned to archival
scans: optical blur before the downscale (lens, enlarger defocus, halation), a random resize
kernel and an intermediate size, then sensor noise, film grain and JPEG in a random order, the
whole second stage applied once or twice. Strengths stay within what a scanned print or film
shows: the models must remove that damage, not learn to hallucinate through worse.
A sample is a pure function of (HR patch, scale, generator): seeded and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upres.kernels import degrade as ops
from upres.kernels.degrade import KernelKind, ResizeKind


@dataclass(frozen=True)
class ScanRecipe:
    """Probabilities and ranges of the scan degradations (levels are 0..255, sizes LR pixels)."""

    clean_prob: float = 0.1  # LR is the evaluation's plain bicubic: clean input stays in view
    blur_prob: float = 0.6  # optical blur at HR before the downscale
    blur_sigma: tuple[float, float] = (0.2, 1.2)  # in LR pixels (times the scale at HR)
    resize_up_prob: float = 0.3  # an intermediate size above LR, resized again at the end
    noise_prob: float = 0.7
    noise_sigma: tuple[float, float] = (1.0, 12.0)
    poisson_prob: float = 0.3  # of the noisy samples, shot noise instead of Gaussian
    gray_noise_prob: float = 0.4
    grain_prob: float = 0.3
    grain_amount: tuple[float, float] = (2.0, 9.0)
    grain_size: tuple[float, float] = (0.4, 1.3)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (30, 95)
    second_order_prob: float = 0.4  # the noise / grain / JPEG stage once more, at half strength


_KERNELS = list(KernelKind)
_DOWN_KINDS = [ResizeKind.PIL_BICUBIC, ResizeKind.PIL_BICUBIC, ResizeKind.AREA,
               ResizeKind.BILINEAR, ResizeKind.BICUBIC]


def degrade_patch(hr: np.ndarray, scale: int, rng: np.random.Generator,
                  recipe: ScanRecipe = ScanRecipe()) -> np.ndarray:
    """The LR (uint8, HR size / `scale`) of a uint8 RGB HR patch whose sides divide by `scale`."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR patch {w}x{h} does not divide by the scale {scale}")
    lw, lh = w // scale, h // scale
    if rng.random() < recipe.clean_prob:
        return ops.to_u8(ops.resize(hr.astype(np.float32), lw, lh, ResizeKind.PIL_BICUBIC))
    img = hr.astype(np.float32)
    if rng.random() < recipe.blur_prob:
        kind = _KERNELS[int(rng.integers(len(_KERNELS)))]
        sigma = float(rng.uniform(*recipe.blur_sigma)) * scale
        img = ops.convolve(img, ops.blur_kernel(kind, sigma, rng))
    up = rng.random() < recipe.resize_up_prob
    factor = float(rng.uniform(1.1, 1.6)) if up else 1.0
    mid_w, mid_h = max(1, round(lw * factor)), max(1, round(lh * factor))
    img = ops.resize(img, mid_w, mid_h, _DOWN_KINDS[int(rng.integers(len(_DOWN_KINDS)))])
    img = _noise_stage(img, rng, recipe, 1.0)
    if rng.random() < recipe.second_order_prob:
        img = _noise_stage(img, rng, recipe, 0.5)
    if up:
        img = ops.resize(img, lw, lh, ResizeKind.AREA)
    return ops.to_u8(img)


def _noise_stage(img: np.ndarray, rng: np.random.Generator, recipe: ScanRecipe,
                 strength: float) -> np.ndarray:
    steps = ["noise", "grain", "jpeg"]
    rng.shuffle(steps)
    for step in steps:
        if step == "noise" and rng.random() < recipe.noise_prob:
            sigma = float(rng.uniform(*recipe.noise_sigma)) * strength
            gray = bool(rng.random() < recipe.gray_noise_prob)
            if rng.random() < recipe.poisson_prob:
                img = ops.poisson_noise(img, sigma * 1.6, gray, rng)
            else:
                img = ops.gaussian_noise(img, sigma, gray, rng)
        elif step == "grain" and rng.random() < recipe.grain_prob:
            amount = float(rng.uniform(*recipe.grain_amount)) * strength
            img = ops.film_grain(img, amount, float(rng.uniform(*recipe.grain_size)), rng)
        elif step == "jpeg" and rng.random() < recipe.jpeg_prob:
            low, high = recipe.jpeg_quality
            quality = int(rng.integers(low, high + 1))
            if strength < 1.0:
                quality = min(100, quality + int((100 - quality) * (1.0 - strength)))
            img = ops.jpeg(img, quality)
    return img
