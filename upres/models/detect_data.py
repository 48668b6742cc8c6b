"""Training batches for the detectors: random photo crops with synthetic overlays (overlay-detect) or
thin-structure damage (thin-detect) drawn on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from upres.models.data import list_images, load_rgb_u8
from upres.models.overlay_synth import FontRef, SynthConfig, default_fonts, render_overlays
from upres.models.thin_synth import DamageConfig, render_damage


class OverlaySampler:
    """Deterministic batches: batch k depends only on (seed, k), the photos and the font list."""

    def __init__(self, folders: list[Path], patch: int, seed: int = 0, config: SynthConfig | None = None,
                 fonts: tuple[FontRef, ...] | None = None) -> None:
        self.patch = patch
        self.seed = seed
        self.config = config or SynthConfig()
        self.fonts = fonts if fonts is not None else default_fonts()
        self.photos = [img for folder in folders for img in map(load_rgb_u8, list_images(folder))
                       if min(img.shape[:2]) >= patch]
        if not self.photos:
            raise ValueError(f"no image under {folders} is at least {patch} px on a side")
        self.weights = np.array([p.shape[0] * p.shape[1] for p in self.photos], np.float64)
        self.weights /= self.weights.sum()

    def random_crop(self, rng: np.random.Generator) -> np.ndarray:
        """A P x P x 3 uint8 crop of a photo picked by area, in one of its 8 flips/rotations."""
        p = self.patch
        photo = self.photos[int(rng.choice(len(self.photos), p=self.weights))]
        y = int(rng.integers(0, photo.shape[0] - p + 1))
        x = int(rng.integers(0, photo.shape[1] - p + 1))
        crop = photo[y : y + p, x : x + p]
        k = int(rng.integers(0, 8))
        crop = np.rot90(crop, k % 4)
        return np.ascontiguousarray(crop[:, ::-1] if k >= 4 else crop)

    def batch(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(images float32 N x 3 x P x P in [0, 1], masks float32 N x 1 x P x P in {0, 1})."""
        rng = np.random.default_rng([self.seed, index])
        images, masks = [], []
        for _ in range(size):
            # Overlays are drawn upright after the photo's flip/rotation: text is never mirrored.
            image, mask = render_overlays(self.random_crop(rng), rng, self.config, self.fonts)
            images.append(image.transpose(2, 0, 1).astype(np.float32) / 255.0)
            masks.append(mask[None].astype(np.float32))
        return np.stack(images), np.stack(masks)


HOLDOUT_EVERY = 10  # every 10th photo of a folder (by sorted name) is kept out for threshold choice


def split_photos(folder: Path, holdout: bool) -> list[Path]:
    """The training photos of `folder` (holdout False) or the held-out tenth (holdout True)."""
    files = list_images(folder)
    return [p for i, p in enumerate(files) if (i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1) == holdout]


class DamageSampler:
    """Thin-structure damage (upres.models.thin_synth) over crops of the non-held-out photos, each
    crop taken at a random scale of 0.5-1x first, so texture and twigs come at many sizes."""

    def __init__(self, folders: list[Path], patch: int, seed: int = 0,
                 config: DamageConfig | None = None) -> None:
        self.patch = patch
        self.seed = seed
        self.damage = config or DamageConfig()
        self.photos = [img for folder in folders for img in map(load_rgb_u8, split_photos(folder, False))
                       if min(img.shape[:2]) >= patch]
        if not self.photos:
            raise ValueError(f"no training image under {folders} is at least {patch} px on a side")
        self.weights = np.array([p.shape[0] * p.shape[1] for p in self.photos], np.float64)
        self.weights /= self.weights.sum()

    def batch(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        images, masks = [], []
        p = self.patch
        for _ in range(size):
            photo = self.photos[int(rng.choice(len(self.photos), p=self.weights))]
            side = min(int(p / rng.uniform(0.5, 1.0)), *photo.shape[:2])
            y = int(rng.integers(0, photo.shape[0] - side + 1))
            x = int(rng.integers(0, photo.shape[1] - side + 1))
            crop = photo[y : y + side, x : x + side]
            if side != p:
                crop = cv2.resize(crop, (p, p), interpolation=cv2.INTER_AREA)
            k = int(rng.integers(0, 8))
            crop = np.rot90(crop, k % 4)
            crop = np.ascontiguousarray(crop[:, ::-1] if k >= 4 else crop)
            image, mask = render_damage(crop, rng, self.damage)
            images.append(image.transpose(2, 0, 1).astype(np.float32) / 255.0)
            masks.append(mask[None].astype(np.float32))
        return np.stack(images), np.stack(masks)
