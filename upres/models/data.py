"""Training patches: HR crops and their LR, by the evaluation's bicubic or the scan recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from upres.kernels.resize import bicubic_down, mod_crop
from upres.kernels.scan_recipe import ScanRecipe, degrade_patch

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}


def list_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def load_rgb_u8(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class PatchSampler:
    """Deterministic random LR/HR patch batches: batch k depends only on (seed, k)."""

    def __init__(
        self,
        folders: list[Path],
        scale: int,
        lr_patch: int,
        seed: int = 0,
        recipe: ScanRecipe | None = None,
    ) -> None:
        self.scale = scale
        self.lr_patch = lr_patch
        self.seed = seed
        self.recipe = recipe
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
            if self.recipe is not None:
                # The HR crop is degraded and downscaled by the recipe (blur comes before the
                # downscale); the plain bicubic LR above is its clean case.
                lr_p = degrade_patch(np.ascontiguousarray(hr_p), s, rng, self.recipe)
            lrs.append(lr_p)
            hrs.append(hr_p)
        return _to_nchw(lrs), _to_nchw(hrs)


def _dihedral(img: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(img, k % 4)
    return out[:, ::-1] if k >= 4 else out


def _to_nchw(images: list[np.ndarray]) -> np.ndarray:
    arr = np.stack(images).astype(np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
