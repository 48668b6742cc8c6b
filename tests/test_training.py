from pathlib import Path

import numpy as np
import torch
from PIL import Image

from upres.kernels.scan_recipe import ScanRecipe
from upres.models.data import PatchSampler
from upres.models.train import TrainConfig, load_model, train


def _make_folder(tmp: Path, photo: np.ndarray) -> Path:
    folder = tmp / "hr"
    folder.mkdir()
    for i, (y, x) in enumerate([(0, 0), (20, 40), (40, 100)]):
        Image.fromarray(photo[y : y + 120, x : x + 130]).save(folder / f"img{i}.png")
    return folder


def test_patch_sampler_is_deterministic_and_aligned(tmp_path: Path, photo: np.ndarray) -> None:
    folder = _make_folder(tmp_path, photo)
    sampler = PatchSampler([folder], scale=4, lr_patch=16, seed=3)
    lr1, hr1 = sampler.batch(5, 4)
    lr2, _ = sampler.batch(5, 4)
    np.testing.assert_array_equal(lr1, lr2)
    assert lr1.shape == (4, 3, 16, 16) and hr1.shape == (4, 3, 64, 64)
    # LR patch is (close to) the bicubic downscale of its HR patch.
    down = torch.nn.functional.avg_pool2d(torch.from_numpy(hr1), 4).numpy()
    assert np.abs(down - lr1).mean() < 0.03
    noisy = PatchSampler([folder], 4, 16, 3, ScanRecipe(clean_prob=0.0)).batch(5, 4)[0]
    assert np.abs(noisy - lr1).mean() > 0.005


def test_training_lowers_loss_and_resumes(tmp_path: Path, photo: np.ndarray) -> None:
    folder = _make_folder(tmp_path, photo)
    cfg = TrainConfig(model="coarse-x2", data=(folder,), out=tmp_path / "run", steps=30,
                      batch=4, lr_patch=16, checkpoint_every=15, warmup_steps=5, threads=1)
    weights = train(cfg)
    log = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["log"]
    assert log[-1]["loss"] < log[0]["loss"] * 1.0 or log[-1]["loss"] < 0.05
    model = load_model(weights)
    lr, hr = PatchSampler([folder], 2, 16, seed=99).batch(0, 4)
    with torch.no_grad():
        trained = torch.nn.functional.l1_loss(model(torch.from_numpy(lr)), torch.from_numpy(hr))
        bicubic = torch.nn.functional.l1_loss(
            torch.nn.functional.interpolate(torch.from_numpy(lr), scale_factor=2, mode="bicubic"),
            torch.from_numpy(hr))
    assert float(trained) < float(bicubic)  # a few steps already beat its bicubic starting point
    # Resuming a finished run changes nothing.
    again = train(cfg)
    assert load_model(again).state_dict()["head.weight"].equal(model.state_dict()["head.weight"])


def test_refine_training_runs(tmp_path: Path, photo: np.ndarray) -> None:
    folder = _make_folder(tmp_path, photo)
    coarse = train(TrainConfig(model="coarse-x2", data=(folder,), out=tmp_path / "c", steps=3,
                               batch=2, lr_patch=16, threads=1))
    refine = train(TrainConfig(model="refine", data=(folder,), out=tmp_path / "r", steps=6,
                               batch=2, lr_patch=16, threads=1, warmup_steps=2,
                               coarse_weights=(coarse,)))
    assert refine.exists()


def test_stop_after_then_resume_equals_uninterrupted(tmp_path: Path, photo: np.ndarray) -> None:
    folder = _make_folder(tmp_path, photo)
    common = dict(model="coarse-x2", data=(folder,), steps=8, batch=2, lr_patch=16,
                  warmup_steps=2, checkpoint_every=4, threads=1)
    straight = load_model(train(TrainConfig(out=tmp_path / "a", **common)))
    train(TrainConfig(out=tmp_path / "b", stop_after=4, **common))
    resumed = load_model(train(TrainConfig(out=tmp_path / "b", **common)))
    for key, value in straight.state_dict().items():
        assert torch.allclose(value, resumed.state_dict()[key], atol=1e-6), key
