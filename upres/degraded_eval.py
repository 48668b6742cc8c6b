"""Evaluation on degraded inputs: the test sets' LR images with scan damage, made reproducibly.

Each degradation is applied to the protocol's bicubic LR (or, where it blurs, to the HR image
before the downscale: ``blur-noise-jpeg``, and ``scan``, the whole training recipe) with a
generator seeded by the image's name and the degradation: the same set on every machine, and
never used to train or tune weights. Measures beside Y-PSNR and SSIM:

- flat noise: high-frequency energy (luma minus its sigma-1.5 Gaussian blur, squared) in the
  flattest quarter of the picture (by the HR's own local gradient), where any energy is damage;
  reported by the benchmark relative to the same method on clean input ("flat x clean").
- blockiness of the output (kernels/noise_estimate.py), with the output's block period (8 x scale).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from upres.evaluate import eval_pairs, to_u8
from upres.kernels import degrade as ops
from upres.kernels.degrade import KernelKind, ResizeKind
from upres.kernels.noise_estimate import blockiness, luma
from upres.kernels.resize import bicubic_up
from upres.kernels.scan_recipe import ScanRecipe, degrade_patch
from upres.metrics import psnr, ssim
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.denoise import choose
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

SEED = 20261201


def _noise(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ops.gaussian_noise(lr, 6.0, False, rng)


def _jpeg(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ops.jpeg(lr, 60)


def _grain(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return ops.film_grain(lr, 6.0, 0.8, rng)


def _blur_noise_jpeg(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    # The blur is optical, so it comes before the downscale (sigma 1 HR pixel).
    blurred = ops.convolve(hr.astype(np.float32), ops.blur_kernel(KernelKind.ISOTROPIC, 1.0, rng))
    lr = ops.resize(blurred, hr.shape[1] // scale, hr.shape[0] // scale, ResizeKind.PIL_BICUBIC)
    return ops.jpeg(ops.gaussian_noise(lr, 4.0, False, rng), 75)


def _scan(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    return degrade_patch(hr, scale, rng, ScanRecipe(clean_prob=0.0)).astype(np.float32)


# name -> what is done to the bicubic LR (float32 0..255), or made from the HR and the scale.
_ON_LR: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "noise": _noise, "jpeg": _jpeg, "grain": _grain}
_FROM_HR: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "blur-noise-jpeg": _blur_noise_jpeg, "scan": _scan}
DEGRADATIONS = ("clean", "noise", "jpeg", "blur-noise-jpeg", "grain", "scan")
DESCRIPTIONS = {
    "clean": "the protocol's bicubic LR",
    "noise": "Gaussian noise sigma 6 (levels, per channel) on the LR",
    "jpeg": "JPEG quality 60, 4:2:0",
    "blur-noise-jpeg": "Gaussian blur sigma 1.0 on the HR, bicubic down, noise sigma 4, JPEG 75",
    "grain": "film grain: correlated (0.8 px), luminance-dependent, about 6 levels in the mid-tones",
    "scan": "the training recipe (blur before the downscale, random kernels, noise, grain, JPEG, "
            "second order), never clean",
}


def degraded_lr(name: str, hr: np.ndarray, lr: np.ndarray, scale: int, degradation: str) -> np.ndarray:
    """The LR (uint8) of test image ``name`` under ``degradation``: the same on every call."""
    if degradation not in DEGRADATIONS:
        raise ValueError(f"--degrade must be one of {', '.join(DEGRADATIONS)}, got {degradation!r}")
    if degradation == "clean":
        return lr
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode()), DEGRADATIONS.index(degradation)])
    if degradation in _FROM_HR:
        return ops.to_u8(_FROM_HR[degradation](hr, scale, rng))
    return ops.to_u8(_ON_LR[degradation](lr.astype(np.float32), rng))


def flat_mask(hr: np.ndarray) -> np.ndarray:
    """The flattest quarter of the picture, by the HR's local gradient (boolean HxW)."""
    gray = luma(hr)
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    activity = cv2.GaussianBlur(np.hypot(gx, gy), (0, 0), 3.0)
    return activity <= np.percentile(activity, 25)


def flat_noise(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared high-frequency luma inside ``mask``."""
    gray = luma(image)
    high = gray - cv2.GaussianBlur(gray, (0, 0), 1.5)
    return float(np.mean(high[mask] ** 2))


@dataclass(frozen=True)
class DegradedScore:
    name: str
    psnr: float
    ssim: float
    flat_noise: float
    blockiness: float
    strength: float | None = None  # the denoise strength used, where one was chosen


def output_blockiness(image: np.ndarray, scale: int) -> float:
    return blockiness(image, period=8 * scale)


Upscale = Callable[[np.ndarray], tuple[np.ndarray, float | None]]  # LR uint8 -> (output, strength)


def evaluate_degraded(folder: Path, scale: int, degradation: str, upscale: Upscale,
                      progress: Callable[[str], None] | None = None) -> list[DegradedScore]:
    """Scores of ``upscale`` on ``folder``'s test images under ``degradation``."""
    scores = []
    for name, hr, lr in eval_pairs(folder, scale):
        out, strength = upscale(degraded_lr(name, hr, lr, scale, degradation))
        scores.append(score(Path(name).stem, out, hr, scale, strength))
        if progress:
            progress(name)
    return scores


def score(name: str, out: np.ndarray, hr: np.ndarray, scale: int,
          strength: float | None = None) -> DegradedScore:
    return DegradedScore(name, psnr(out, hr, scale), ssim(out, hr, scale),
                         flat_noise(out, flat_mask(hr)), output_blockiness(out, scale), strength)


def bicubic(scale: int) -> Upscale:
    return lambda lr: (bicubic_up(lr, scale), None)


def summary(scores: list[DegradedScore]) -> dict[str, float]:
    strengths = [s.strength for s in scores if s.strength is not None]
    return {
        "psnr": float(np.mean([s.psnr for s in scores])),
        "ssim": float(np.mean([s.ssim for s in scores])),
        "flat_noise": float(np.mean([s.flat_noise for s in scores])),
        "blockiness": float(np.mean([s.blockiness for s in scores])),
        **({"strength": float(np.mean(strengths))} if strengths else {}),
        "images": len(scores),
    }


def chain_upscale(setup: ChainSetup) -> Upscale:
    """Whole-image upscales by ``setup``, at the denoise strength it picks for each LR."""

    def run(lr: np.ndarray) -> tuple[np.ndarray, float | None]:
        choice = choose(setup.denoise, lr)
        x = lr.astype(np.float32) / 255.0
        h, w = x.shape[:2]
        out = upscale_array(x, plan_grid(h, w, 0, 0), setup.chain_for(choice.strength))
        return to_u8(out), choice.strength

    return run
