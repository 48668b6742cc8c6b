"""One image through the cleaning stages, region by region of its (final) mask:

fill (inpainting) -> texture (refine network) -> grain -> blend, written back inside the mask only.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from upres.cleaning import blend as blending
from upres.cleaning import fill as filling
from upres.cleaning.fill import DEFAULT_FILL, check_method, fill
from upres.cleaning.grain import RING, add_grain
from upres.cleaning.learned_fill import LearnedFillStage
from upres.cleaning.regions import Region, RegionPlan, plan_regions
from upres.cleaning.texture import TextureStage
from upres.core.choices import CleanBlend
from upres.kernels.inpaint import INPAINT_RADIUS
from upres.kernels.masks import feather
from upres.runtime.tiling import Rect


@dataclass(frozen=True)
class CleanSettings:
    """The stage parameters; recorded in every sidecar."""

    feather: int = 2
    fill: str = DEFAULT_FILL
    radius: int = INPAINT_RADIUS
    texture: float = 0.5
    grain: float = 0.0
    blend: CleanBlend = CleanBlend.ALPHA  # a name given by an untyped caller is parsed below

    def __post_init__(self) -> None:
        check_method(self.fill)
        object.__setattr__(self, "blend", CleanBlend.parse(self.blend))
        if self.feather < 0:
            raise ValueError(f"--feather must be >= 0 pixels, got {self.feather}")
        if self.radius < 1:
            raise ValueError(f"the inpainting radius must be >= 1 pixel, got {self.radius}")
        for name in ("texture", "grain"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must be within 0..1, got {getattr(self, name)}")

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CleanStats:
    regions: int = 0
    region_pixels: int = 0  # pixels inside region boxes: the work, against the image's pixels
    mask_pixels: int = 0
    texture_tiles: int = 0
    fill_tiles: int = 0  # learned fill tiles run

    def record(self) -> dict[str, Any]:
        return asdict(self)


def seed_of(input_sha256: str) -> int:
    """The grain's seed: the input's own hash, so the same file gets the same grain."""
    return int(hashlib.sha256(bytes.fromhex(input_sha256)).hexdigest()[:16], 16)


class Cleaner:
    def __init__(self, settings: CleanSettings, texture: TextureStage | None = None,
                 learned_fill: LearnedFillStage | None = None, workers: int = 0) -> None:
        """``workers``: regions cleaned at once (0 = one per CPU). Regions are independent and
        write disjoint pixels, so the result does not depend on it."""
        if settings.texture > 0 and texture is None:
            raise ValueError("texture > 0 needs the refine network (a TextureStage)")
        if settings.fill == "learned" and learned_fill is None:
            raise ValueError("--fill learned needs the fill network (a LearnedFillStage)")
        self.settings = settings
        self.texture = texture
        self.learned_fill = learned_fill if settings.fill == "learned" else None
        self.workers = workers if workers > 0 else os.cpu_count() or 1

    @property
    def context(self) -> int:
        """Margin (pixels) each region needs around its mask pixels: what the inpainting reads,
        the fill and texture networks' reach, the feather and the grain ring (the largest)."""
        s = self.settings
        reach = [filling.reach(s.fill, s.radius), s.feather + 1, RING + 1]
        if self.texture is not None and s.texture > 0:
            reach.append(self.texture.halo)
        if self.learned_fill is not None:
            reach.append(self.learned_fill.halo)
        return max(reach)

    def plan(self, mask: np.ndarray) -> RegionPlan:
        align = filling.alignment(self.settings.fill)
        if self.learned_fill is not None:
            align = math.lcm(align, self.learned_fill.alignment)
        return plan_regions(mask, self.context, align)

    def clean(self, image: np.ndarray, mask: np.ndarray, seed: int = 0,
              on_plan: Callable[[RegionPlan], None] | None = None,
              on_region: Callable[[], None] | None = None,
              within: Rect | None = None) -> tuple[np.ndarray, CleanStats]:
        """``image`` (H, W, 3) float32 [0, 1] with the ``mask`` (H, W) bool pixels replaced; every
        pixel outside the mask is the input's, bit for bit. ``on_plan`` gets the region plan before
        any work, ``on_region`` is called as each region is written (progress). ``within``: clean
        only the regions whose box meets this rectangle (a preview of part of the image); regions
        are independent, so the pixels inside it come out as the whole image's clean."""
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        plan = self.plan(mask)
        if on_plan is not None:
            on_plan(plan)
        regions = plan.regions if within is None else tuple(
            r for r in plan.regions if r.box.y0 < within.y1 and within.y0 < r.box.y1
            and r.box.x0 < within.x1 and within.x0 < r.box.x1)
        stats = CleanStats(len(regions), sum(r.box.height * r.box.width for r in regions),
                           int(mask.sum()))
        out = image.copy()

        def work(region: Region) -> tuple[Region, np.ndarray, int, int]:
            b = region.box
            return region, *self._region(image[b.y0 : b.y1, b.x0 : b.x1], mask[b.y0 : b.y1, b.x0 : b.x1],
                                         np.random.default_rng([seed, b.y0, b.x0]))

        # OpenCV's inpainting and ONNX Runtime release the GIL: threads clean regions in parallel.
        with ThreadPoolExecutor(max(1, min(self.workers, len(regions)))) as pool:
            for region, patch, fill_tiles, texture_tiles in pool.map(work, regions):
                b = region.box
                own = plan.owned(region, mask)
                out[b.y0 : b.y1, b.x0 : b.x1][own] = patch[own]
                stats.fill_tiles += fill_tiles
                stats.texture_tiles += texture_tiles
                if on_region is not None:
                    on_region()
        return out, stats

    def _region(self, crop: np.ndarray, holes: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """(the blended patch, learned fill tiles run, texture tiles run)."""
        s = self.settings
        patch = fill(crop, holes, s.fill, s.radius)
        fill_tiles = texture_tiles = 0
        if self.learned_fill is not None:
            patch, fill_tiles = self.learned_fill(patch, holes)
        if self.texture is not None and s.texture > 0:
            patch, texture_tiles = self.texture(patch, holes, s.texture)
        patch = add_grain(patch, crop, holes, s.grain, rng)
        blended = blending.blend(crop, patch, holes, feather(holes, s.feather), s.blend)
        return blended, fill_tiles, texture_tiles
