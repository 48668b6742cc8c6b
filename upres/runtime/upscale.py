"""Run a tile chain over a grid and hand back the output one strip (tile row) at a time.

Strips come out top to bottom, full output width, so a writer can stream them to disk and the
whole output never has to sit in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from upres.core.choices import Blend, FeatherShape
from upres.runtime.blend import FeatherAccumulator, core_of, feather_weights
from upres.runtime.stages import TileFn, resize_alpha
from upres.runtime.tail import TailPlanes
from upres.runtime.tiling import Rect, Tile, TileGrid

# Reads an input rectangle as (h, w, 3 or 4) float32 in [0, 1]; the 4th channel is alpha.
RegionReader = Callable[[Rect], np.ndarray]


@dataclass(frozen=True)
class Strip:
    row: int
    y0: int  # first output row
    # (h, W*s, C) float32; may be a view into a tile's output, or (asked for with `deferred`)
    # the tile's output before its network's last steps, for the quantiser to finish.
    pixels: np.ndarray | TailPlanes


def _with_alpha(chain: TileFn, tile_in: np.ndarray,
                out: np.ndarray | TailPlanes) -> np.ndarray | TailPlanes:
    if tile_in.shape[2] == 4:
        both = np.empty((*out.shape[:2], 4), np.float32)
        np.clip(np.asarray(out), 0.0, 1.0, out=both[..., :3])
        both[..., 3] = resize_alpha(tile_in[..., 3], chain.scale)
        return both
    return out


def _tile_outputs(read: RegionReader, tiles: Sequence[Tile], chain: TileFn,
                  deferred: bool = False) -> Iterator[np.ndarray | TailPlanes]:
    """Each tile's output, in order. The chain gets the whole sequence (TileChain.map_tiles), so
    the GPU pipeline can keep several tiles in flight (across rows too); CPU chains run one at a
    time. ``deferred``: outputs may come before their network's last steps (TailPlanes)."""
    inputs: deque[np.ndarray] = deque()

    def colour() -> Iterator[np.ndarray]:
        for tile in tiles:
            inputs.append(read(tile.padded))
            yield inputs[-1][..., :3]

    outputs = chain.map_tiles_deferred(colour()) if deferred else chain.map_tiles(colour())
    for out in outputs:
        yield _with_alpha(chain, inputs.popleft(), out)


def _row_band(grid: TileGrid, row: int, scale: int) -> Rect:
    first = grid.tiles[row * grid.cols].core
    return Rect(first.y0 * scale, first.y1 * scale, 0, grid.width * scale)


def iter_strips(
    read: RegionReader,
    grid: TileGrid,
    chain: TileFn,
    blend: Blend = Blend.CROP,
    feather_shape: FeatherShape = FeatherShape.LINEAR,
    on_tile: Callable[[Tile], None] | None = None,
    deferred: bool = False,
) -> Iterator[Strip]:
    """The output strips, top to bottom. ``deferred``: the caller quantises the strips with
    ``upres.batch.output`` (which finishes TailPlanes), so a one-tile-wide grid's strips may be
    handed over before the network's last steps; otherwise every strip is float pixels."""
    s = chain.scale
    outputs = _tile_outputs(read, grid.tiles, chain,
                            deferred and blend == Blend.CROP and grid.cols == 1)
    if blend == Blend.CROP:
        for row in range(grid.rows):
            band = _row_band(grid, row, s)
            if grid.cols == 1:
                # One tile spans the width: its core is the strip (a view, not a copy; left
                # unclipped for the quantiser, which clips as it converts).
                tile = grid.tiles[row]
                strip_view = core_of(tile, next(outputs), s)
                if on_tile:
                    on_tile(tile)
                yield Strip(row, band.y0, strip_view)
                continue
            strip: np.ndarray | None = None
            for tile in grid.tiles[row * grid.cols : (row + 1) * grid.cols]:
                out = core_of(tile, np.asarray(next(outputs)), s)
                if strip is None:
                    strip = np.empty((band.height, band.width, out.shape[2]), np.float32)
                x0 = tile.core.x0 * s
                np.clip(out, 0.0, 1.0, out=strip[:, x0 : x0 + out.shape[1]])
                if on_tile:
                    on_tile(tile)
            assert strip is not None
            yield Strip(row, band.y0, strip)
        return
    if blend != Blend.FEATHER:
        raise ValueError(f"blend must be 'crop' or 'feather', got {blend!r}")
    # Tile row r contributes to strips r-1, r and r+1 (its halo reaches the neighbours' cores);
    # strip r-1 is complete once row r is in, so at most three strips are alive at a time.
    live: dict[int, FeatherAccumulator] = {}
    for row in range(grid.rows):
        for tile in grid.tiles[row * grid.cols : (row + 1) * grid.cols]:
            out = np.clip(np.asarray(next(outputs)), 0.0, 1.0)
            weights = feather_weights(tile, grid, s, feather_shape)
            for r in (row - 1, row, row + 1):
                if not 0 <= r < grid.rows:
                    continue
                if r not in live:
                    live[r] = FeatherAccumulator(_row_band(grid, r, s), out.shape[2])
                live[r].add(tile.padded.scaled(s), out, weights)
            if on_tile:
                on_tile(tile)
        if row - 1 in live:
            acc = live.pop(row - 1)
            yield Strip(row - 1, acc.region.y0, acc.result())
    last = live.pop(grid.rows - 1)
    yield Strip(grid.rows - 1, last.region.y0, last.result())


def upscale_array(
    image: np.ndarray, grid: TileGrid, chain: TileFn, blend: Blend = Blend.CROP,
    feather_shape: FeatherShape = FeatherShape.LINEAR,
) -> np.ndarray:
    """Whole output in memory: (H*s, W*s, C) float32 in [0, 1]."""
    def read(r: Rect) -> np.ndarray:
        return image[r.y0 : r.y1, r.x0 : r.x1]

    strips = [np.asarray(st.pixels) for st in iter_strips(read, grid, chain, blend, feather_shape)]
    whole = np.concatenate(strips, axis=0)
    return np.clip(whole, 0.0, 1.0, out=whole)
