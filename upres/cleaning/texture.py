"""High-frequency reconstruction: the refine network's edge-gated texture residual over the fill.

The refine network is the one `upres run --mode hybrid` uses (input: an image plus its Sobel edge
map, in the space the image lives in; output: a texture residual), so the stage is
:func:`upres.runtime.stages.refine_texture` run over the tiles of a region that touch the mask.
Tiles are padded by the network's receptive field, so tiling does not change the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from upres.core.model import ModelRef
from upres.runtime.backends import select
from upres.runtime.backends.base import Backend
from upres.runtime.blend import apply_tiled
from upres.runtime.catalog import DEFAULT_REFINE, resolve
from upres.runtime.stages import refine_halo, refine_texture

# Tile edge for the refine network: ~20 MB of activations per tile (24 channels, fp32).
TEXTURE_TILE = 256


@dataclass
class TextureStage:
    refine: Backend
    refine_rf: int
    tile: int = TEXTURE_TILE
    align: int = 1  # the refine network's pixel blocks: tile origins on its multiples

    @property
    def halo(self) -> int:
        return refine_halo(self.refine_rf)

    def __call__(self, image: np.ndarray, mask: np.ndarray, strength: float) -> tuple[np.ndarray, int]:
        """(``image`` with ``strength`` (--texture, 0..1) of texture on every tile whose core
        touches ``mask``, tiles run). Pixels of other tiles are returned as they were; the blend
        keeps the result inside the mask."""
        if strength <= 0:
            return image.copy(), 0
        return apply_tiled(image, lambda crop: refine_texture(self.refine, crop, strength),
                           self.tile, self.halo, self.align, where=mask, base=image)


def build_texture(backend: str = "ort-cpu", threads: int = 0) -> tuple[TextureStage, ModelRef]:
    """The texture stage on the shipped refine network, and the model's reference (for sidecars)."""
    refine = resolve(DEFAULT_REFINE, "fp32")
    stage = TextureStage(select.create(backend, refine.path, threads), refine.info.receptive_field,
                         align=refine.info.alignment)
    return stage, refine
