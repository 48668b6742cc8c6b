"""--denoise: the setting, auto's choice, network interpolation, and what reaches the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image
from typer.testing import CliRunner

from upres.cli import app
from upres.kernels import degrade as ops
from upres.runtime.catalog import builtin_path
from upres.runtime.chain_factory import build_chain
from upres.runtime.denoise import DenoiseSetting, auto_strength, choose, texture_at
from upres.runtime.interpolate import interpolate, interpolated_path, snap
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))


def _weights(data: bytes | Path) -> dict[str, np.ndarray]:
    model = onnx.load_from_string(data) if isinstance(data, bytes) else onnx.load(str(data))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_setting_parses_auto_and_strengths_and_refuses_the_rest() -> None:
    assert DenoiseSetting.parse("auto").auto and DenoiseSetting.parse(" AUTO ").auto
    assert DenoiseSetting.parse("0.5") == DenoiseSetting(False, 0.5)
    assert DenoiseSetting.parse("0.34").strength == 0.3  # on the interpolation grid
    assert str(DenoiseSetting.parse("1")) == "1.0"
    for bad in ("-0.1", "1.5", "strong", "nan"):
        with pytest.raises(ValueError, match="--denoise"):
            DenoiseSetting.parse(bad)
    with pytest.raises(ValueError):
        snap(2.0)


def test_auto_strength_is_zero_on_clean_input_and_rises_with_damage() -> None:
    assert auto_strength(0.5, 0.02) == 0.0
    levels = [auto_strength(sigma, 0.0) for sigma in (1, 2, 3, 4, 6, 10)]
    assert levels == sorted(levels) and levels[-1] == 1.0
    blocks = [auto_strength(0.0, b) for b in (0.02, 0.2, 0.4, 0.8)]
    assert blocks == sorted(blocks) and blocks[0] == 0.0 and blocks[-1] > 0.5


def test_choose_measures_noise_and_a_fixed_setting_measures_nothing() -> None:
    y, x = np.mgrid[0:128, 0:160].astype(np.float32)
    smooth = np.stack([40 + x, 60 + y, 90 + 0.5 * x], axis=-1)
    clean = choose(DenoiseSetting(True), ops.to_u8(smooth))
    noisy = choose(DenoiseSetting(True),
                   ops.to_u8(ops.gaussian_noise(smooth, 8.0, False, np.random.default_rng(0))))
    assert clean.strength == 0.0 and noisy.strength >= 0.4
    assert noisy.to_record()["estimate"]["noise_sigma"] > 4
    fixed = choose(DenoiseSetting(False, 0.3), ops.to_u8(smooth))
    assert fixed.strength == 0.3 and "estimate" not in fixed.to_record()


def test_texture_fades_out_as_the_strength_rises() -> None:
    assert texture_at(0.5, 0.0) == 0.5
    assert 0 < texture_at(0.5, 0.1) < 0.5
    assert texture_at(0.5, 0.3) == 0.0 and texture_at(0.5, 1.0) == 0.0


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_interpolation_ends_are_the_two_models(precision: str) -> None:
    clean, restore = builtin_path("coarse-x4", precision), builtin_path("restore-x4", precision)
    a, b = _weights(clean), _weights(restore)
    for strength, expected in ((0.0, a), (1.0, b)):
        mixed = _weights(interpolate(clean, restore, strength))
        for name, value in expected.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(mixed[name], value, rtol=1e-6, atol=1e-12, err_msg=name)
            else:  # requantised: within one step of the calibrated integers
                assert np.abs(mixed[name].astype(np.int64) - value.astype(np.int64)).max() <= 1, name


def test_fp32_interpolation_is_the_weighted_mean_of_the_weights() -> None:
    clean, restore = builtin_path("coarse-x4"), builtin_path("restore-x4")
    a, b, mixed = _weights(clean), _weights(restore), _weights(interpolate(clean, restore, 0.3))
    for name in a:
        np.testing.assert_allclose(mixed[name], 0.7 * a[name] + 0.3 * b[name], rtol=1e-5, atol=1e-7)


def _upscale(setup_chain, img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    return upscale_array(x, plan_grid(*x.shape[:2], 0, 0), setup_chain)


def _noisy(photo: np.ndarray) -> np.ndarray:
    return ops.to_u8(ops.gaussian_noise(photo[:48, :56].astype(np.float32), 8.0, False,
                                        np.random.default_rng(5)))


def test_interpolated_model_output_lies_between_the_two(photo: np.ndarray) -> None:
    img = _noisy(photo)
    setup = build_chain("faithful", 4, threads=1, denoise=DenoiseSetting(True))
    ends = [_upscale(setup.chain_for(s), img) for s in (0.0, 1.0)]
    middle = _upscale(setup.chain_for(0.5), img)
    gap = np.abs(ends[0] - ends[1]).mean()
    assert gap > 0.01
    # Network interpolation is not output interpolation, but for fine-tuned twins it lands close.
    assert np.abs(middle - (ends[0] + ends[1]) / 2).mean() < 0.3 * gap
    np.testing.assert_array_equal(ends[0], _upscale(build_chain("faithful", 4, threads=1).chain, img))


def test_int8_interpolation_stays_as_close_to_fp32_as_the_calibrated_ends(photo: np.ndarray) -> None:
    img = _noisy(photo)
    fp32 = build_chain("faithful", 4, threads=1, denoise=DenoiseSetting(True))
    int8 = build_chain("faithful", 4, precision="int8", threads=1, denoise=DenoiseSetting(True))
    errors = {s: np.abs(_upscale(int8.chain_for(s), img) - _upscale(fp32.chain_for(s), img)).mean()
              for s in (0.0, 0.5, 1.0)}
    assert errors[0.5] <= 1.5 * max(errors[0.0], errors[1.0]) + 1e-3, errors
    assert errors[0.5] < 0.01  # under 3 levels on average


def test_interpolated_files_are_cached_and_reproducible(tmp_path: Path) -> None:
    from upres.core.hashing import file_sha256

    clean, restore = builtin_path("coarse-x2"), builtin_path("restore-x2")
    args = (clean, file_sha256(clean), restore, file_sha256(restore), 0.4)
    first = interpolated_path(*args)
    assert first.is_relative_to(tmp_path / "cache")
    made = first.stat().st_mtime_ns
    assert interpolated_path(*args) == first and first.stat().st_mtime_ns == made
    first.unlink()
    assert file_sha256(interpolated_path(*args)) == file_sha256(first)


def test_interpolation_refuses_models_that_are_not_twins() -> None:
    from upres.core.errors import ModelError

    with pytest.raises(ModelError, match=r"cannot (be )?interpolate"):
        interpolate(builtin_path("coarse-x4"), builtin_path("coarse-x2"), 0.5)


def _save(tmp: Path, name: str, img: np.ndarray) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    Image.fromarray(img).save(path)
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_run_denoise_zero_is_the_clean_model_and_auto_records_its_choice(
        tmp_path: Path, photo: np.ndarray) -> None:
    img = photo[:40, :48]
    noisy = ops.to_u8(ops.gaussian_noise(img.astype(np.float32), 10.0, False, np.random.default_rng(1)))
    src = tmp_path / "in"
    _save(src, "clean.png", img)
    _save(src, "noisy.png", noisy)
    outs = {}
    for setting in ("0", "auto", "1"):
        code, text = _run("run", str(src), "-o", str(tmp_path / setting), "--mode", "faithful",
                          "--denoise", setting, "--threads", "1")
        assert code == 0, text
        outs[setting] = {n: (tmp_path / setting / n).read_bytes() for n in ("clean.png", "noisy.png")}
    expected = _upscale(build_chain("faithful", 4, threads=1).chain, img)
    got = np.asarray(Image.open(tmp_path / "0" / "clean.png")).astype(np.float32) / 255.0
    assert np.abs(got - np.clip(expected, 0, 1)).max() <= 0.5 / 255 + 1e-6
    record = json.loads((tmp_path / "auto" / "noisy.png.json").read_text())
    assert record["denoise"]["setting"] == "auto" and record["denoise"]["strength"] >= 0.4
    assert record["settings"]["denoise"] == "auto"
    assert record["settings"]["models"]["restore"]
    assert outs["auto"]["noisy.png"] != outs["0"]["noisy.png"]
    if json.loads((tmp_path / "auto" / "clean.png.json").read_text())["denoise"]["strength"] == 0.0:
        assert outs["auto"]["clean.png"] == outs["0"]["clean.png"]
    # A rerun with another setting is not taken for finished.
    code, text = _run("run", str(src), "-o", str(tmp_path / "0"), "--mode", "faithful",
                      "--denoise", "1", "--threads", "1")
    assert code == 0 and (tmp_path / "0" / "noisy.png").read_bytes() == outs["1"]["noisy.png"]


def test_denoise_usage_errors(tmp_path: Path, photo: np.ndarray) -> None:
    src = _save(tmp_path, "a.png", photo[:24, :24])
    code, text = _run("run", str(src), "-o", str(tmp_path / "o"), "--denoise", "2")
    assert code == 2 and "--denoise" in text
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(builtin_path("coarse-x2").read_bytes())
    code, text = _run("run", str(src), "-o", str(tmp_path / "o"), "--model", str(foreign),
                      "--scale", "2", "--denoise", "0.5")
    assert code == 2 and "--denoise applies to the built-in models" in text
    code, text = _run("run", str(src), "-o", str(tmp_path / "o2"), "--model", str(foreign),
                      "--scale", "2")
    assert code == 0, text  # auto: a model of the user's runs as given


def test_plan_prints_the_denoise_choice(tmp_path: Path, photo: np.ndarray) -> None:
    noisy = ops.to_u8(ops.gaussian_noise(photo[:64, :64].astype(np.float32), 12.0, False,
                                         np.random.default_rng(2)))
    src = _save(tmp_path, "n.png", noisy)
    code, text = _run("plan", str(src), "--json")
    assert code == 0, text
    assert json.loads(text)["denoise"]["strength"] >= 0.6
