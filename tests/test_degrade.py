"""The scan degradation operations and recipe (training and the degraded evaluation sets)."""

from __future__ import annotations

import numpy as np
import pytest

from upres.kernels import degrade as ops
from upres.kernels.degrade import KernelKind, ResizeKind
from upres.kernels.noise_estimate import blockiness, noise_sigma
from upres.kernels.scan_recipe import ScanRecipe, degrade_patch


@pytest.fixture
def flat() -> np.ndarray:
    # A smooth gradient: noise and blocks measured on it are the degradation's own.
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    return np.stack([60 + x, 80 + y, 120 + 0.3 * (x + y)], axis=-1)


@pytest.mark.parametrize("kind", list(KernelKind))
def test_blur_kernels_are_normalised_centred_and_blur(kind: KernelKind, flat: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    kernel = ops.blur_kernel(kind, 2.0, rng)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert (kernel >= 0).all()
    half = kernel.shape[0] // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    assert abs(float((kernel * yy).sum())) < 1e-4 and abs(float((kernel * xx).sum())) < 1e-4
    edge = np.zeros((33, 33, 3), np.float32)
    edge[:, 16:] = 200.0
    blurred = ops.convolve(edge, kernel)
    assert 0 < blurred[16, 15, 0] < 200 or 0 < blurred[16, 16, 0] < 200


def test_blur_kernel_refuses_a_non_positive_sigma() -> None:
    with pytest.raises(ValueError, match="sigma"):
        ops.blur_kernel(KernelKind.ISOTROPIC, 0.0, np.random.default_rng(0))


def test_anisotropic_kernels_have_two_widths() -> None:
    ratios = []
    for seed in range(6):
        kernel = ops.blur_kernel(KernelKind.ANISOTROPIC, 3.0, np.random.default_rng(seed))
        eig = np.linalg.eigvalsh(np.cov(np.argwhere(kernel > kernel.max() * 0.05).T.astype(float)))
        ratios.append(eig[1] / eig[0])
    assert max(ratios) > 2.0


@pytest.mark.parametrize("kind", list(ResizeKind))
def test_resize_reaches_the_size_asked(kind: ResizeKind, flat: np.ndarray) -> None:
    out = ops.resize(flat, 32, 24, kind)
    assert out.shape == (24, 32, 3)
    assert abs(float(out.mean()) - float(flat.mean())) < 3.0


def test_gaussian_noise_has_its_sigma_and_gray_noise_is_shared() -> None:
    rng = np.random.default_rng(0)
    img = np.full((200, 200, 3), 128.0, np.float32)
    noisy = ops.gaussian_noise(img, 6.0, False, rng) - img
    assert noisy.std() == pytest.approx(6.0, rel=0.03)
    gray = ops.gaussian_noise(img, 6.0, True, rng) - img
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_poisson_noise_grows_with_the_signal() -> None:
    rng = np.random.default_rng(0)
    dark = ops.poisson_noise(np.full((200, 200, 3), 20.0, np.float32), 8.0, False, rng) - 20.0
    bright = ops.poisson_noise(np.full((200, 200, 3), 230.0, np.float32), 8.0, False, rng) - 230.0
    assert bright.std() > 2.5 * dark.std()


def test_film_grain_is_correlated_and_strongest_in_the_mid_tones() -> None:
    rng = np.random.default_rng(0)
    mid = np.full((128, 128, 3), 128.0, np.float32)
    grain = ops.film_grain(mid, 6.0, 1.0, rng)[..., 0] - 128.0
    neighbour = np.corrcoef(grain[:, :-1].ravel(), grain[:, 1:].ravel())[0, 1]
    assert neighbour > 0.4  # white noise would be ~0
    dark = ops.film_grain(np.full((128, 128, 3), 5.0, np.float32), 6.0, 1.0, rng)[..., 0] - 5.0
    assert grain.std() > 1.5 * dark.std()


def test_jpeg_is_lossy_block_coded_and_refuses_bad_qualities(flat: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    img = ops.gaussian_noise(flat, 3.0, False, rng)
    low = ops.jpeg(img, 30)
    assert low.shape == img.shape and np.array_equal(low, np.rint(low))
    assert blockiness(ops.to_u8(low)) > blockiness(ops.to_u8(img)) + 0.1
    with pytest.raises(ValueError, match="quality"):
        ops.jpeg(img, 0)


def test_noise_estimate_tracks_the_added_noise(flat: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    clean = noise_sigma(ops.to_u8(flat))
    noisy = noise_sigma(ops.to_u8(ops.gaussian_noise(flat, 8.0, True, rng)))
    assert clean < 0.5
    assert noisy == pytest.approx(8.0, rel=0.2)


def test_recipe_is_reproducible_sized_and_varied() -> None:
    rng = np.random.default_rng(0)
    hr = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    first = degrade_patch(hr, 4, np.random.default_rng(7))
    np.testing.assert_array_equal(first, degrade_patch(hr, 4, np.random.default_rng(7)))
    assert first.shape == (16, 16, 3) and first.dtype == np.uint8
    outs = {degrade_patch(hr, 4, np.random.default_rng(seed)).tobytes() for seed in range(12)}
    assert len(outs) > 8
    clean = degrade_patch(hr, 4, np.random.default_rng(0), ScanRecipe(clean_prob=1.0))
    np.testing.assert_array_equal(clean, ops.to_u8(ops.resize(hr.astype(np.float32), 16, 16,
                                                               ResizeKind.PIL_BICUBIC)))
    with pytest.raises(ValueError, match="divide"):
        degrade_patch(hr[:63], 4, rng)


def test_degraded_test_inputs_are_reproducible_and_distinct(photo: np.ndarray) -> None:
    from upres.degraded_eval import DEGRADATIONS, degraded_lr, flat_mask
    from upres.kernels.resize import bicubic_down, mod_crop

    hr = mod_crop(photo[:96, :128], 4)
    lr = bicubic_down(hr, 4)
    made = {kind: degraded_lr("a.png", hr, lr, 4, kind) for kind in DEGRADATIONS}
    assert made["clean"] is lr
    for kind, img in made.items():
        assert img.shape == lr.shape and img.dtype == np.uint8
        np.testing.assert_array_equal(img, degraded_lr("a.png", hr, lr, 4, kind))
    assert len({img.tobytes() for img in made.values()}) == len(DEGRADATIONS)
    assert not np.array_equal(made["noise"], degraded_lr("b.png", hr, lr, 4, "noise"))
    with pytest.raises(ValueError, match="--degrade"):
        degraded_lr("a.png", hr, lr, 4, "fog")
    assert flat_mask(hr).mean() == pytest.approx(0.25, abs=0.02)


def test_eval_command_scores_degraded_input(tmp_path, photo: np.ndarray) -> None:
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from upres.cli import app

    data = tmp_path / "hr"
    data.mkdir()
    Image.fromarray(photo[:64, :80]).save(data / "a.png")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--degrade", "noise",
                                      "--denoise", "0", "--json", str(report), "--threads", "1"])
    assert result.exit_code == 0, result.output
    record = json.loads(report.read_text())
    assert record["degrade"] == "noise" and record["denoise"] == "0.0"
    assert record["summary"]["images"] == 1 and 20 < record["summary"]["psnr"] < 60
    bad = CliRunner().invoke(app, ["eval", "--data", str(data), "--degrade", "fog"])
    assert bad.exit_code == 2 and "--degrade" in bad.output
