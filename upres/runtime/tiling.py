"""Tile plans: pure, frozen descriptions of which input region feeds which output region.

A tile is a core rectangle of the input; the model sees the core grown by `halo` input pixels on
every side (clipped at the image border). In crop mode only the core's output is kept; with
halo >= receptive field that equals the whole-image result.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def scaled(self, s: int) -> Rect:
        return Rect(self.y0 * s, self.y1 * s, self.x0 * s, self.x1 * s)

    def relative_to(self, outer: Rect) -> Rect:
        return Rect(self.y0 - outer.y0, self.y1 - outer.y0, self.x0 - outer.x0, self.x1 - outer.x0)


@dataclass(frozen=True)
class Tile:
    index: int
    row: int
    col: int
    core: Rect  # input pixels this tile is responsible for
    padded: Rect  # input pixels fed to the model (core + halo, clipped to the image)


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile: int  # core size (input pixels); 0 = whole image
    halo: int
    rows: int
    cols: int
    tiles: tuple[Tile, ...]

    @property
    def max_padded(self) -> tuple[int, int]:
        return (max(t.padded.height for t in self.tiles), max(t.padded.width for t in self.tiles))


def _splits(length: int, tile: int, align: int = 1) -> list[tuple[int, int]]:
    """Near-equal cores of at most `tile`, so no sliver tile wastes a model call; each core starts
    on a multiple of `align`."""
    n = max(1, math.ceil(length / tile))
    while True:
        starts = {align * round(i * length / (n * align)) for i in range(n)}
        edges = sorted({min(length, s) for s in starts} | {length})
        cores = list(itertools.pairwise(edges))
        if max(b - a for a, b in cores) <= tile or n >= length:
            return cores
        n += 1  # rounding to `align` made a core too long: one more tile


def plan_grid(height: int, width: int, tile: int, halo: int, align: int = 1) -> TileGrid:
    """Tile an height x width input with cores of at most `tile` px (0 = one tile) and `halo`.

    `align` > 1 is for models with strided layers (`ModelInfo.alignment`): they are equivariant only
    to shifts by multiples of it, so every model input must start on such a multiple. Cores start on
    multiples of `align` and the halo is rounded up to one, so padded regions start there too.
    """
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image ({width}x{height})")
    if tile < 0 or halo < 0:
        raise ValueError(f"tile and halo must be >= 0, got tile={tile}, halo={halo}")
    if align < 1 or 0 < tile < align:
        raise ValueError(f"align must be >= 1 and at most the tile size, got align={align}, tile={tile}")
    halo = align * math.ceil(halo / align)
    ys = _splits(height, tile or height, align)
    xs = _splits(width, tile or width, align)
    tiles: list[Tile] = []
    for r, (y0, y1) in enumerate(ys):
        for c, (x0, x1) in enumerate(xs):
            core = Rect(y0, y1, x0, x1)
            padded = Rect(max(0, y0 - halo), min(height, y1 + halo),
                          max(0, x0 - halo), min(width, x1 + halo))
            tiles.append(Tile(len(tiles), r, c, core, padded))
    return TileGrid(height, width, tile, halo, len(ys), len(xs), tuple(tiles))
