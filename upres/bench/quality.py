"""Quality and seam numbers for any contender, through its uint8 -> uint8 interface.

PSNR follows upres's evaluation protocol (upres.evaluate): HR mod-cropped to the scale, LR made
with upres's MATLAB-style antialiased bicubic, Y channel (BT.601), `scale` pixels shaved, mean
over the images of a set. Peers get exactly the same LR inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from upres.evaluate import eval_pairs
from upres.metrics import psnr

Upscale = Callable[[np.ndarray], np.ndarray]


def seam_error(tiled: np.ndarray, whole: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference in 0..255 levels between a tiled and a whole-image result."""
    if tiled.shape != whole.shape:
        raise ValueError(f"seam_error: shapes differ: {tiled.shape} vs {whole.shape}")
    diff = np.abs(tiled.astype(np.int16) - whole.astype(np.int16))
    return float(diff.max()), float(diff.mean())


def set_psnr(upscale: Upscale, folder: Path, scale: int) -> float:
    """Mean Y-PSNR of `upscale` over the HR images of a test-set folder."""
    scores = [psnr(upscale(lr), hr, scale) for _, hr, lr in eval_pairs(folder, scale)]
    return float(np.mean(scores))


def quality(upscale: Upscale, datasets: Path | None, sets: tuple[str, ...],
            scale: int) -> dict[str, float]:
    """{set name: mean Y-PSNR} for each set folder present under `datasets` (absent ones left out)."""
    if datasets is None:
        return {}
    return {name: set_psnr(upscale, datasets / name, scale) for name in sets
            if (datasets / name).is_dir()}
