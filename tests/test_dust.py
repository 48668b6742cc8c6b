"""The dust rule: a small compact blob standing out from a flat surround, that the network also
calls damage; nothing on texture, nothing the network doubts."""

from __future__ import annotations

import numpy as np

from upres.cleaning import dust


def _speck(surface: np.ndarray) -> np.ndarray:
    img = surface.copy()
    img[40:44, 50:53] = 20  # a dark 4 x 3 px speck
    return np.repeat(img[..., None], 3, axis=2).astype(np.uint8)


def test_a_speck_on_a_flat_surface_is_found_with_its_rim() -> None:
    sure = np.full((96, 120), 6.0, np.float32)
    flat = np.full((96, 120), 170, np.int16)
    found = dust.find(_speck(flat), sure)
    assert len(found) == 1
    y0, y1, x0, x1 = found[0].box
    mask = np.zeros(flat.shape, bool)
    mask[y0:y1, x0:x1] = found[0].pixels
    assert mask[40:44, 50:53].all() and mask.sum() == 12


def test_the_same_speck_on_texture_or_doubted_by_the_network_is_left() -> None:
    rng = np.random.default_rng(0)
    texture = np.clip(170 + rng.normal(0, 25, (96, 120)), 0, 255).astype(np.int16)
    assert dust.find(_speck(texture), np.full((96, 120), 6.0, np.float32)) == []
    flat = np.full((96, 120), 170, np.int16)
    assert dust.find(_speck(flat), np.full((96, 120), -2.0, np.float32)) == []
    # A speck among others (a starry sky, a flowerbed) is not alone.
    crowd = _speck(flat)
    for y, x in ((36, 46), (36, 56), (47, 46), (47, 56)):
        crowd[y : y + 2, x : x + 2] = 20
    assert not any(f.box[0] <= 41 < f.box[1] and f.box[2] <= 51 < f.box[3]
                   for f in dust.find(crowd, np.full((96, 120), 6.0, np.float32)))
