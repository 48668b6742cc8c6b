"""High-frequency reconstruction: the refine network's edge-gated texture residual over the fill.

The refine network is the one `upres run --mode hybrid` uses (input: an image plus its Sobel edge
map, in the space the image lives in; output: a texture residual), so the stage is
:func:`upres.runtime.stages.refine_texture` run over the tiles of a region that touch the mask.
Tiles are padded by the network's receptive field, so tiling does not change the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upres.runtime.backends import select
from upres.runtime.backends.base import Backend
from upres.runtime.blend import core_of
from upres.runtime.catalog import DEFAULT_REFINE, ModelRef, resolve
from upres.runtime.stages import refine_halo, refine_texture
from upres.runtime.tiling import plan_grid

# Tile edge for the refine network: ~20 MB of activations per tile (24 channels, fp32).
TEXTURE_TILE = 256


@dataclass
class TextureStage:
    refine: Backend
    refine_rf: int
    tile: int = TEXTURE_TILE

    @property
    def halo(self) -> int:
        return refine_halo(self.refine_rf)

    def __call__(self, image: np.ndarray, mask: np.ndarray, strength: float) -> tuple[np.ndarray, int]:
        """(``image`` with ``strength`` (--texture, 0..1) of texture on every tile whose core
        touches ``mask``, tiles run). Pixels of other tiles are returned as they were; the blend
        keeps the result inside the mask."""
        out = image.copy()
        if strength <= 0:
            return out, 0
        h, w = mask.shape
        grid = plan_grid(h, w, self.tile, self.halo)
        ran = 0
        for tile in grid.tiles:
            c, p = tile.core, tile.padded
            if not mask[c.y0 : c.y1, c.x0 : c.x1].any():
                continue
            textured = refine_texture(self.refine, image[p.y0 : p.y1, p.x0 : p.x1], strength)
            out[c.y0 : c.y1, c.x0 : c.x1] = core_of(tile, textured, 1)
            ran += 1
        return out, ran


def build_texture(backend: str = "ort-cpu", threads: int = 0) -> tuple[TextureStage, ModelRef]:
    """The texture stage on the shipped refine network, and the model's reference (for sidecars)."""
    refine = resolve(DEFAULT_REFINE, "fp32")
    return TextureStage(select.create(backend, refine.path, threads), refine.info.receptive_field), refine
