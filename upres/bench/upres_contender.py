"""upres's own run path as a contender: build_chain + the `--tile` plan + upscale_array.

What is timed is what `upres run` does between decode and encode (uint8 -> float -> tiles ->
uint8); file I/O is left out for every contender alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from upres.bench.contender import SCALE, BaseContender
from upres.core.choices import Blend, Mode
from upres.evaluate import to_u8
from upres.runtime.tiling import TileGrid, plan_grid

if TYPE_CHECKING:
    from upres.batch import BatchRunner
    from upres.runtime.chain_factory import ChainSetup
    from upres.runtime.stages import TileFn as TileChainLike


class UpresContender(BaseContender):
    group = "upres"

    def __init__(self, threads: int, memory: int | None = None, mode: Mode | str = Mode.FAITHFUL,
                 precision: str = "fp32", tile: str | int = "auto", texture: float = 0.5,
                 model: str | None = None, denoise: str = "auto") -> None:
        self.threads = threads
        self.denoise = denoise
        self.memory = memory
        self.mode = Mode.parse(mode)
        self.precision = precision
        self.tile = tile  # "auto" (the planner's choice), 0 (whole image) or a core size
        self.texture = texture
        self.model = model or f"coarse-x{SCALE}"
        label = "" if self.mode is Mode.FAITHFUL else f" {mode} t{texture:g}"  # faithful: the default row
        where = {"auto": "auto", 0: "whole"}.get(tile, f"tile {tile}")
        self.name = f"upres{label} {precision} {where}"
        self.setup: ChainSetup | None = None
        self.runner: BatchRunner | None = None  # set for tile "auto": plans as `upres run` does
        self._grids: dict[tuple[int, int], tuple[TileGrid, Blend]] = {}

    def available(self) -> str | None:
        from upres.runtime.catalog import builtin_path

        if self.precision == "fp32":
            return None
        path = builtin_path(self.model, self.precision)
        if not path.exists():
            return f"{path.name} not found in upres/weights (no {self.precision} model built yet)"
        return None

    def load(self) -> None:
        from upres.batch import BatchRunner, RunOptions
        from upres.runtime.chain_factory import build_chain
        from upres.runtime.denoise import DenoiseSetting
        from upres.runtime.memory import default_memory_target

        self.setup = build_chain(self.mode, SCALE, self.model, self.texture, "ort-cpu",
                                 self.precision, self.threads,
                                 denoise=DenoiseSetting.parse(self.denoise))
        if self.tile == "auto":
            memory = self.memory or default_memory_target()
            self.runner = BatchRunner(self.setup, RunOptions(memory=memory, threads=self.threads))
            # The planner measures each model's memory cost once (a subprocess, then cached):
            # do it now, not inside the first timed pass.
            self.runner.stage_models()

    def _grid(self, height: int, width: int) -> tuple[TileGrid, Blend]:
        key = (height, width)
        if key not in self._grids:
            assert self.setup is not None, "load() first"
            if self.runner is not None:
                plan = self.runner.plan(height, width)
                self._grids[key] = (plan.grid, plan.blend)
            else:
                tile = int(self.tile)
                halo = self.setup.chain.halo if tile else 0
                self._grids[key] = (plan_grid(height, width, tile, halo), Blend.CROP)
        return self._grids[key]

    def upscale(self, img: np.ndarray) -> np.ndarray:
        from upres.runtime.upscale import upscale_array

        assert self.setup is not None, "load() first"
        grid, blend = self._grid(*img.shape[:2])
        x = img.astype(np.float32) / 255.0
        return to_u8(upscale_array(x, grid, self._chain(img), blend))

    def _chain(self, img: np.ndarray) -> TileChainLike:
        from upres.runtime.denoise import choose

        assert self.setup is not None, "load() first"
        return self.setup.chain_for(choose(self.setup.denoise, img).strength)

    def upscale_whole(self, img: np.ndarray) -> np.ndarray | None:
        from upres.runtime.upscale import upscale_array

        assert self.setup is not None, "load() first"
        if self.tile == 0:
            return None  # already the whole-image result: no seams by construction
        x = img.astype(np.float32) / 255.0
        h, w = img.shape[:2]
        return to_u8(upscale_array(x, plan_grid(h, w, 0, 0), self._chain(img)))

    def tiles(self, height: int, width: int) -> int:
        return 0 if self.tile == 0 else len(self._grid(height, width)[0].tiles)

    def flops_per_pixel(self) -> float | None:
        if self.setup is None:
            return None
        # The ONNX metadata counts FLOPs per *output* pixel for each stage; hybrid runs both.
        total = sum(ref.info.flops_per_pixel for ref in self.setup.models.values())
        return total or None

    def describe(self) -> str:
        if self.setup is None:
            return ""
        halo = self.setup.chain.halo
        return f"ort-cpu, {self.threads} threads, halo {halo}, models " + ", ".join(
            ref.path.name for ref in self.setup.models.values())
