"""Learned fill (`--fill learned`): the shipped fill network's correction of Telea's inpainting.

The network (upres/models/fill_net.py) reads the Telea-filled image and the hole mask and returns
the image corrected inside the mask; outside it the output is its input by construction. It runs on
ONNX Runtime over the tiles of a region that touch the mask, each padded by the probed receptive
field, at origins that are multiples of the probed alignment (the network has two stride-2
layers), so the tiled result equals the whole-image result. No torch here: this is the run-time path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from upres.core.model import ModelRef
from upres.runtime.backends import select
from upres.runtime.backends.base import Backend
from upres.runtime.blend import apply_tiled
from upres.runtime.catalog import builtin_path, resolve
from upres.runtime.stages import run_hwc

MODEL_NAME = "fill"
# Core edge per tile: ~60 MB of activations at full resolution (24 + 24 channels, fp32).
FILL_TILE = 256


def available() -> bool:
    """Whether the fill network ships with this installation."""
    return builtin_path(MODEL_NAME).is_file()


@dataclass
class LearnedFillStage:
    backend: Backend
    receptive_field: int
    alignment: int
    tile: int = FILL_TILE

    @property
    def halo(self) -> int:
        return self.receptive_field

    def __call__(self, filled: np.ndarray, holes: np.ndarray) -> tuple[np.ndarray, int]:
        """(``filled`` (H, W, 3) float32 [0, 1], corrected inside ``holes`` (H, W) bool; tiles run).

        The crop's origin must sit at a multiple of ``alignment`` in the image for the result to
        equal the whole image's (regions are planned that way)."""
        x = np.concatenate([filled, holes[..., None].astype(np.float32)], axis=2)
        out, ran = apply_tiled(x, lambda crop: run_hwc(self.backend, crop), self.tile, self.halo,
                               self.alignment, where=holes, base=filled)
        # The net adds nothing outside the holes, but clip and keep the known pixels exact anyway.
        np.clip(out, 0.0, 1.0, out=out)
        out[~holes] = filled[~holes]
        return out, ran


def build_learned_fill(backend: str = "ort-cpu", threads: int = 0,
                       model: Path | None = None) -> tuple[LearnedFillStage, ModelRef]:
    """The learned fill stage on the shipped fill network (or ``model``), and its reference."""
    ref = resolve(model if model is not None else builtin_path(MODEL_NAME))
    if ref.info.kind != "fill" or ref.info.input_channels != 4 or ref.info.output_channels != 3:
        raise ValueError(f"{ref.path}: a {ref.info.kind} model ({ref.info.input_channels} -> "
                         f"{ref.info.output_channels} channels), not a fill network (kind 'fill', 4 -> 3)")
    stage = LearnedFillStage(select.create(backend, ref.path, threads), ref.info.receptive_field,
                             ref.info.alignment)
    return stage, ref
