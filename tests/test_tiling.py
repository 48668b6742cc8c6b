"""Tiled output equals the whole-image output (exact halo), for every mode and awkward sizes."""

from collections.abc import Iterable, Iterator

import numpy as np
import pytest

from upres.runtime.chain_factory import build_chain
from upres.runtime.stages import TileFn
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

LEVEL = 1.0 / 255.0


@pytest.fixture(scope="module")
def chains():
    return {
        mode: build_chain(mode, 4, texture=0.8, backend="ort-cpu", threads=1).chain
        for mode in ("faithful", "hybrid", "deterministic")
    }


def _whole(image, chain):
    return upscale_array(image, plan_grid(*image.shape[:2], 0, 0), chain)


@pytest.mark.parametrize("mode", ["faithful", "hybrid", "deterministic"])
@pytest.mark.parametrize(("h", "w", "tile"), [(75, 97, 32), (75, 97, 41), (40, 50, 64),
                                               (1, 1, 16), (3, 90, 16), (90, 2, 24)])
def test_tiled_equals_whole(chains, photo, mode, h, w, tile) -> None:
    chain = chains[mode]
    image = photo[:h, :w].astype(np.float32) / 255.0
    whole = _whole(image, chain)
    tiled = upscale_array(image, plan_grid(h, w, tile, chain.halo), chain)
    assert tiled.shape == (h * 4, w * 4, 3)
    assert np.abs(tiled - whole).max() <= 1e-5  # float rounding only; far below 1 level
    assert np.abs(np.rint(tiled * 255) - np.rint(whole * 255)).max() <= 1


@pytest.mark.parametrize("mode", ["faithful", "hybrid", "deterministic"])
def test_chain_halo_is_exact_and_minimal(chains, mode) -> None:
    """A change `halo` input px from a tile's core reaches its output; one px further does not.

    Bit-exact on same-shape runs, so even the faint far edge of the field is seen.
    """
    chain = chains[mode]
    rng = np.random.default_rng(5)
    image = rng.random((80, 80, 3), dtype=np.float32) * 0.8 + 0.1
    grid = plan_grid(80, 80, 0, 0)
    base = upscale_array(image, grid, chain)
    y0, x0, size, s = 40, 30, 8, chain.scale
    core = (slice(y0 * s, (y0 + size) * s), slice(x0 * s, (x0 + size) * s))
    for dist, reaches in ((chain.halo, True), (chain.halo + 1, False)):
        poked = image.copy()
        poked[y0 + 3, x0 - dist] = 1.0 - poked[y0 + 3, x0 - dist]
        poked[y0 - dist, x0 + 4] = 1.0 - poked[y0 - dist, x0 + 4]
        changed = not np.array_equal(upscale_array(poked, grid, chain)[core], base[core])
        assert changed == reaches, f"{mode}: pixel {dist} px from the core, changed={changed}"


def test_halo_one_short_is_different(chains) -> None:
    chain = chains["faithful"]
    rng = np.random.default_rng(3)
    image = rng.random((64, 64, 3), dtype=np.float32)
    whole = _whole(image, chain)
    short = upscale_array(image, plan_grid(64, 64, 16, chain.halo - 1), chain)
    assert np.abs(short - whole).max() > 0


@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize("halo", [4, 7])
def test_feather_blend_within_its_bound(chains, photo, shape, halo) -> None:
    """The stated bound: feathering with halo h errs no more than cropping with halo h/2."""
    chain = chains["faithful"]
    image = photo[:96, :96].astype(np.float32) / 255.0
    whole = _whole(image, chain)
    feather = upscale_array(image, plan_grid(96, 96, 32, halo), chain, "feather", shape)
    half = upscale_array(image, plan_grid(96, 96, 32, halo // 2), chain, "crop")
    assert np.abs(feather - whole).max() <= np.abs(half - whole).max() + 1e-6
    assert np.abs(feather - whole).mean() < 0.1 * LEVEL


@pytest.mark.parametrize(("h", "w", "tile", "halo"), [(50, 70, 16, 5), (48, 64, 8, 15), (37, 45, 3, 8),
                                                   (40, 33, 1, 4)])
def test_feather_weights_sum_to_one(h: int, w: int, tile: int, halo: int) -> None:
    """Also where cores are narrower than the halo (a small --tile): the bands narrow alike."""
    from upres.runtime.blend import feather_weights

    grid = plan_grid(h, w, tile, halo)
    total = np.zeros((2 * h, 2 * w), np.float32)
    for tile in grid.tiles:
        w = feather_weights(tile, grid, 2, "cosine")
        p = tile.padded.scaled(2)
        total[p.y0 : p.y1, p.x0 : p.x1] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


class _LookaheadChain:
    """A chain with `map_tiles` that reads three tiles ahead before answering, as the GPU
    pipeline does with three streams: the tiler must keep outputs matched to their tiles."""

    def __init__(self, inner: TileFn) -> None:
        self.inner, self.scale, self.halo = inner, inner.scale, inner.halo
        self.calls = 0

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        raise AssertionError("the tiler should use map_tiles")

    def map_tiles(self, tiles: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        ahead: list[np.ndarray] = []
        for tile in tiles:
            ahead.append(tile)
            if len(ahead) == 3:
                self.calls += 1
                yield self.inner(ahead.pop(0))
        for tile in ahead:
            self.calls += 1
            yield self.inner(tile)


@pytest.mark.parametrize("blend", ["crop", "feather"])
def test_pipelined_chain_matches_tile_by_tile(blend: str) -> None:
    from upres.runtime.stages import DeterministicChain
    from upres.runtime.upscale import upscale_array

    rng = np.random.default_rng(5)
    image = rng.random((45, 61, 4), dtype=np.float32)  # with alpha
    chain = DeterministicChain(2)
    grid = plan_grid(45, 61, 16, chain.halo)
    piped = _LookaheadChain(chain)
    expect = upscale_array(image, grid, chain, blend)
    got = upscale_array(image, grid, piped, blend)
    assert piped.calls == len(grid.tiles)
    np.testing.assert_array_equal(got, expect)


def test_texture_stage_tiled_equals_whole_on_odd_sides(photo) -> None:
    """The refine network runs on 2x2 pixel blocks: odd sides are extended and tile origins
    aligned, so tiles of any size give the whole-image result."""
    from dataclasses import replace

    from upres.cleaning.texture import build_texture

    stage = build_texture("ort-cpu", threads=1)[0]
    assert stage.align == 2
    image = photo[:75, :97].astype(np.float32) / 255.0
    mask = np.ones(image.shape[:2], bool)
    whole, _ = replace(stage, tile=0)(image, mask, 1.0)
    assert not np.array_equal(whole, image)  # the texture did something
    for tile in (16, 33):
        tiled, runs = replace(stage, tile=tile)(image, mask, 1.0)
        assert runs > 1
        assert np.abs(tiled - whole).max() <= 1e-5
