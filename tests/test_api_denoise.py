"""The API's --denoise: Upscaler(denoise=...) picks each image's strength as `upres run` does
(auto: measured on its pixels), so arrays, files and plans still match the CLI on noisy input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

import upres
from upres.cli import app
from upres.kernels import degrade as ops

runner = CliRunner()


def _noisy(photo: np.ndarray, sigma: float, seed: int, size: tuple[int, int] = (36, 40)) -> np.ndarray:
    crop = photo[: size[0], : size[1]].astype(np.float32)
    return ops.to_u8(ops.gaussian_noise(crop, sigma, False, np.random.default_rng(seed)))


@pytest.fixture(scope="module")
def arrays(photo: np.ndarray) -> dict[str, np.ndarray]:
    noisy = _noisy(photo, 10.0, 1)
    return {
        "clean8": np.ascontiguousarray(photo[:36, :40]),
        "noisy8": noisy,
        "noisy16": noisy.astype(np.uint16) * 257,
        "noisygray8": _noisy(photo, 12.0, 2)[..., 1],
        "noisyrgba8": np.dstack([noisy, np.full(noisy.shape[:2], 180, np.uint8)]),
    }


@pytest.fixture(scope="module")
def folder(arrays: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("noisy")
    for name, samples in arrays.items():
        channels = 1 if samples.ndim == 2 else samples.shape[2]
        extra = {"extrasamples": ("unassalpha",)} if channels == 4 else {}
        tifffile.imwrite(src / f"{name}.tif", samples,
                         photometric="rgb" if channels >= 3 else "minisblack", **extra)
    return src


def _cli(folder: Path, out: Path, *options: str) -> dict[str, tuple[np.ndarray, dict]]:
    result = runner.invoke(app, ["run", str(folder), "-o", str(out), "--quiet", "--scale", "2",
                                 "--mode", "faithful", "--tile", "16", *options])
    assert result.exit_code == 0, result.output
    return {p.stem: (tifffile.imread(p), json.loads(p.with_name(p.name + ".json").read_text()))
            for p in out.glob("*.tif")}


@pytest.mark.parametrize("denoise", ["auto", "0.5"])
def test_api_pixels_equal_cli_pixels_with_denoise(arrays: dict[str, np.ndarray], folder: Path,
                                                  tmp_path: Path, denoise: str) -> None:
    cli = _cli(folder, tmp_path / "out", "--denoise", denoise)
    with upres.Upscaler(scale=2, mode="faithful", tile=16, denoise=denoise) as up:
        assert up.describe()["denoise"] == denoise
        for name, samples in arrays.items():
            pixels, sidecar = cli[name]
            choice = up.denoise_for(samples)
            assert choice.to_record() == sidecar["denoise"], name
            np.testing.assert_array_equal(up.upscale(samples), pixels, err_msg=f"{name} {denoise}")
    strengths = {name: record["denoise"]["strength"] for name, (_, record) in cli.items()}
    if denoise == "auto":
        assert strengths["clean8"] == 0.0
        assert all(strengths[name] >= 0.4 for name in strengths if name.startswith("noisy"))
    else:
        assert set(strengths.values()) == {0.5}


def test_denoise_changes_the_noisy_pixels_and_auto_leaves_clean_ones(
        arrays: dict[str, np.ndarray]) -> None:
    with upres.Upscaler(scale=2, mode="faithful", denoise="auto") as auto, \
            upres.Upscaler(scale=2, mode="faithful", denoise=0) as off:
        assert off.denoise_for(arrays["noisy8"]).strength == 0.0
        assert not np.array_equal(auto.upscale(arrays["noisy8"]), off.upscale(arrays["noisy8"]))
        np.testing.assert_array_equal(auto.upscale(arrays["clean8"]), off.upscale(arrays["clean8"]))


def test_upscale_file_with_auto_denoise_writes_what_upres_run_writes(
        arrays: dict[str, np.ndarray], tmp_path: Path) -> None:
    src = tmp_path / "in" / "n.png"
    src.parent.mkdir()
    Image.fromarray(arrays["noisy8"]).save(src)
    result = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "cli"), "--scale", "2",
                                 "--mode", "faithful", "--quiet"])
    assert result.exit_code == 0, result.output
    expected = tmp_path / "cli" / "n.png"
    with upres.Upscaler(scale=2, mode="faithful") as up:
        done = up.upscale_file(src, tmp_path / "api" / "n.png")
    assert done.denoise == json.loads(expected.with_name("n.png.json").read_text())["denoise"]
    assert done.denoise["setting"] == "auto" and done.denoise["strength"] >= 0.4
    assert (tmp_path / "api" / "n.png").read_bytes() == expected.read_bytes()


def test_plan_reports_the_denoise_choice_as_upres_plan(arrays: dict[str, np.ndarray],
                                                       tmp_path: Path) -> None:
    src = tmp_path / "n.png"
    Image.fromarray(arrays["noisy8"]).save(src)
    result = runner.invoke(app, ["plan", str(src), "--scale", "2", "--mode", "faithful", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    with upres.Upscaler(scale=2, mode="faithful") as up:
        planned = up.plan(src)
        assert planned.to_dict()["denoise"] == printed["denoise"]
        assert planned.denoise.strength >= 0.4
        assert f"denoise {planned.denoise.describe()}" in planned.text().splitlines()
        assert up.plan(arrays["noisy8"]).denoise == planned.denoise  # the same pixels
        assert up.plan((36, 40)).denoise.strength == 0.0  # no pixels to measure
    with upres.Upscaler(scale=2, mode="faithful", denoise="0.3") as up:
        assert up.plan(src).to_dict()["denoise"] == {"setting": "0.3", "strength": 0.3}


def test_denoise_setting_errors() -> None:
    for bad in (2, "strong", -0.1, None, True):
        with pytest.raises(upres.SettingsError, match="--denoise"):
            upres.Settings(denoise=bad)  # type: ignore[arg-type]
    assert upres.Settings(denoise="0.34").denoise_setting().strength == 0.3
