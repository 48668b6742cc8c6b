"""Planning for the batch: the memory models of the chain's stages, the tile plan of an image,
and whether its input is decoded whole or read a band of rows at a time."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from upres.batch.results import RunOptions
from upres.core.version import __version__
from upres.imageio import DecodedImage, ImageMeta, TiffRows, open_tiff_rows, probe_image, read_image
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.memory import MemoryModel, current_rss, measure_memory_model, steady_baseline
from upres.runtime.planner import Plan, PlanError, plan_job


class BatchPlanner:
    """Plans for one chain and run options; ``baseline`` is the process's RSS before any image."""

    def __init__(self, setup: ChainSetup, opts: RunOptions) -> None:
        self.setup = setup
        self.opts = opts
        self._memory_models: list[tuple[MemoryModel, int]] | None = None
        # Measured once, before any image is decoded, so the planner does not count an image twice;
        # steady from run to run, so a command plans (and writes) the same every time.
        self.baseline = steady_baseline(self._baseline_key(), current_rss())

    def _baseline_key(self) -> str:
        s = self.setup
        parts = [__version__, sys.version.split()[0], s.backend, s.precision, s.mode_name,
                 str(self.opts.threads), *sorted(f"{k}={m.sha256}" for k, m in s.recorded_models.items())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]

    def stage_models(self) -> list[tuple[MemoryModel, int]]:
        if self._memory_models is None:
            s = self.setup.scale
            own = self.setup.chain.host_memory_model()
            if own is not None:
                self._memory_models = own
            else:
                models = []
                for role, ref in self.setup.models.items():
                    mm = measure_memory_model(ref.path, ref.sha256, "ort-cpu",
                                              self.setup.precision, threads=self.opts.threads or 1)
                    models.append((mm, 1 if role == "coarse" else s * s))
                self._memory_models = models
        return self._memory_models

    def _tile(self) -> int | None:
        """--tile, or for a GPU pipeline its planned core (its buffers take no larger tile)."""
        device = self.setup.device
        if device is None:
            return self.opts.tile
        core = device.core
        # The device buffers take core + 2 x the chain's halo; a wider --halo eats into the core.
        core -= 2 * max(0, (self.opts.halo or 0) - self.setup.chain.halo)
        if self.opts.tile is None:
            return core
        if self.opts.tile == 0 or self.opts.tile > core:
            raise PlanError(f"--tile {self.opts.tile}: the device memory plan takes tiles of at most "
                            f"{core} px (+ halo); use --tile {core} or less, or raise --memory")
        return self.opts.tile

    def plan(self, height: int, width: int, bit_depth: int = 8, channels: int = 3,
             streamed_input: bool = False) -> Plan:
        return plan_job(
            height, width, scale=self.setup.scale, required_halo=self.setup.chain.halo,
            # 8 and 16 bits for files; 32 for the float32 arrays of the Python API.
            channels_out=channels, bytes_per_sample_out=max(1, bit_depth // 8),
            memory_target=self.opts.memory, stage_models=self.stage_models(),
            tile=self._tile(), halo=self.opts.halo, blend=self.opts.blend,
            baseline=self.baseline, streamed_input=streamed_input,
            align=max((m.info.alignment for m in self.setup.models.values()), default=1),
        )

    def plan_meta(self, meta: ImageMeta, streamed_input: bool = False) -> Plan:
        return self.plan(meta.height, meta.width, meta.bit_depth, 4 if meta.has_alpha else 3,
                         streamed_input)

    def plan_for(self, loaded: Any) -> Plan:
        """The plan of what `_load` returned (its `meta`; read by rows when it is a TiffRows)."""
        return self.plan_meta(loaded.meta, isinstance(loaded, TiffRows))

    def _plan_or_none(self, meta: ImageMeta, streamed_input: bool = False) -> Plan | None:
        try:
            return self.plan_meta(meta, streamed_input)
        except PlanError:
            return None

    def _whole_fits(self, meta: ImageMeta) -> bool:
        return self._plan_or_none(meta) is not None

    def _rows_plan(self, rows: TiffRows) -> Plan | None:
        """The plan for reading by rows, only where decoding whole does not fit and reading by
        rows does (for a small image the bands can cost more than the image)."""
        if self._whole_fits(rows.meta):
            return None
        return self._plan_or_none(rows.meta, streamed_input=True)

    def open_planned(self, path: Path) -> tuple[DecodedImage | TiffRows, Plan]:
        """The image and its plan: decoded whole, or, where that would not fit the memory target
        and the file is a TIFF whose rows read on their own, open for reading a band of rows at a
        time. Raises PlanError when neither fits."""
        rows = open_tiff_rows(path, self.opts.max_pixels)
        if rows is not None:
            plan = self._rows_plan(rows)
            if plan is not None:
                return rows, plan
            rows.close()
        image = read_image(path, self.opts.max_pixels)
        return image, self.plan_meta(image.meta)

    def plan_file(self, path: Path) -> tuple[ImageMeta, Plan]:
        """What `upres run` would do with this file, from its header alone."""
        rows = open_tiff_rows(path, self.opts.max_pixels)
        if rows is not None:
            with rows:
                plan = self._rows_plan(rows)
                if plan is not None:
                    return rows.meta, plan
        meta = probe_image(path, self.opts.max_pixels)
        return meta, self.plan_meta(meta)

