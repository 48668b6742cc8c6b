"""The learned thin-structure detector: training damage, the shipped model's tiling, what it finds on a
photo and what it leaves alone, and its training path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from PIL import Image, ImageDraw

from upres.cleaning import thin_net
from upres.core.model import read_info
from upres.export.onnx_export import export_weights
from upres.kernels.masks import grow
from upres.models import thin_synth
from upres.models.detect_data import (
    HOLDOUT_EVERY,
    DamageSampler,
    HardNegative,
    load_hard_negatives,
    photos_at_scales,
    split_photos,
)
from upres.models.detector import detection_loss
from upres.models.registry import spec
from upres.models.thin_synth import DamageConfig, render_damage
from upres.models.train import TrainConfig, load_model, train
from upres.runtime.catalog import WEIGHTS_DIR

ONNX = WEIGHTS_DIR / "thin-detect.onnx"
WEIGHTS = WEIGHTS_DIR / "thin-detect.pt"
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
T91 = DATASETS / "T91"


def _f(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


def _held_out_photos() -> list[np.ndarray]:
    """The held-out tenth of T91 (photos the network never saw), or skip without the data."""
    if not T91.is_dir():
        pytest.skip("no ../shared/datasets/T91")
    out = []
    for path in split_photos(T91, True):
        with Image.open(path) as im:
            out.append(np.asarray(im.convert("RGB")).copy())
    return out


def _scratched(clean: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A 2 px scratch across the photo (bright on a dark photo, dark on a bright one) and a 5 px
    dark speck; (damaged, scratch pixels, the speck's centre)."""
    h, w = clean.shape[:2]
    line = [(w * 0.1, h * 0.15), (w * 0.45, h * 0.35), (w * 0.9, h * 0.4)]
    probe = Image.new("L", (w, h))
    ImageDraw.Draw(probe).line(line, fill=255, width=2)
    level = 245 if clean[np.asarray(probe) > 0].mean() < 128 else 15
    canvas = Image.fromarray(clean)
    draw = ImageDraw.Draw(canvas)
    draw.line(line, fill=(level,) * 3, width=2)
    damaged = np.array(canvas)
    scratch = np.abs(damaged.astype(np.int16) - clean).max(axis=2) >= 8
    sy, sx = int(h * 0.75), int(w * 0.3)
    damaged[sy - 2 : sy + 3, sx - 2 : sx + 3] = 255 - level
    return damaged, scratch, (sy, sx)


def _found(photo: np.ndarray) -> np.ndarray:
    out = np.zeros(photo.shape[:2], bool)
    for f in thin_net.detect(_f(photo)):
        y0, y1, x0, x1 = f.box
        out[y0:y1, x0:x1] |= f.pixels
    return out


def test_damage_is_deterministic_and_masks_only_visible_damage(photo: np.ndarray) -> None:
    crop = np.ascontiguousarray(photo[:96, :96])
    a = render_damage(crop, np.random.default_rng(3), DamageConfig(blank=0.0, degrade=0.0))
    b = render_damage(crop, np.random.default_rng(3), DamageConfig(blank=0.0, degrade=0.0))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    moved = np.abs(a[0].astype(np.int16) - crop).max(axis=2)
    assert a[1].any() and (moved[a[1]] >= 8).all()
    blank, mask = render_damage(crop, np.random.default_rng(3), DamageConfig(blank=1.0, lookalikes=1.0))
    assert not mask.any() and not np.array_equal(blank, crop)  # look-alikes drawn, none of it damage


def test_natural_lookalikes_are_drawn_in_the_photos_tones_and_never_masked(photo: np.ndarray) -> None:
    """Twigs, fur and stars: each is drawn (it moves pixels), soft, and left out of the mask; and a
    dust-only draw has no lines."""
    crop = np.ascontiguousarray(photo[:96, :96]).astype(np.float32)
    for seed in range(6):
        colour, alpha = thin_synth._natural(np.random.default_rng(seed), crop)
        assert alpha.max() > 0.3 and (alpha > 0.05).mean() < 0.5
        assert colour.std(axis=(0, 1)).min() > 1.0  # follows the photo: never a flat grey
        assert np.abs(alpha[1:] - alpha[:-1]).max() < 0.9  # blurred: no hard one-pixel steps
    for seed in range(8):
        _, mask = render_damage(photo[:96, :96].copy(), np.random.default_rng(seed),
                                DamageConfig(blank=0.0, lines=0.0, lookalikes=0.0, degrade=0.0))
        if mask.any():  # specks only: every part is small
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
            assert max(int(stats[i][2:4].max()) for i in range(1, count)) <= 32


def test_holdout_split_is_every_tenth_photo(tmp_path: Path, photo: np.ndarray) -> None:
    for i in range(12):
        Image.fromarray(photo[:40, :40]).save(tmp_path / f"p{i:02d}.png")
    held = split_photos(tmp_path, True)
    train_set = split_photos(tmp_path, False)
    assert [p.name for p in held] == [f"p{HOLDOUT_EVERY - 1:02d}.png"]
    assert len(train_set) == 11 and not set(held) & set(train_set)


def test_photos_at_scales_are_each_split_photo_at_each_size(tmp_path: Path, photo: np.ndarray) -> None:
    for folder in ("T91", "BSD200"):
        (tmp_path / folder).mkdir()
        for i in range(11):
            Image.fromarray(photo[:100, :80]).save(tmp_path / folder / f"p{i:02d}.png")
    held = list(photos_at_scales(tmp_path, True, (1.0, 0.5)))
    assert [(n, s, im.shape) for n, s, im in held] == [
        (f"{f}/p{HOLDOUT_EVERY - 1:02d}.png", s, shape) for f in ("T91", "BSD200")
        for s, shape in ((1.0, (100, 80, 3)), (0.5, (50, 40, 3)))]
    assert np.array_equal(held[0][2], photo[:100, :80])
    assert len(list(photos_at_scales(tmp_path, False))) == 2 * 10 * 3


def test_hard_negative_crops_hold_their_box_unmasked(tmp_path: Path) -> None:
    folder = tmp_path / "F"
    folder.mkdir()
    for i in range(12):
        img = np.full((120, 160, 3), 60 + i, np.uint8)
        if i == 3:
            img[40:50, 20:140] = 255  # the structure taken for damage, on this photo alone
        Image.fromarray(img).save(folder / f"p{i:02d}.png")
    rows = [{"photo": "F/p03.png", "scale": 0.7, "box": [28, 35, 14, 98], "score": 0.9}]
    (tmp_path / "hard.json").write_text(json.dumps({"hard_negatives": rows}))
    hard = load_hard_negatives(tmp_path / "hard.json")
    assert hard == [HardNegative("F/p03.png", 0.7, (28, 35, 14, 98))]
    none = DamageConfig(blank=1.0, lookalikes=0.0, degrade=0.0)
    images, masks = DamageSampler([folder], 48, seed=3, config=none, hard=hard, hard_share=1.0).batch(0, 12)
    assert all((im == 1.0).any() for im in images)  # each crop holds a point of the box
    assert not masks.any()
    mixed, _ = DamageSampler([folder], 48, seed=3, config=none, hard=hard, hard_share=0.5).batch(0, 40)
    assert 5 < sum(bool((im == 1.0).any()) for im in mixed) < 35
    with pytest.raises(ValueError, match="not a training photo"):
        DamageSampler([folder], 48, hard=[HardNegative("F/p09.png", 1.0, (0, 5, 0, 5))])


def test_shipped_onnx_is_current_and_small(tmp_path: Path, photo: np.ndarray) -> None:
    report = export_weights(WEIGHTS, tmp_path / "t.onnx", real_images=[photo[:61, :77]])
    assert report.parity_max_abs < 1e-4
    assert onnx.load(str(report.path)).graph == onnx.load(str(ONNX)).graph, \
        "thin-detect.onnx is stale: run `upres export` again"
    info = read_info(ONNX)
    assert info is not None and info.kind == "detect" and info.output_channels == 1
    assert ONNX.stat().st_size < 1_000_000


def test_tiled_logits_equal_the_whole_image(photo: np.ndarray) -> None:
    image = _f(np.tile(photo, (2, 2, 1))[:301, :355])  # odd sizes, several tiles
    det = thin_net.detector()
    whole = det.logits(image, tile=0)
    tiled = det.logits(image, tile=96)
    assert np.abs(whole).max() > 1.0  # not a flat map
    assert np.abs(tiled - whole).max() <= 1e-4
    assert [f.box for f in thin_net.components(tiled)] == [f.box for f in thin_net.components(whole)]


def test_finds_a_scratch_and_a_speck_on_training_photos() -> None:
    photos = _held_out_photos()
    found_in = 0
    for clean in photos:
        damaged, scratch, _ = _scratched(clean)
        found = _found(damaged)
        found_in += found[scratch].mean() > 0.6
        assert (found & ~grow(scratch, 3)).sum() < 0.5 * scratch.sum()  # and little else
    # Measured: 5 of the 9 (the misses: dark lines over busy dark texture and bright foliage,
    # where the sides of the line differ from each other as much as from it: 6 without that check).
    assert found_in >= len(photos) // 2 + 1
    # The network marks the speck too; the auto rule leaves specks alone (SPECK_HIGH = 1.0:
    # a glint is a speck as well, and clean photos must stay clean).
    damaged, _, (sy, sx) = _scratched(photos[0])
    logits = thin_net.detector().logits(_f(damaged))
    specks = thin_net.components(logits, thin_net.Thresholds(speck_high=0.5))
    assert any(f.kind == "speck" and f.box[0] <= sy < f.box[1] and f.box[2] <= sx < f.box[3] for f in specks)
    assert not any(f.kind == "speck" for f in thin_net.components(logits))


def test_clean_photos_give_no_detection(photo: np.ndarray) -> None:
    assert thin_net.detect(_f(photo)) == []
    if T91.is_dir():
        assert all(thin_net.detect(_f(p)) == [] for p in _held_out_photos())


def test_components_need_a_confident_pixel() -> None:
    logits = np.full((40, 40), -8.0, np.float32)
    logits[10, 5:30] = 0.0  # p = 0.5 throughout: above LOW, never above HIGH
    logits[30, 5:30] = 0.0
    logits[30, 12] = 8.0  # one sure pixel seeds the whole line
    logits[35, 35:38] = 8.0  # a sure speck
    loose = thin_net.Thresholds(min_length=20, speck_high=0.99)
    assert [(f.kind, f.box) for f in thin_net.components(logits, loose)] == [
        ("scratch", (30, 31, 5, 30)), ("speck", (35, 36, 35, 38))]
    assert thin_net.components(logits) == []  # shorter than MIN_LENGTH, and specks are not taken
    with pytest.raises(ValueError, match="low"):
        thin_net.components(logits, thin_net.Thresholds(high=0.2, low=0.3))


def test_a_line_between_two_surfaces_is_not_a_scratch() -> None:
    """A bright line over one grey surface stands out from both sides alike; the same line along
    the border of a dark and a light surface (a rim, a roof against the sky) does not, and is
    refused even where the network is sure of it."""
    line = np.zeros((60, 120), bool)
    line[29:31, 10:110] = True
    over = np.full(line.shape, 90.0, np.float32)
    over[line] = 230
    edge = np.full(line.shape, 90.0, np.float32)
    edge[31:] = 200
    edge[line] = 255
    rgb = {name: np.repeat(y[..., None], 3, axis=2) / 255.0 for name, y in (("over", over), ("edge", edge))}
    lines = {name: thin_net.centre_line(v * 255.0, line) for name, v in rgb.items()}
    assert thin_net.sides_agree(lines["over"]) > 0.9  # type: ignore[arg-type]
    assert thin_net.sides_agree(lines["edge"]) < 0.1  # type: ignore[arg-type]
    logits = np.where(line, 8.0, -8.0).astype(np.float32)
    assert len(thin_net.components(logits)) == 1  # without the image: the network's word alone
    assert len(thin_net.components(logits, image=rgb["over"])) == 1
    assert thin_net.components(logits, image=rgb["edge"]) == []
    assert thin_net.components(logits, thin_net.Thresholds(min_sides=0.0), rgb["edge"]) != []


def test_training_lowers_the_loss(tmp_path: Path, photo_crops: Path) -> None:
    folder = photo_crops
    cfg = TrainConfig(model="thin-detect", data=(folder,), out=tmp_path / "run", steps=40, batch=4,
                      lr_patch=48, warmup_steps=2, threads=1)
    x, target = (torch.from_numpy(a) for a in DamageSampler([folder], 48, seed=99).batch(0, 8))

    def loss_of(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(detection_loss(model(x), target, dice_weight=0.0))  # the per-pixel term

    torch.manual_seed(cfg.seed)  # train() builds its model after seeding the same way
    before = loss_of(spec("thin-detect").build().eval())
    after = loss_of(load_model(train(cfg)))
    assert after < before


def test_training_takes_hard_negatives_and_refuses_them_elsewhere(tmp_path: Path, photo_crops: Path) -> None:
    from typer.testing import CliRunner

    from upres.cli import app

    hard = tmp_path / "hard.json"
    hard.write_text(json.dumps({"hard_negatives": [
        {"photo": "photos/p1.png", "scale": 1.0, "box": [10, 14, 5, 90], "score": 0.9}]}))
    cfg = TrainConfig(model="thin-detect", data=(photo_crops,), out=tmp_path / "run", steps=3, batch=2,
                      lr_patch=48, warmup_steps=1, threads=1, hard_negatives=hard, hard_share=0.5)
    final = train(cfg)
    assert json.loads((final.parent / "thin-detect.train.json").read_text())["hard_negatives"] == "hard.json"
    with pytest.raises(ValueError, match="for thin-detect"):
        train(TrainConfig(model="overlay-detect", data=(photo_crops,), out=tmp_path / "o", steps=1,
                          batch=1, lr_patch=48, hard_negatives=hard))
    runner = CliRunner()
    base = ["train", "thin-detect", "--data", str(photo_crops), "-o", str(tmp_path / "cli")]
    for extra, said in ((["--hard-negatives", str(tmp_path / "missing.json")], "no such file"),
                        (["--hard-negatives", str(hard), "--hard-share", "1.5"], "--hard-share")):
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2 and said in " ".join(result.output.split())
    assert not (tmp_path / "cli").exists()


def test_a_sure_scratch_is_grey_over_a_coloured_ground() -> None:
    """A scratch is the paper's white or the negative's black drawn over the photo, so on a
    coloured surface it is greyer than its sides; a long thin line in the scene's own colour (a
    red pole over green grass, a yellow road marking) is not, and the default rule refuses it
    where the looser `thin` rule takes it."""
    h, w = 60, 200
    line = np.zeros((h, w), bool)
    line[29:31, 10:190] = True
    ground = np.zeros((h, w, 3), np.float32)
    ground[:] = (60, 140, 50)  # grass
    white = ground.copy()
    white[line] = (235, 235, 235)
    red = ground.copy()
    red[line] = (220, 40, 30)  # a red pole: 13 levels darker than the grass in luma
    grey_ground = np.full((h, w, 3), 100.0, np.float32)
    grey_ground[line] = (235, 235, 235)
    for image, grey in ((white, True), (grey_ground, True), (red, False)):
        c = thin_net.centre_line(image, line)
        assert c is not None
        assert (thin_net.neutral(c) > 0.9) is grey
        assert (thin_net.neutral(c) < 0.1) is not grey
    logits = np.where(line, 6.0, -8.0).astype(np.float32)
    for image, taken in ((white, True), (grey_ground, True), (red, False)):
        assert bool(thin_net.components(logits, thin_net.SURE, image / 255.0)) is taken
    assert thin_net.components(logits, thin_net.THIN, red / 255.0) != []
    # The rule's other reads: a line the network is less sure of, or a shorter one, is left.
    assert thin_net.components(np.where(line, 3.0, -8.0).astype(np.float32), thin_net.SURE,
                               white / 255.0) == []
    short = np.where(line & (np.arange(w) < 80), 6.0, -8.0).astype(np.float32)
    assert thin_net.components(short, thin_net.SURE, white / 255.0) == []
    assert thin_net.components(short, thin_net.THIN, white / 255.0) != []


def test_a_scratched_photo_s_less_sure_lines_are_taken_and_a_clean_one_s_not() -> None:
    """Once a sure scratch is found, the photo's lines of the looser ``SURE.then`` are taken too
    (shorter, less sure, no sides test); without a sure one, none of them is."""
    assert thin_net.SURE.then is not None
    then = thin_net.SURE.then
    h, w = 120, 200
    image = np.zeros((h, w, 3), np.float32)
    image[:] = (60, 140, 50)
    sure, loose = np.zeros((h, w), bool), np.zeros((h, w), bool)
    sure[29:31, 10:190] = True  # 180 px, the network sure of it
    loose[89:91, 40:100] = True  # 60 px: under SURE's length, over then's
    image[sure | loose] = (235, 235, 235)
    logits = np.full((h, w), -8.0, np.float32)
    logits[sure] = 6.0
    logits[loose] = then.min_mean_logit + 0.5
    found = thin_net.components(logits, thin_net.SURE, image / 255.0)
    assert sorted(f.box for f in found) == [(29, 31, 10, 190), (89, 91, 40, 100)]
    alone = np.where(loose, logits, -8.0).astype(np.float32)
    assert thin_net.components(alone, thin_net.SURE, image / 255.0) == []
    assert thin_net.components(alone, then, image / 255.0) != []
    fainter = logits.copy()
    fainter[loose] = then.min_mean_logit - 0.5
    assert len(thin_net.components(fainter, thin_net.SURE, image / 255.0)) == 1
    no_then = dataclasses.replace(thin_net.SURE, then=None)
    assert len(thin_net.components(logits, no_then, image / 255.0)) == 1
