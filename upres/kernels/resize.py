"""The one bicubic downscale used everywhere LR images are made (training and evaluation).

Pillow's BICUBIC resize antialiases when downscaling (the kernel is widened by the scale factor)
with the Keys a=-0.5 cubic, which is MATLAB `imresize`'s default; output is rounded to uint8 as
MATLAB does for uint8 input. Quality numbers in upres are reported with this resize.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop an HWC/HW image so both sides are multiples of `scale` (top-left anchored)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _resize_u8(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if img.dtype != np.uint8:
        raise TypeError(f"resize expects uint8, got {img.dtype}")
    if img.ndim == 2:
        return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).resize(
            size, Image.Resampling.BICUBIC))
        for c in range(img.shape[2])
    ]
    return np.stack(channels, axis=-1)


def bicubic_down(img: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale of a uint8 image by an integer factor (mod-crop first)."""
    hr = mod_crop(img, scale)
    h, w = hr.shape[:2]
    return _resize_u8(hr, (w // scale, h // scale))


def bicubic_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic upscale of a uint8 image by an integer factor (the 'bicubic' baseline)."""
    h, w = img.shape[:2]
    return _resize_u8(img, (w * scale, h * scale))
