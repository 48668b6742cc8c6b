"""Training patches: HR crops and their LR made by the evaluation's bicubic, plus augmentations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from upres.kernels.resize import bicubic_down, mod_crop

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}


def list_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def load_rgb_u8(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@dataclass(frozen=True)
class Degradations:
    """Optional archival degradations applied to LR patches (off for the shipped fidelity model)."""

    noise_sigma: float = 0.0  # max Gaussian noise sigma, in 0..255 levels
    blur_sigma: float = 0.0  # max Gaussian blur sigma, in LR pixels
    jpeg_quality_min: int = 0  # 0 = no JPEG; else quality drawn from [min, 95]

    @property
    def active(self) -> bool:
        return self.noise_sigma > 0 or self.blur_sigma > 0 or self.jpeg_quality_min > 0

    def apply(self, lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = lr
        if self.blur_sigma > 0:
            sigma = rng.uniform(0.0, self.blur_sigma)
            if sigma > 0.2:
                out = cv2.GaussianBlur(out, (0, 0), sigma)
        if self.noise_sigma > 0:
            sigma = rng.uniform(0.0, self.noise_sigma)
            noisy = out.astype(np.float32) + rng.normal(0.0, sigma, out.shape).astype(np.float32)
            out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        if self.jpeg_quality_min > 0:
            q = int(rng.integers(self.jpeg_quality_min, 96))
            ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        return np.ascontiguousarray(out)


class PatchSampler:
    """Deterministic random LR/HR patch batches: batch k depends only on (seed, k)."""

    def __init__(
        self,
        folders: list[Path],
        scale: int,
        lr_patch: int,
        seed: int = 0,
        degradations: Degradations | None = None,
    ) -> None:
        self.scale = scale
        self.lr_patch = lr_patch
        self.seed = seed
        self.degradations = degradations or Degradations()
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for path in [f for folder in folders for f in list_images(folder)]:
            hr = mod_crop(load_rgb_u8(path), scale)
            if min(hr.shape[:2]) < lr_patch * scale:
                continue
            self.pairs.append((hr, bicubic_down(hr, scale)))
        if not self.pairs:
            raise ValueError(f"no image under {folders} is at least {lr_patch * scale} px on a side")
        self.weights = np.array([p[1].shape[0] * p[1].shape[1] for p in self.pairs], np.float64)
        self.weights /= self.weights.sum()

    def batch(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(lr, hr) float32 NCHW in [0, 1] for batch number `index`."""
        rng = np.random.default_rng([self.seed, index])
        s, p = self.scale, self.lr_patch
        lrs, hrs = [], []
        for _ in range(size):
            hr, lr = self.pairs[int(rng.choice(len(self.pairs), p=self.weights))]
            y = int(rng.integers(0, lr.shape[0] - p + 1))
            x = int(rng.integers(0, lr.shape[1] - p + 1))
            lr_p = lr[y : y + p, x : x + p]
            hr_p = hr[y * s : (y + p) * s, x * s : (x + p) * s]
            k = int(rng.integers(0, 8))
            lr_p, hr_p = _dihedral(lr_p, k), _dihedral(hr_p, k)
            if self.degradations.active:
                lr_p = self.degradations.apply(lr_p, rng)
            lrs.append(lr_p)
            hrs.append(hr_p)
        return _to_nchw(lrs), _to_nchw(hrs)


def _dihedral(img: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(img, k % 4)
    return out[:, ::-1] if k >= 4 else out


def _to_nchw(images: list[np.ndarray]) -> np.ndarray:
    arr = np.stack(images).astype(np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
