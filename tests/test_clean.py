"""The cleaning stages on real pixels and the real refine network (ONNX Runtime): masks, regions,
fill, texture, blend and the per-image pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from upres.cleaning.blend import alpha_blend, poisson_blend
from upres.cleaning.fill import FillUnavailable, fill
from upres.cleaning.masks import MaskError, find_mask, read_mask
from upres.cleaning.pipeline import Cleaner, CleanSettings
from upres.cleaning.regions import plan_regions
from upres.cleaning.texture import build_texture
from upres.kernels.masks import close_holes, feather, final_mask, grow, touching


@pytest.fixture(scope="module")
def texture():
    return build_texture("ort-cpu", threads=1)[0]


@pytest.fixture()
def image(photo: np.ndarray) -> np.ndarray:
    return photo.astype(np.float32) / 255.0


def _strokes(shape: tuple[int, int]) -> np.ndarray:
    """A caption-like mask: two thin bars and a ring, away from the corners."""
    m = np.zeros(shape, bool)
    m[40:44, 30:150] = True
    m[60:63, 100:200] = True
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    r = np.hypot(yy - 110, xx - 60)
    m |= (r > 10) & (r < 13)
    return m


# -- masks -------------------------------------------------------------------------------------


def test_grow_is_an_elliptical_dilation() -> None:
    m = np.zeros((21, 21), bool)
    m[10, 10] = True
    g = grow(m, 3)
    assert g.sum() > 9 and g[10, 7] and g[10, 13] and g[7, 10] and not g[7, 7]  # a disc, not a square
    assert (grow(m, 0) == m).all()


def test_close_holes_fills_small_enclosed_holes_only() -> None:
    m = np.zeros((60, 60), bool)
    m[10:20, 10:20] = True
    m[13:16, 13:16] = False  # 9-pixel hole: closed
    m[30:55, 30:55] = True
    m[33:52, 33:52] = False  # 361-pixel hole: kept
    m[:5, :5] = True  # the keep-area around it touches the border: not a hole
    closed = close_holes(m, 64)
    assert closed[13:16, 13:16].all()
    assert not closed[33:52, 33:52].any()
    assert (closed | m).sum() == closed.sum()


@pytest.mark.parametrize("px", [0, 1, 3, 6])
def test_final_mask_fed_back_with_grow_0_is_unchanged(px: int) -> None:
    rng = np.random.default_rng(px)
    raw = rng.random((80, 90)) > 0.985
    once = final_mask(raw, px)
    assert (final_mask(once, 0) == once).all()


def test_feather_is_zero_outside_and_one_deep_inside() -> None:
    m = np.zeros((40, 40), bool)
    m[10:30, 0:30] = True  # runs off the left border
    a = feather(m, 3)
    assert (a[~m] == 0).all()
    assert a[20, 15] == 1.0
    assert 0 < a[10, 15] < a[11, 15] < a[12, 15] < 1.0  # the ramp towards the top edge
    assert a[20, 0] == 1.0  # the image border is not an edge
    assert (feather(m, 0) == m).all()


def test_read_mask_nonzero_removes_and_transparent_keeps(tmp_path: Path) -> None:
    gray = np.zeros((20, 30), np.uint8)
    gray[5, 5], gray[6, 6] = 1, 255
    Image.fromarray(gray).save(tmp_path / "m.png")
    m = read_mask(tmp_path / "m.png", 20, 30)
    assert m.dtype == bool and m.sum() == 2 and m[5, 5] and m[6, 6]
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[2:4, 2:4, 3] = 255  # opaque white: remove; transparent white elsewhere: keep
    Image.fromarray(rgba, "RGBA").save(tmp_path / "layer.png")
    assert read_mask(tmp_path / "layer.png", 20, 30).sum() == 4


def test_read_mask_of_the_wrong_size_names_both_sizes(tmp_path: Path) -> None:
    Image.new("L", (10, 12)).save(tmp_path / "m.png")
    with pytest.raises(MaskError, match=r"mask is 10x12, but the image is 30x20"):
        read_mask(tmp_path / "m.png", 20, 30)


def test_find_mask_by_name(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    (masks / "sub").mkdir(parents=True)
    for name in ("a.png", "a.mask.png", "b_mask.tif", "sub/c.png", "d.png", "d.jpg"):
        (masks / name).write_bytes(b"x")
    src = tmp_path / "a.jpg"
    assert find_mask(masks, src, Path("a.png")) == masks / "a.mask.png"  # tagged name wins
    assert find_mask(masks, tmp_path / "b.png", Path("b.png")) == masks / "b_mask.tif"
    assert find_mask(masks, tmp_path / "c.png", Path("sub/c.png")) == masks / "sub" / "c.png"
    assert find_mask(masks, tmp_path / "a.png", Path("sub/a.png")) == masks / "a.mask.png"  # top level
    with pytest.raises(MaskError, match="several masks match"):
        find_mask(masks, tmp_path / "d.png", Path("d.png"))
    with pytest.raises(MaskError, match=r"no mask for e\.png"):
        find_mask(masks, tmp_path / "e.png", Path("e.png"))


# -- regions -----------------------------------------------------------------------------------


def test_regions_bound_the_work_to_the_mask() -> None:
    m = np.zeros((1000, 1200), bool)
    m[0:12, 0:30] = True  # one corner
    plan = plan_regions(m, 16)
    assert len(plan.regions) == 1
    assert plan.regions[0].box.height == 12 + 16 and plan.regions[0].box.width == 30 + 16
    assert plan.pixels < m.size / 500


def test_regions_join_close_parts_and_own_every_mask_pixel_once() -> None:
    m = np.zeros((200, 300), bool)
    m[10:15, 10:20] = True
    m[10:15, 30:40] = True  # 10 px away: shares a region with the first
    m[150:160, 250:260] = True  # far: its own region
    m[100:140, 20:24] = True
    m[100:104, 20:120] = True  # an L whose box overlaps nothing else
    plan = plan_regions(m, 8)
    assert len(plan.regions) == 3
    owned = np.zeros(m.shape, np.int32)
    for region in plan.regions:
        b = region.box
        owned[b.y0 : b.y1, b.x0 : b.x1] += plan.owned(region, m)
    assert (owned == m).all()


# -- stages ------------------------------------------------------------------------------------


def test_fill_changes_only_masked_pixels(image: np.ndarray) -> None:
    m = _strokes(image.shape[:2])
    for method in ("fsr", "telea", "ns"):
        out = fill(image, m, method)
        assert (out[~m] == image[~m]).all()
        assert np.abs(out[m] - image[m]).mean() > 0.001
    # The learned fill starts from Telea's inpainting; its network runs as a later stage.
    assert (fill(image, m, "learned") == fill(image, m, "telea")).all()
    with pytest.raises(ValueError, match="--fill must be one of"):
        fill(image, m, "median")


def test_fill_of_a_flat_area_stays_flat() -> None:
    # OpenCV's inpainting is off by ~1.5 units of whatever range it is given: at the 16-bit scale
    # fill() uses, that is far below one 8-bit level (on [0, 1] floats it would be garbage).
    flat = np.full((64, 64, 3), 0.4, np.float32)
    m = np.zeros((64, 64), bool)
    m[28:36, 10:50] = True
    for method in ("telea", "ns"):
        assert np.abs(fill(flat, m, method) - flat).max() < 0.05 / 255
    # FSR works at 8 bits, through 8-bit Lab: within one level.
    assert np.abs(fill(flat, m, "fsr") - flat).max() <= 1.0 / 255 + 1e-6


def _stripes(h: int = 96, w: int = 128, period: float = 7.0) -> np.ndarray:
    """Diagonal colour stripes: periodic texture that diffusion cannot continue across a gap."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    wave = 0.5 + 0.35 * np.sin(2 * np.pi * (xx + 0.5 * yy) / period)
    return np.stack([wave, 0.8 - 0.5 * wave, np.full_like(wave, 0.3)], axis=2).astype(np.float32)


def test_fsr_continues_texture_that_telea_smears() -> None:
    img = np.round(_stripes() * 255) / 255
    m = np.zeros(img.shape[:2], bool)
    m[20:80, 60:66] = True  # a 6 px scratch across the stripes
    err = {method: float(np.abs(fill(img, m, method) - img)[m].mean()) for method in ("fsr", "telea")}
    # Measured: FSR 0.0147, Telea 0.122, NS 0.121 (mean abs error in the scratch, [0, 1]).
    assert err["fsr"] < 0.2 * err["telea"], err


@pytest.mark.parametrize(("h", "w"), [(3, 5), (17, 9), (40, 40), (33, 70)])
def test_fsr_fills_holes_in_partial_blocks(h: int, w: int) -> None:
    # OpenCV's FSR alone leaves holes in the last, partial row and column of 16 px blocks as
    # garbage (a 17 x 9 image: every hole); fill() pads to whole blocks first.
    img = np.full((h, w, 3), 0.5, np.float32)
    img[:, : w // 2] = 0.3
    m = np.eye(h, w, dtype=bool) | np.eye(h, w, 1, dtype=bool)
    m[-2:, -3:] = True  # the bottom-right corner, where a date stamp sits
    out = fill(img, m, "fsr")
    assert (out[~m] == img[~m]).all()
    # Within the image's two levels, up to FSR's ringing at the step (measured: 4 levels).
    assert out[m].min() >= 0.3 - 12 / 255 and out[m].max() <= 0.5 + 12 / 255


def test_fsr_region_by_region_equals_the_whole_image(image: np.ndarray) -> None:
    """Regions start on FSR's 16 px block grid and keep its reach: cleaning region by region fills
    each hole as inpainting the whole image at once would."""
    m = np.zeros(image.shape[:2], bool)
    m[10:14, 20:60] = True
    m[121:150, 203:207] = True  # far enough for a second region, off the block grid (unaligned
    # regions differ from the whole image by up to 25 levels: measured)
    cleaner = Cleaner(CleanSettings(fill="fsr", texture=0.0, feather=0))
    plan = cleaner.plan(m)
    assert len(plan.regions) == 2 and all(r.box.y0 % 16 == 0 and r.box.x0 % 16 == 0 for r in plan.regions)
    out, _ = cleaner.clean(image, m)
    assert (out[m] == fill(image, m, "fsr")[m]).all()


def test_fsr_without_opencv_contrib_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.delattr(cv2, "xphoto")  # what a plain opencv-python install looks like
    with pytest.raises(FillUnavailable, match="opencv-contrib"):
        CleanSettings(fill="fsr")
    CleanSettings(fill="telea")


def test_poisson_blend_meets_the_original_at_the_border() -> None:
    rng = np.random.default_rng(0)
    original = (rng.random((64, 80, 3)) * 0.3 + 0.3).astype(np.float32)
    m = np.zeros((64, 80), bool)
    m[20:40, 0:30] = True  # also runs off the image
    out = poisson_blend(original, original + np.float32(0.1), m)  # a patch 0.1 too bright
    assert (out[~m] == original[~m]).all()
    assert np.abs(out[m] - original[m]).max() < 1 / 255  # the offset is solved away


def test_alpha_blend_keeps_outside_bits(image: np.ndarray) -> None:
    m = _strokes(image.shape[:2])
    out = alpha_blend(image, np.zeros_like(image), feather(m, 2))
    assert (out[~m] == image[~m]).all()
    assert (out[m] < image[m] + 1e-6).all()


@pytest.mark.parametrize("settings", [
    CleanSettings(),
    CleanSettings(fill="ns", blend="poisson", grain=1.0, texture=1.0, feather=0),
])
def test_clean_keeps_every_pixel_outside_the_mask(image: np.ndarray, texture, settings) -> None:
    m = final_mask(_strokes(image.shape[:2]), 2)
    out, stats = Cleaner(settings, texture).clean(image, m, seed=7)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert (out[~m] == image[~m]).all()
    assert (out[m] != image[m]).any(axis=1).mean() > 0.5
    assert stats.mask_pixels == m.sum() and stats.regions >= 1


def test_texture_changes_pixels_inside_the_mask_only(image: np.ndarray, texture) -> None:
    m = final_mask(_strokes(image.shape[:2]), 2)
    flat, _ = Cleaner(CleanSettings(texture=0.0), texture).clean(image, m)
    rich, stats = Cleaner(CleanSettings(texture=1.0), texture).clean(image, m)
    changed = (flat != rich).any(axis=2)
    assert changed.any() and not changed[~m].any()
    assert stats.texture_tiles >= 1


def test_clean_is_deterministic_and_grain_follows_the_seed(image: np.ndarray, texture) -> None:
    m = final_mask(_strokes(image.shape[:2]), 2)
    cleaner = Cleaner(CleanSettings(grain=1.0), texture)
    a, _ = cleaner.clean(image, m, seed=1)
    b, _ = cleaner.clean(image, m, seed=1)
    c, _ = cleaner.clean(image, m, seed=2)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_parallel_regions_give_the_same_bytes(image: np.ndarray, texture) -> None:
    big = np.tile(image, (2, 2, 1))
    m = np.zeros(big.shape[:2], bool)
    for y, x in [(10, 10), (10, 300), (200, 40), (250, 330)]:
        m[y : y + 5, x : x + 60] = True
    settings = CleanSettings(texture=0.5, grain=0.5)
    one, stats = Cleaner(settings, texture, workers=1).clean(big, m, seed=3)
    four, stats4 = Cleaner(settings, texture, workers=4).clean(big, m, seed=3)
    assert stats.regions == 4 and stats4 == stats
    assert one.tobytes() == four.tobytes()


def test_a_corner_mask_costs_its_corner(image: np.ndarray, texture) -> None:
    big = np.tile(image, (4, 4, 1))  # 640 x 960
    m = np.zeros(big.shape[:2], bool)
    m[2:10, 3:40] = True
    out, stats = Cleaner(CleanSettings(), texture).clean(big, m)
    assert stats.regions == 1 and stats.texture_tiles == 1
    assert stats.region_pixels < big.shape[0] * big.shape[1] / 100
    assert (out[~m] == big[~m]).all()


def test_settings_refuse_bad_values() -> None:
    for bad in ({"texture": 1.5}, {"grain": -0.1}, {"feather": -1}, {"blend": "soft"}, {"fill": "magic"}):
        with pytest.raises(ValueError):
            CleanSettings(**bad)


def test_touching_keeps_the_parts_that_hold_a_seed() -> None:
    mask = np.zeros((10, 20), bool)
    mask[1:4, 1:6] = True  # a part with a seed
    mask[6:9, 10:18] = True  # a part without one
    mask[4, 6] = True  # joined to the first diagonally (8-connected)
    seeds = np.zeros_like(mask)
    seeds[2, 2] = True
    seeds[0, 19] = True  # outside the mask: counts for nothing
    kept = touching(mask, seeds)
    assert kept[1:4, 1:6].all() and kept[4, 6] and not kept[6:9, 10:18].any()
    assert kept.sum() == 16 and not touching(mask, np.zeros_like(mask)).any()
