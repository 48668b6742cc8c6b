"""The learned fill: network, training data, export metadata, exact tiling, the clean stage and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

from upres.cleaning.fill import fill
from upres.cleaning.learned_fill import LearnedFillStage, build_learned_fill
from upres.cleaning.pipeline import Cleaner, CleanSettings
from upres.cleaning.regions import plan_regions
from upres.cli import app
from upres.core.hashing import file_sha256
from upres.core.model import read_info
from upres.export.onnx_export import export_weights
from upres.kernels.masks import final_mask
from upres.models.fill_data import FillSampler
from upres.models.fill_net import masked_l1
from upres.models.registry import spec
from upres.models.train import TrainConfig, load_model, train
from upres.runtime.catalog import WEIGHTS_DIR
from upres.runtime.tiling import Rect


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))


def _random_net(seed: int) -> torch.nn.Module:
    """The fill network with random weights (its head starts at zero, which would hide the net)."""
    torch.manual_seed(seed)
    model = spec("fill").build()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model


@pytest.fixture(scope="module")
def random_fill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fill network with random (non-zero) weights, exported: the tiling and stage tests must not
    depend on what training produced."""
    model = _random_net(3)
    folder = tmp_path_factory.mktemp("fill")
    torch.save({"model": "fill", "state_dict": model.state_dict()}, folder / "fill.pt")
    return export_weights(folder / "fill.pt", folder / "fill.onnx").path


def _holes(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[20:26, 15:100] = True  # a caption bar
    m[70:110, 140:146] = True  # a stroke far from it: another region
    return m


def test_network_changes_only_the_holes() -> None:
    model = _random_net(0)
    x = torch.rand(2, 4, 45, 61)
    x[:, 3] = (torch.rand(2, 45, 61) > 0.8).float()
    with torch.no_grad():
        y = model(x)
    keep = x[:, 3:4].expand(-1, 3, -1, -1) == 0
    assert y.shape == (2, 3, 45, 61)
    assert torch.equal(y[keep], x[:, :3][keep])
    assert (y[~keep] - x[:, :3][~keep]).abs().max() > 0.01


def test_masked_l1_scores_only_the_holes() -> None:
    target = torch.zeros(1, 3, 4, 4)
    holes = torch.zeros(1, 1, 4, 4)
    holes[..., :2, :] = 1.0
    out = target.clone()
    out[..., 2:, :] = 5.0  # wrong only outside the holes: no loss
    assert masked_l1(out, target, holes).item() == 0.0
    out[..., :2, :] = 0.5
    assert masked_l1(out, target, holes).item() == pytest.approx(0.5)


def test_training_batches_are_telea_filled_overlay_holes(photo: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray(photo).save(tmp_path / "p.png")
    sampler = FillSampler([tmp_path], 64, seed=5)
    x, y = sampler.fill_batch(0, 3)
    assert x.shape == (3, 4, 64, 64) and y.shape == (3, 3, 64, 64)
    again, _ = FillSampler([tmp_path], 64, seed=5).fill_batch(0, 3)
    assert np.array_equal(x, again)  # deterministic per (seed, step)
    for image, clean in zip(x, y, strict=True):
        holes = image[3] > 0
        assert holes.any() and not holes.all()
        # Outside the holes the input is the photo (the overlay's faint rim aside), inside it is
        # Telea's fill of the marked crop, which differs from the clean photo.
        assert np.abs(image[:3][:, ~holes] - clean[:, ~holes]).mean() < 2 / 255
        assert np.abs(image[:3][:, holes] - clean[:, holes]).mean() > 1 / 255


def test_exported_metadata(random_fill: Path) -> None:
    info = read_info(random_fill)
    assert info is not None and info.kind == "fill" and info.scale == 1
    assert (info.input_channels, info.output_channels, info.alignment) == (4, 3, 4)
    assert 40 <= info.receptive_field <= 128


def test_stage_tiled_equals_whole_image(random_fill: Path, photo: np.ndarray) -> None:
    stage, _ = build_learned_fill("ort-cpu", 1, random_fill)
    image = photo[:150, :203].astype(np.float32) / 255.0
    holes = _holes(150, 203)
    filled = fill(image, holes)
    whole, tiles = LearnedFillStage(stage.backend, stage.receptive_field, stage.alignment, tile=0)(
        filled, holes)
    tiled, many = LearnedFillStage(stage.backend, stage.receptive_field, stage.alignment, tile=48)(
        filled, holes)
    assert tiles == 1 and many > 1
    assert np.abs(tiled - whole).max() < 1e-5
    assert (whole[~holes] == filled[~holes]).all()
    assert np.abs(whole[holes] - filled[holes]).max() > 0.01


def test_regions_start_on_the_alignment(random_fill: Path, photo: np.ndarray) -> None:
    """Cleaning region by region equals running the network over the whole image: each region's
    box starts on a multiple of the network's alignment and reaches past its receptive field."""
    stage, _ = build_learned_fill("ort-cpu", 1, random_fill)
    image = photo.astype(np.float32) / 255.0
    holes = np.zeros(photo.shape[:2], bool)
    holes[10:16, 5:40] = True
    holes[121:151, 201:207] = True  # farther than twice the context: a second region
    cleaner = Cleaner(CleanSettings(fill="learned", texture=0.0, feather=0), learned_fill=stage)
    plan = cleaner.plan(holes)
    assert len(plan.regions) == 2
    assert all(r.box.y0 % 4 == 0 and r.box.x0 % 4 == 0 for r in plan.regions)
    unaligned = plan_regions(holes, cleaner.context)
    assert any(r.box.y0 % 4 or r.box.x0 % 4 for r in unaligned.regions)
    for a, b in zip(plan.regions, unaligned.regions, strict=True):
        assert a.box.y0 <= b.box.y0 and a.box.x0 <= b.box.x0 and (a.box.y1, a.box.x1) == (b.box.y1, b.box.x1)
    cleaned, stats = cleaner.clean(image, holes)
    assert stats.fill_tiles == 2
    reference, _ = stage(fill(image, holes), holes)  # one pass over the whole image
    assert np.abs(cleaned[holes] - reference[holes]).max() < 1e-5
    assert (cleaned[~holes] == image[~holes]).all()


def test_plan_regions_rejects_bad_alignment() -> None:
    with pytest.raises(ValueError, match="align"):
        plan_regions(np.ones((4, 4), bool), 1, 0)
    assert plan_regions(np.ones((4, 4), bool), 1, 8).regions[0].box == Rect(0, 4, 0, 4)


def test_build_refuses_a_model_of_another_kind() -> None:
    with pytest.raises(ValueError, match="not a fill network"):
        build_learned_fill("ort-cpu", 1, WEIGHTS_DIR / "refine.onnx")


def test_training_lowers_the_masked_loss(tmp_path: Path, photo: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (y, x) in enumerate([(0, 0), (30, 60), (60, 120)]):
        Image.fromarray(photo[y : y + 100, x : x + 110]).save(folder / f"p{i}.png")
    held_out = FillSampler([folder], 64, seed=99).fill_batch(0, 6)
    x, target = (torch.from_numpy(a) for a in held_out)
    telea = masked_l1(x[:, :3], target, x[:, 3:4]).item()
    cfg = TrainConfig(model="fill", data=(folder,), out=tmp_path / "run", steps=30, batch=4,
                      lr_patch=64, learning_rate=3e-3, warmup_steps=2, threads=1)
    model = load_model(train(cfg))
    with torch.no_grad():
        after = masked_l1(model(x), target, x[:, 3:4]).item()
    assert after < telea


# -- the command ------------------------------------------------------------------------------


def test_clean_cli_with_a_fill_model(tmp_path: Path, photo: np.ndarray, random_fill: Path) -> None:
    Image.fromarray(photo[:90, :120]).save(tmp_path / "a.png")
    m = np.zeros((90, 120), np.uint8)
    m[20:25, 10:90] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    out = tmp_path / "out"
    args = ["clean", str(tmp_path / "a.png"), "-o", str(out), "--mask", str(tmp_path / "m.png"), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--fill", "learned", "--fill-model", str(random_fill)])
    assert result.exit_code == 0, result.output
    side = json.loads((out / "a.png.json").read_text())
    assert side["settings"]["clean"]["fill"] == "learned"
    assert side["settings"]["clean"]["fill_sha256"] == file_sha256(random_fill)
    assert side["clean"]["fill_tiles"] >= 1
    final = final_mask(m > 0, 2)
    after = np.asarray(Image.open(out / "a.png").convert("RGB"))
    assert (after[~final] == photo[:90, :120][~final]).all()
    # --fill-model belongs to --fill learned.
    refused = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "o2"), "--fill-model", str(random_fill)])
    assert refused.exit_code == 2 and "--fill-model applies with --fill learned" in refused.output
    assert not (tmp_path / "o2").exists()


def test_missing_network_is_a_usage_error(tmp_path: Path, photo: np.ndarray,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import upres.runtime.catalog as catalog

    monkeypatch.setattr(catalog, "WEIGHTS_DIR", tmp_path / "no-weights")
    Image.fromarray(photo[:90, :120]).save(tmp_path / "a.png")
    Image.fromarray(np.full((90, 120), 255, np.uint8)).save(tmp_path / "m.png")
    result = CliRunner().invoke(app, ["clean", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                                      "--mask", str(tmp_path / "m.png"), "--fill", "learned",
                                      "--texture", "0", "--quiet"])
    assert result.exit_code == 2
    assert "--fill learned" in result.output
    assert not (tmp_path / "out").exists()


def test_runtime_does_not_import_torch(random_fill: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from upres.cleaning.learned_fill import build_learned_fill\n"
        f"stage, _ = build_learned_fill('ort-cpu', 1, Path({str(random_fill)!r}))\n"
        "m = np.zeros((40, 50), bool); m[10:20, 10:30] = True\n"
        "stage(np.zeros((40, 50, 3), np.float32), m)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
