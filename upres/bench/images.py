"""Bench inputs built from the bundled sample, so `upres bench` needs no download.

Timed images are mirrored tilings of the sample (a real photo, 240x160) cut at different offsets
and orientations: photo-like content at any size, deterministic, and all the same size so the
per-image latencies of one contender form one distribution (p50/p95 mean something).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.png"


def sample() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


def mirror_tile(base: np.ndarray, height: int, width: int, y0: int = 0, x0: int = 0) -> np.ndarray:
    """A height x width window at (y0, x0) of `base` repeated with mirroring (no hard edges)."""
    row = np.concatenate([base, base[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps_y = (y0 + height) // block.shape[0] + 1
    reps_x = (x0 + width) // block.shape[1] + 1
    big = np.tile(block, (reps_y, reps_x, 1))
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def timing_images(size: int, count: int) -> list[np.ndarray]:
    """`count` different size x size images (offsets and quarter turns of the mirrored sample)."""
    base = sample()
    images = []
    for i in range(count):
        img = mirror_tile(base, size, size, (i * 53) % base.shape[0], (i * 97) % base.shape[1])
        images.append(np.ascontiguousarray(np.rot90(img, i % 4)))
    return images


def seam_image(size: int) -> np.ndarray:
    """One size x size image for the tiled-vs-whole comparison."""
    return mirror_tile(sample(), size, size, 17, 29)
