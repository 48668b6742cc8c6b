"""Overlay detector: synthetic overlays, shipped model (export, parity, tiling), detection quality,
stroke width, the torch-free runtime and a training smoke run."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from upres.cleaning.detect import NOT_RUN, OverlayMaskDetector, detect_overlay_mask, estimate_stroke_width
from upres.core.model import read_info
from upres.core.receptive_field import probe_alignment
from upres.export.onnx_export import export_weights
from upres.models import seven_segment
from upres.models.detect_data import OverlaySampler
from upres.models.detector import detection_loss
from upres.models.overlay_synth import KINDS, SynthConfig, synthesize
from upres.models.registry import spec
from upres.models.train import TrainConfig, load_model, train
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import WEIGHTS_DIR
from upres.runtime.tiling import plan_grid

ONNX = WEIGHTS_DIR / "overlay-detect.onnx"
WEIGHTS = WEIGHTS_DIR / "overlay-detect.pt"
TEXT_ONLY = SynthConfig(blank_fraction=0.0, kind_weights=tuple(float(k == "text") for k in KINDS),
                        degrade=False)
# Measured on the shipped weights: pixel IoU 0.659 over these 20 renders of the sample photo
# (Pillow's built-in font only, so the number does not depend on the fonts a machine has), and 0.14 %
# of the clean photo's pixels flagged. The bounds leave a margin.
SAMPLE_SEEDS = range(10, 30)
SAMPLE_IOU_BOUND = 0.55
CLEAN_FLAGGED_BOUND = 0.02


@pytest.fixture(scope="module")
def detector() -> OverlayMaskDetector:
    return OverlayMaskDetector(threads=1)


def test_synthesis_is_deterministic_per_seed(photo: np.ndarray) -> None:
    a_img, a_mask = synthesize(photo, 5)
    b_img, b_mask = synthesize(photo, 5)
    c_img, _ = synthesize(photo, 6)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert not np.array_equal(a_img, c_img)
    # Pillow's built-in font alone (a machine without system fonts) works and is deterministic too.
    d_img, _ = synthesize(photo, 5, TEXT_ONLY, fonts=(None,))
    np.testing.assert_array_equal(d_img, synthesize(photo, 5, TEXT_ONLY, fonts=(None,))[0])


@pytest.mark.parametrize("kind", KINDS)
def test_mask_covers_what_the_overlay_changed(photo: np.ndarray, kind: str) -> None:
    cfg = replace(TEXT_ONLY, kind_weights=tuple(float(k == kind) for k in KINDS))
    for seed in range(4):
        image, mask = synthesize(photo, seed, cfg)
        change = np.abs(image.astype(np.int16) - photo.astype(np.int16)).max(axis=2)
        assert mask.any(), f"{kind} seed {seed}: nothing drawn"
        # Alpha <= 0.1 cannot move a pixel by more than 26 levels: any bigger change is in the mask,
        # and the mask holds only visibly changed pixels.
        assert np.all(mask[change > 26])
        assert np.all(change[mask] >= cfg.mask_change)


def test_blank_images_are_untouched(photo: np.ndarray) -> None:
    image, mask = synthesize(photo, 0, replace(TEXT_ONLY, blank_fraction=1.0))
    np.testing.assert_array_equal(image, photo)
    assert not mask.any()


def test_seven_segment_layout() -> None:
    polys, width = seven_segment.layout("'98 12 25", 20.0)
    assert len(polys) == 1 + 6 + 7 + 2 + 5 + 5 + 5  # ' 9 8 1 2 2 5: one polygon per segment
    assert width > 0 and all(0 <= x <= width for p in polys for x, _ in p)
    with pytest.raises(ValueError, match="cannot show"):
        seven_segment.layout("JUL", 20.0)


def test_shipped_onnx_is_current_with_probed_metadata(tmp_path: Path, photo: np.ndarray) -> None:
    report = export_weights(WEIGHTS, tmp_path / "d.onnx", real_images=[photo[:61, :77]])
    assert report.parity_max_abs < 1e-4  # ONNX Runtime vs PyTorch, odd sizes and a real photo
    fresh, stored = onnx.load(str(report.path)), onnx.load(str(ONNX))
    assert fresh.graph == stored.graph, "overlay-detect.onnx is stale: run `upres export` again"
    assert {p.key: p.value for p in fresh.metadata_props} == {p.key: p.value for p in stored.metadata_props}
    info = read_info(ONNX)
    assert info is not None and info.kind == "detect" and info.scale == 1
    assert (info.input_channels, info.output_channels, info.alignment) == (3, 1, 2)
    assert 20_000 <= info.parameters <= 80_000 and 0 < info.receptive_field < 48


def test_torch_and_onnx_agree_on_odd_sizes(photo: np.ndarray) -> None:
    model = load_model(WEIGHTS)
    backend = OrtBackend(ONNX, threads=1)
    x = np.ascontiguousarray(photo[:77, :51].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = backend.run(x)
    assert got.shape == (1, 1, 77, 51)
    assert float(np.abs(ref - got).max()) < 1e-4


def test_alignment_probe() -> None:
    """2 for the detector (one stride-2 layer), 1 for a stride-free SR model."""
    for path, want in ((ONNX, 2), (WEIGHTS_DIR / "coarse-x2.onnx", 1)):
        info = read_info(path)
        assert info is not None
        backend = OrtBackend(path, threads=1)
        assert probe_alignment(backend.run, info.input_channels, info.scale, info.receptive_field) == want


def test_aligned_grid() -> None:
    grid = plan_grid(101, 77, 30, 35, align=2)
    assert grid.halo == 36
    for t in grid.tiles:
        assert t.core.y0 % 2 == 0 and t.core.x0 % 2 == 0
        assert t.padded.y0 % 2 == 0 and t.padded.x0 % 2 == 0
        assert t.core.height <= 30 and t.core.width <= 30
    assert sum(t.core.height * t.core.width for t in grid.tiles) == 101 * 77
    with pytest.raises(ValueError, match="align"):
        plan_grid(10, 10, 1, 0, align=2)


def test_tiled_equals_whole_image(detector: OverlayMaskDetector, photo: np.ndarray) -> None:
    image, _ = synthesize(photo, 3)
    x = image[:157, :203].astype(np.float32) / 255.0  # odd sizes: the stride-2 path crops
    whole = detector.logits(x, tile=0)
    for tile in (32, 50, 96):
        tiled = detector.logits(x, tile=tile)
        assert float(np.abs(tiled - whole).max()) <= 1e-5, tile
        np.testing.assert_array_equal(tiled > 0, whole > 0)
    # Alignment matters: a crop starting on an odd pixel is sampled on the other stride grid.
    rf = detector.info.receptive_field
    shifted = detector.logits(np.ascontiguousarray(x[1:, 1:]), tile=0)
    inner = (slice(rf + 1, -rf - 1), slice(rf + 1, -rf - 1))
    assert float(np.abs(shifted[inner] - whole[1:, 1:][inner]).max()) > 1e-3


def test_logits_where_run_only_the_tiles_it_touches(detector: OverlayMaskDetector,
                                                    photo: np.ndarray) -> None:
    image, _ = synthesize(photo, 3)
    x = image[:157, :203].astype(np.float32) / 255.0
    whole = detector.logits(x, tile=0)
    where = np.zeros(x.shape[:2], bool)
    where[10, 120] = True
    partial = detector.logits(x, tile=50, where=where)
    grid = plan_grid(*where.shape, 50, detector.info.receptive_field, detector.info.alignment)
    (core,) = [t.core for t in grid.tiles if t.core.y0 <= 10 < t.core.y1 and t.core.x0 <= 120 < t.core.x1]
    ran = np.zeros_like(where)
    ran[core.y0 : core.y1, core.x0 : core.x1] = True
    assert 0 < ran.sum() < ran.size / 4
    assert float(np.abs(partial[ran] - whole[ran]).max()) <= 1e-5
    assert np.all(partial[~ran] == NOT_RUN)


def test_detection_iou_on_sample(photo: np.ndarray) -> None:
    cfg = SynthConfig(blank_fraction=0.0)
    inter = union = 0
    for seed in SAMPLE_SEEDS:
        image, truth = synthesize(photo, seed, cfg, fonts=(None,))
        pred = detect_overlay_mask(image.astype(np.float32) / 255.0)
        assert pred.dtype == bool and pred.shape == truth.shape
        inter += int(np.count_nonzero(pred & truth))
        union += int(np.count_nonzero(pred | truth))
    assert inter / union >= SAMPLE_IOU_BOUND
    # The clean photo itself: (almost) nothing flagged.
    assert detect_overlay_mask(photo.astype(np.float32) / 255.0).mean() < CLEAN_FLAGGED_BOUND


def test_stroke_width() -> None:
    assert estimate_stroke_width(np.zeros((20, 20), bool)) == 0.0
    for thickness, width in ((1, 1), (3, 5), (7, 9)):  # cv2.line's thickness -> drawn width
        m = np.zeros((60, 120), np.uint8)
        cv2.line(m, (10, 30), (110, 30), 1, thickness)
        assert np.count_nonzero(m[:, 60]) == width
        assert estimate_stroke_width(m > 0) == pytest.approx(width, abs=0.5)
    # Text: many thin strokes; a filled logo blob next to them does not move the median much.
    font_px = 48
    canvas = Image.new("L", (420, 80))
    ImageDraw.Draw(canvas).text((4, 4), "Summer 1987", font=ImageFont.load_default(size=font_px), fill=255)
    text = np.asarray(canvas) > 127
    width = estimate_stroke_width(text)
    assert 2.0 <= width <= font_px / 4
    with_blob = text.copy()
    with_blob[10:40, 380:410] = True
    assert estimate_stroke_width(with_blob) == pytest.approx(width, abs=1.0)


def test_runtime_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from upres.cleaning.detect import detect_overlay_mask, estimate_stroke_width\n"
        "m = detect_overlay_mask(np.zeros((40, 50, 3), np.float32))\n"
        "estimate_stroke_width(m)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_training_lowers_the_loss(tmp_path: Path, photo_crops: Path) -> None:
    folder = photo_crops
    cfg = TrainConfig(model="overlay-detect", data=(folder,), out=tmp_path / "run", steps=10, batch=4,
                      lr_patch=48, warmup_steps=2, threads=1)
    held_out = OverlaySampler([folder], 48, seed=99).batch(0, 8)
    x, target = (torch.from_numpy(a) for a in held_out)

    def loss_of(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(detection_loss(model(x), target))

    torch.manual_seed(cfg.seed)  # train() builds its model after seeding the same way
    before = loss_of(spec("overlay-detect").build().eval())
    after = loss_of(load_model(train(cfg)))
    assert after < before
