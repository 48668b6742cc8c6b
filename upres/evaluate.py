"""The standard SR evaluation protocol over a folder of HR test images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from upres.kernels.resize import bicubic_down, bicubic_up, mod_crop
from upres.metrics import psnr, ssim
from upres.runtime.stages import TileFn
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

EVAL_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def eval_pairs(folder: Path, scale: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, LR) per test image: HR mod-cropped to the scale, LR by the protocol's bicubic."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EVAL_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no test images in {folder}")
    for path in files:
        hr = mod_crop(_load(path), scale)
        yield path.name, hr, bicubic_down(hr, scale)


def evaluate_folder(
    folder: Path, scale: int, chain: TileFn, progress: Callable[[str], None] | None = None
) -> list[ImageScore]:
    scores = []
    for name, hr, lr in eval_pairs(folder, scale):
        x = lr.astype(np.float32) / 255.0
        h, w = x.shape[:2]
        out = to_u8(upscale_array(x, plan_grid(h, w, 0, 0), chain))
        bic = bicubic_up(lr, scale)
        scores.append(ImageScore(Path(name).stem, psnr(out, hr, scale), ssim(out, hr, scale),
                                 psnr(bic, hr, scale), ssim(bic, hr, scale)))
        if progress:
            progress(name)
    return scores


def summary(scores: list[ImageScore]) -> dict[str, float]:
    return {
        "psnr": float(np.mean([s.psnr for s in scores])),
        "ssim": float(np.mean([s.ssim for s in scores])),
        "bicubic_psnr": float(np.mean([s.bicubic_psnr for s in scores])),
        "bicubic_ssim": float(np.mean([s.bicubic_ssim for s in scores])),
        "images": len(scores),
    }
