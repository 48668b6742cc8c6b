"""Training batches for the detectors: random photo crops with synthetic overlays (overlay-detect) or
thin-structure damage (thin-detect) drawn on them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
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


THRESHOLD_SCALES = (1.0, 0.7, 0.5)  # the sizes a detector's rule is chosen (and mined) at


def photos_at_scales(datasets: Path, holdout: bool,
                     scales: tuple[float, ...] = THRESHOLD_SCALES) -> Iterator[tuple[str, float, np.ndarray]]:
    """("folder/name", scale, RGB uint8 photo resized by scale) for T91 and BSD200's held-out or
    training photos (split_photos), in sorted order, each at every scale."""
    for folder in ("T91", "BSD200"):
        for path in split_photos(datasets / folder, holdout):
            photo = load_rgb_u8(path)
            for s in scales:
                yield f"{folder}/{path.name}", s, at_scale(photo, s)


def at_scale(photo: np.ndarray, scale: float) -> np.ndarray:
    """``photo`` resized by ``scale`` (area averaging), or itself at 1."""
    if scale == 1.0:
        return photo
    return cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class HardNegative:
    """A structure the detector took for damage on a clean training photo: `photo` as
    "folder/name", the photo resized by `scale`, and the detection's box (y0, y1, x0, x1) there."""

    photo: str
    scale: float
    box: tuple[int, int, int, int]


def load_hard_negatives(path: Path) -> list[HardNegative]:
    """The hard negatives of a JSON file written by benchmarks/thin_mine.py."""
    rows = json.loads(path.read_text())["hard_negatives"]
    return [HardNegative(r["photo"], float(r["scale"]), tuple(r["box"])) for r in rows]


class DamageSampler:
    """Thin-structure damage (upres.models.thin_synth) over crops of the non-held-out photos, each
    crop taken at a random scale of 0.5-1x first, so texture and twigs come at many sizes.

    With `hard` negatives, a `hard_share` of the crops is taken around one of them instead, at its
    scale: the structure stays unmasked (damage may still be drawn elsewhere on the crop), so the
    network sees what it got wrong far more often than a random crop would show it."""

    def __init__(self, folders: list[Path], patch: int, seed: int = 0,
                 config: DamageConfig | None = None, hard: list[HardNegative] | None = None,
                 hard_share: float = 0.25) -> None:
        self.patch = patch
        self.seed = seed
        self.damage = config or DamageConfig()
        named = [(f"{folder.name}/{path.name}", load_rgb_u8(path))
                 for folder in folders for path in split_photos(folder, False)]
        self.photos = [img for _, img in named if min(img.shape[:2]) >= patch]
        if not self.photos:
            raise ValueError(f"no training image under {folders} is at least {patch} px on a side")
        self.weights = np.array([p.shape[0] * p.shape[1] for p in self.photos], np.float64)
        self.weights /= self.weights.sum()
        by_name = dict(named)
        self.hard: list[tuple[np.ndarray, tuple[int, int, int, int]]] = []
        scaled: dict[tuple[str, float], np.ndarray] = {}
        for h in hard or []:
            if h.photo not in by_name:
                raise ValueError(f"hard negative {h.photo}: not a training photo under {folders}")
            key = (h.photo, h.scale)
            if key not in scaled:
                scaled[key] = at_scale(by_name[h.photo], h.scale)
            if min(scaled[key].shape[:2]) >= patch:
                self.hard.append((scaled[key], h.box))
        self.hard_share = hard_share

    def _hard_crop(self, rng: np.random.Generator) -> np.ndarray:
        """A P x P crop of a hard negative's photo holding a random point of its box."""
        p = self.patch
        photo, (y0, y1, x0, x1) = self.hard[int(rng.integers(0, len(self.hard)))]
        cy, cx = int(rng.integers(y0, y1)), int(rng.integers(x0, x1))
        y = int(np.clip(cy - int(rng.integers(0, p)), 0, photo.shape[0] - p))
        x = int(np.clip(cx - int(rng.integers(0, p)), 0, photo.shape[1] - p))
        return photo[y : y + p, x : x + p]

    def _random_crop(self, rng: np.random.Generator) -> np.ndarray:
        p = self.patch
        photo = self.photos[int(rng.choice(len(self.photos), p=self.weights))]
        side = min(int(p / rng.uniform(0.5, 1.0)), *photo.shape[:2])
        y = int(rng.integers(0, photo.shape[0] - side + 1))
        x = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = photo[y : y + side, x : x + side]
        return crop if side == p else cv2.resize(crop, (p, p), interpolation=cv2.INTER_AREA)

    def batch(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        images, masks = [], []
        for _ in range(size):
            # No draw for the share without hard negatives: batches stay those trained before.
            hard = bool(self.hard) and rng.random() < self.hard_share
            crop = self._hard_crop(rng) if hard else self._random_crop(rng)
            k = int(rng.integers(0, 8))
            crop = np.rot90(crop, k % 4)
            crop = np.ascontiguousarray(crop[:, ::-1] if k >= 4 else crop)
            image, mask = render_damage(crop, rng, self.damage)
            images.append(image.transpose(2, 0, 1).astype(np.float32) / 255.0)
            masks.append(mask[None].astype(np.float32))
        return np.stack(images), np.stack(masks)
