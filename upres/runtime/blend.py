"""Put tile outputs together: crop the valid centre (exact) or feather overlaps (bounded error)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, overload

import numpy as np

from upres.core.choices import FeatherShape
from upres.runtime.tiling import Rect, Tile, TileGrid, plan_grid

if TYPE_CHECKING:
    from upres.runtime.tail import TailPlanes


def _ramp(length: int, lead: int, trail: int, shape: FeatherShape) -> np.ndarray:
    """1-D weights: rising over `lead` samples, falling over `trail`, 1 in between.

    Rising and falling ramps of neighbouring tiles over the same band sum to exactly 1.
    """
    w = np.ones(length, np.float32)
    for n, sl, rev in ((lead, slice(0, lead), False), (trail, slice(length - trail, length), True)):
        if n <= 0:
            continue
        t = (np.arange(n, dtype=np.float32) + 0.5) / n
        if shape == FeatherShape.COSINE:
            t = 0.5 - 0.5 * np.cos(np.pi * t)
        w[sl] = t[::-1] if rev else t
    return w


def feather_weights(tile: Tile, grid: TileGrid, scale: int,
                    shape: FeatherShape = FeatherShape.LINEAR) -> np.ndarray:
    """(H, W) weights over the tile's padded output.

    Each seam gets a cross-fade band `halo` wide centred on the core boundary, so every blended
    pixel still has at least halo/2 input pixels of context in both tiles. Image borders get no
    ramp; outside the band a tile weighs 1 in its core and 0 in its halo.
    """
    p, c = tile.padded, tile.core
    # Cores narrower than the halo (a small --tile) narrow every band of the grid alike: the two
    # tiles of a seam must fade over the same band, and a core's two bands must not overlap.
    band_y = min(grid.halo, min(t.core.y1 - t.core.y0 for t in grid.tiles))
    band_x = min(grid.halo, min(t.core.x1 - t.core.x0 for t in grid.tiles))
    wy = _axis_weights(p.y0, p.y1, c.y0, c.y1, grid.height, scale, shape, band_y)
    wx = _axis_weights(p.x0, p.x1, c.x0, c.x1, grid.width, scale, shape, band_x)
    return np.outer(wy, wx)


def _axis_weights(p0: int, p1: int, c0: int, c1: int, size: int, scale: int,
                  shape: FeatherShape, band: int) -> np.ndarray:
    n = (p1 - p0) * scale
    w = np.zeros(n, np.float32)
    # band width: at most the halo present on that side (in output px); none at the image's edge
    band_lead = min(c0 - p0, band) * scale if c0 > 0 else 0
    band_trail = min(p1 - c1, band) * scale if c1 < size else 0
    start = (c0 - p0) * scale - band_lead // 2
    stop = (c1 - p0) * scale + band_trail // 2
    w[start:stop] = 1.0
    if band_lead:
        w[start : start + band_lead] = _ramp(band_lead, band_lead, 0, shape)
    if band_trail:
        w[stop - band_trail : stop] = _ramp(band_trail, 0, band_trail, shape)
    return w


@overload
def core_of(tile: Tile, out: np.ndarray, scale: int) -> np.ndarray: ...
@overload
def core_of(tile: Tile, out: TailPlanes, scale: int) -> TailPlanes: ...
def core_of(tile: Tile, out: np.ndarray | TailPlanes, scale: int) -> np.ndarray | TailPlanes:
    """The part of a tile's output (H, W, C) that belongs to its core (a TailPlanes' core is
    one still: its core lies on the s-pixel grid)."""
    r = tile.core.relative_to(tile.padded).scaled(scale)
    part: np.ndarray | TailPlanes = out[r.y0 : r.y1, r.x0 : r.x1]
    return part


def apply_tiled(image: np.ndarray, run: Callable[[np.ndarray], np.ndarray], tile: int, halo: int,
                align: int = 1, where: np.ndarray | None = None,
                base: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``run`` (a scale-1 model: an (h, w, C) crop -> (h, w, C')) over ``image`` (H, W, C) tile by
    tile, each tile's core cut from the result of its padded crop: with ``halo`` >= the receptive
    field and ``align`` the model's alignment, the result equals ``run(image)``. ``tile`` 0 is one
    tile. With ``where`` (H, W bool), only tiles whose core touches it run and the rest of the
    result is ``base``'s. Returns (result, tiles run)."""
    if where is not None and base is None:
        raise ValueError("apply_tiled: `where` needs `base` for the tiles it skips")
    h, w = image.shape[:2]
    grid = plan_grid(h, w, max(tile, align) if tile else 0, halo, align)
    out = None if base is None else base.copy()
    ran = 0
    for t in grid.tiles:
        c, p = t.core, t.padded
        if where is not None and not where[c.y0 : c.y1, c.x0 : c.x1].any():
            continue
        result = core_of(t, run(image[p.y0 : p.y1, p.x0 : p.x1]), 1)
        if out is None:
            out = np.empty((h, w, result.shape[2]), result.dtype)
        out[c.y0 : c.y1, c.x0 : c.x1] = result
        ran += 1
    assert out is not None  # a grid has at least one tile
    return out, ran


class FeatherAccumulator:
    """fp32 weighted sum of overlapping tile outputs over a band of output rows."""

    def __init__(self, region: Rect, channels: int) -> None:
        self.region = region
        self.acc = np.zeros((region.height, region.width, channels), np.float32)
        self.weight = np.zeros((region.height, region.width, 1), np.float32)

    def add(self, out_rect: Rect, out: np.ndarray, weights: np.ndarray) -> None:
        """Add the part of `out` (covering `out_rect`, output coords) that falls in the region."""
        y0, y1 = max(out_rect.y0, self.region.y0), min(out_rect.y1, self.region.y1)
        x0, x1 = max(out_rect.x0, self.region.x0), min(out_rect.x1, self.region.x1)
        if y0 >= y1 or x0 >= x1:
            return
        src = (slice(y0 - out_rect.y0, y1 - out_rect.y0), slice(x0 - out_rect.x0, x1 - out_rect.x0))
        dst = (slice(y0 - self.region.y0, y1 - self.region.y0),
               slice(x0 - self.region.x0, x1 - self.region.x0))
        w = weights[src][..., None]
        self.acc[dst] += out[src] * w
        self.weight[dst] += w

    def result(self) -> np.ndarray:
        return self.acc / np.maximum(self.weight, np.float32(1e-12))
