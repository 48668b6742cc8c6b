"""apply_tiled: a scale-1 model run tile by tile equals the model on the whole image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from upres.runtime.blend import apply_tiled


def _blur(crop: np.ndarray) -> np.ndarray:
    # A 7x7 box reads 3 px each side; zero padding, like a conv network's.
    return cv2.boxFilter(crop, -1, (7, 7), borderType=cv2.BORDER_CONSTANT)


def test_tiled_equals_whole_and_skips_tiles_off_the_mask() -> None:
    image = np.random.default_rng(0).random((70, 93, 3), dtype=np.float32)
    whole, ran = apply_tiled(image, _blur, 0, 3)
    assert ran == 1 and np.abs(whole - _blur(image)).max() < 1e-6
    tiled, ran = apply_tiled(image, _blur, 20, 3)
    assert ran > 4 and np.abs(tiled - whole).max() < 1e-6
    short, _ = apply_tiled(image, _blur, 20, 2)  # a halo below the reach shows at the seams
    assert np.abs(short - whole).max() > 1e-3
    where = np.zeros(image.shape[:2], bool)
    where[5, 5] = True
    part, ran = apply_tiled(image, _blur, 20, 3, where=where, base=image)
    changed = (part != image).any(axis=2)
    assert ran == 1 and changed[5, 5] and changed.mean() < 0.25  # one core of the ~20 px grid
    assert np.abs(part[changed] - whole[changed]).max() < 1e-6
    with pytest.raises(ValueError, match="needs `base`"):
        apply_tiled(image, _blur, 20, 3, where=where)
