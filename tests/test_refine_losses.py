"""The refine stage's texture losses: what each term rewards and punishes."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from upres.models.losses import (
    RefineLossSchedule,
    gaussian_lowpass,
    local_fft_magnitude_loss,
)
from upres.models.train import TrainConfig, load_model, load_state, train


def _texture(seed: int, size: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((2, 3, size, size), generator=gen)


def test_local_spectrum_forgives_a_shift_that_l1_punishes() -> None:
    target = _texture(0)
    shifted = torch.roll(target, 1, dims=3)
    spectral = float(local_fft_magnitude_loss(shifted, target, 16))
    # Against texture of the same statistics but unrelated content, and against a blur.
    unrelated = float(local_fft_magnitude_loss(_texture(1), target, 16))
    blurred = float(local_fft_magnitude_loss(gaussian_lowpass(target, 1.5), target, 16))
    assert spectral < 0.4 * unrelated
    assert spectral < 0.4 * blurred
    # L1 ranks the shifted copy no better than a blur: the reason it drives a network to blur.
    assert float(F.l1_loss(shifted, target)) > float(F.l1_loss(gaussian_lowpass(target, 1.5), target))
    assert float(local_fft_magnitude_loss(target, target, 16)) == 0.0


def test_local_spectrum_keeps_texture_in_place() -> None:
    # Texture in the left half vs the same texture moved to the right half: a whole-patch spectrum
    # barely notices, the windowed one does.
    flat = torch.full((1, 1, 64, 64), 0.5)
    left, right = flat.clone(), flat.clone()
    noise = _texture(2, 64)[:1, :1, :, :32] - 0.5
    left[..., :32] += noise
    right[..., 32:] += noise
    assert float(local_fft_magnitude_loss(right, left, 16)) > 0.5 * float(
        local_fft_magnitude_loss(flat, left, 16))


def test_lowpass_fidelity_ignores_fine_detail_only() -> None:
    target = _texture(3)
    sched = RefineLossSchedule(texture_weight=0.0, fidelity_sigma=1.5)
    fine = target + 0.2 * (_texture(4) - 0.5)  # fine noise: mostly above the low-pass
    coarse = target + 0.2  # a brightness shift: all below it
    assert float(sched.loss(fine, target, 1.0)) < 0.3 * float(sched.loss(coarse, target, 1.0))
    plain = RefineLossSchedule(texture_weight=0.0)
    assert float(plain.loss(fine, target, 1.0)) > float(sched.loss(fine, target, 1.0))


def test_lowpass_keeps_a_constant() -> None:
    x = torch.full((1, 3, 20, 20), 0.25)
    assert torch.allclose(gaussian_lowpass(x, 1.0), x)


@pytest.fixture()
def folder(tmp_path: Path, photo: np.ndarray) -> Path:
    hr = tmp_path / "hr"
    hr.mkdir()
    Image.fromarray(photo[:120, :130]).save(hr / "a.png")
    return hr


def test_init_weights_start_a_fine_tune(tmp_path: Path, folder: Path) -> None:
    common = dict(data=(folder,), batch=2, lr_patch=16, threads=1, warmup_steps=1)
    coarse = train(TrainConfig(model="coarse-x2", out=tmp_path / "c", steps=2, **common))
    base = train(TrainConfig(model="refine", out=tmp_path / "r0", steps=4, coarse_weights=(coarse,),
                             **common))
    sched = RefineLossSchedule(texture_weight=5.0, grad_weight=0.0, spectrum_window=8,
                               fidelity_sigma=1.0)
    # Zero steps of fine-tuning reproduce the starting weights exactly.
    same = train(TrainConfig(model="refine", out=tmp_path / "r1", steps=0, init_weights=base,
                             coarse_weights=(coarse,), refine_schedule=sched, **common))
    for key, value in load_model(base).state_dict().items():
        assert torch.equal(value, load_model(same).state_dict()[key]), key
    tuned = train(TrainConfig(model="refine", out=tmp_path / "r2", steps=3, init_weights=base,
                              coarse_weights=(coarse,), refine_schedule=sched, **common))
    assert not torch.equal(load_state(tuned)[1]["out.weight"], load_state(base)[1]["out.weight"])
    with pytest.raises(ValueError, match="holds coarse-x2"):
        train(TrainConfig(model="refine", out=tmp_path / "r3", steps=1, init_weights=coarse,
                          coarse_weights=(coarse,), **common))


def test_cli_train_logs_progress_and_refuses_missing_init(tmp_path: Path, folder: Path) -> None:
    from typer.testing import CliRunner

    from upres.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["train", "refine", "--data", str(folder), "-o", str(tmp_path / "x"),
                              "--init", str(tmp_path / "missing.pt")])
    assert bad.exit_code == 2 and "no such file" in " ".join(bad.output.split())
    assert not (tmp_path / "x").exists()
    ok = runner.invoke(app, ["train", "coarse-x2", "--data", str(folder), "-o", str(tmp_path / "c"),
                             "--steps", "50", "--batch", "2", "--patch", "16", "--threads", "1"])
    assert ok.exit_code == 0, ok.output
    # Not a terminal: progress comes as log lines rather than a bar.
    assert "train coarse-x2 50/50 loss" in ok.output
