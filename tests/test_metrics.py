import numpy as np
import pytest
from support import dataset

from upres.kernels.resize import bicubic_down, bicubic_up, mod_crop
from upres.metrics import psnr, ssim, y_channel


def test_psnr_known_values() -> None:
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == float("inf")
    # A uniform Y error of 1 level: gray 128 -> 129 changes Y by 219/255.
    g1, g2 = np.full((8, 8), 128, np.uint8), np.full((8, 8), 129, np.uint8)
    expected = 10 * np.log10(255**2 / (219 / 255) ** 2)
    assert psnr(g1, g2) == pytest.approx(expected)
    assert y_channel(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_ssim_identity_and_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # Flat images: only the luminance term is left, (2 xy + c1) / (x^2 + y^2 + c1).
    g1, g2 = np.full((32, 32), 100, np.uint8), np.full((32, 32), 150, np.uint8)
    y1, y2 = y_channel(g1)[0, 0], y_channel(g2)[0, 0]
    c1 = (0.01 * 255) ** 2
    assert ssim(g1, g2) == pytest.approx((2 * y1 * y2 + c1) / (y1**2 + y2**2 + c1))


def test_bicubic_baseline_matches_published_set5() -> None:
    folder = dataset("Set5")
    from PIL import Image

    scores = []
    for path in sorted(folder.glob("*.png")):
        hr = mod_crop(np.asarray(Image.open(path).convert("RGB")), 4)
        scores.append(psnr(bicubic_up(bicubic_down(hr, 4), 4), hr, 4))
    assert np.mean(scores) == pytest.approx(28.42, abs=0.05)  # the published bicubic x4
