"""upres.Upscaler on arrays: the pixels `upres run` writes for the same image and settings, in
every mode, for 8- and 16-bit, float, gray, alpha, tiled and whole; thread safety; errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from support import SAMPLE
from typer.testing import CliRunner

import upres
from upres.cli import app
from upres.imageio import quantize

runner = CliRunner()
MODES = ("deterministic", "faithful", "hybrid")


def _photo(height: int = 36, width: int = 40) -> np.ndarray:
    """A crop of the bundled photo, uint8 RGB (real content: edges, texture, flat sky)."""
    from PIL import Image

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[40 : 40 + height, 60 : 60 + width].copy()


def _layouts() -> dict[str, np.ndarray]:
    """One array per layout and dtype the API takes (stored as TIFF for the CLI)."""
    rgb = _photo()
    wide = rgb.astype(np.uint16) * 257 + np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 251
    alpha = np.linspace(0, 255, rgb.shape[0] * rgb.shape[1]).reshape(rgb.shape[:2]).astype(np.uint8)
    gray = rgb[..., 1]
    return {
        "rgb8": rgb,
        "rgb16": wide,
        "rgba8": np.dstack([rgb, alpha]),
        "gray8": gray,
        "gray16": wide[..., 0],
        "graya8": np.dstack([gray, alpha]),
        "float": (wide.astype(np.float32) / 65535).astype(np.float32),
    }


def _write_tiff(path: Path, samples: np.ndarray) -> None:
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    extra = {"extrasamples": ("unassalpha",)} if channels in (2, 4) else {}
    tifffile.imwrite(path, samples, photometric="rgb" if channels >= 3 else "minisblack", **extra)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("in")
    arrays = _layouts()
    for name, samples in arrays.items():
        _write_tiff(folder / f"{name}.tif", samples)
    return folder, arrays


def _cli_outputs(folder: Path, out: Path, *options: str) -> dict[str, np.ndarray]:
    result = runner.invoke(app, ["run", str(folder), "-o", str(out), "--quiet", *options])
    assert result.exit_code == 0, result.output
    return {p.stem: tifffile.imread(p) for p in out.glob("*.tif")}


@pytest.mark.parametrize("tile", ["0", "16"])
@pytest.mark.parametrize("mode", MODES)
def test_api_pixels_equal_cli_pixels(images: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                     mode: str, tile: str) -> None:
    folder, arrays = images
    cli = _cli_outputs(folder, tmp_path / "out", "--scale", "2", "--mode", mode, "--tile", tile)
    with upres.Upscaler(scale=2, mode=mode, tile=int(tile)) as up:
        plan = up.plan(arrays["rgb8"]).plan
        assert (plan.tile, plan.exact) == (int(tile), True)
        if tile == "16":
            assert len(plan.grid.tiles) > 4  # really tiled
        for name, samples in arrays.items():
            got = up.upscale(samples)
            assert got.dtype == samples.dtype and got.shape[2:] == samples.shape[2:], name
            assert got.shape[:2] == (samples.shape[0] * 2, samples.shape[1] * 2), name
            if name == "float":
                assert got.min() >= 0 and got.max() <= 1
                got = quantize(got, 16)  # what upres run writes for a float TIFF: 16-bit
            np.testing.assert_array_equal(got, cli[name], err_msg=f"{mode} {name} tile {tile}")


def test_default_mode_and_x4(images: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    folder, arrays = images
    cli = _cli_outputs(folder, tmp_path / "out", "--tile", "24")
    with upres.Upscaler(tile=24) as up:
        assert (up.mode, up.scale) == ("hybrid", 4)
        for name in ("rgb8", "rgba8"):
            np.testing.assert_array_equal(up.upscale(arrays[name]), cli[name], err_msg=name)


def test_tiled_equals_whole_and_the_input_is_not_touched() -> None:
    rgb = _photo(45, 38)
    before = rgb.copy()
    with upres.Upscaler(scale=2, mode="faithful", tile=0) as whole, \
            upres.Upscaler(scale=2, mode="faithful", tile=16) as tiled:
        a, b = whole.upscale(rgb), tiled.upscale(rgb)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    np.testing.assert_array_equal(rgb, before)


def test_views_and_odd_strides_are_taken() -> None:
    rgb = _photo(40, 48)
    with upres.Upscaler(scale=2, mode="faithful") as up:
        flipped = rgb[::-1, ::2]  # a strided view
        np.testing.assert_array_equal(up.upscale(flipped), up.upscale(np.ascontiguousarray(flipped)))
        bgr = rgb[..., ::-1]
        assert up.upscale(bgr).shape == (80, 96, 3)


def test_calls_from_threads_give_the_serial_results() -> None:
    images = [_photo(24 + 4 * i, 32) for i in range(4)]
    with upres.Upscaler(scale=2, mode="faithful", tile=16) as up:
        serial = [up.upscale(image) for image in images]
        results: dict[int, list[np.ndarray]] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(images))

        def work(i: int) -> None:
            try:
                barrier.wait()
                results[i] = [up.upscale(images[i]) for _ in range(2)]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    for i, expected in enumerate(serial):
        for got in results[i]:
            np.testing.assert_array_equal(got, expected)


def test_closed_upscaler_refuses_work() -> None:
    up = upres.Upscaler(scale=2, mode="deterministic")
    up.close()
    up.close()  # twice is fine
    with pytest.raises(upres.ClosedError):
        up.upscale(_photo())
    with pytest.raises(upres.ClosedError):
        up.plan((10, 10))
    assert "closed" in repr(up)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 4, 5), np.uint8), "HxWx3"),
    (np.zeros((4,), np.uint8), "HxWx3"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 3), np.int32), "uint8, uint16 or float32"),
    (np.zeros((4, 4, 3), np.float64), "uint8, uint16 or float32"),
    (np.full((4, 4, 3), 1.5, np.float32), "outside 0..1"),
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_arrays_it_does_not_take(bad: object, message: str) -> None:
    with upres.Upscaler(scale=2, mode="deterministic") as up, \
            pytest.raises(upres.ArrayError, match=message):
        up.upscale(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("options, message", [
    ({"scale": 3}, "--scale must be 2 or 4"),
    ({"blend": "smooth"}, "--blend must be"),
    ({"memory": "lots"}, "--memory"),
    ({"memory": 0}, "--memory"),
    ({"tile": -1}, "--tile"),
    ({"threads": -2}, "--threads"),
    ({"mode": "magic"}, "--mode must be one of"),
    ({"precision": "int4"}, "--precision"),
    ({"texture": 2.0}, "--texture"),
])
def test_settings_it_refuses(options: dict[str, object], message: str) -> None:
    with pytest.raises(upres.SettingsError, match=message):
        upres.Upscaler(**options)  # type: ignore[arg-type]


def test_a_memory_target_too_small_is_a_plan_error() -> None:
    with upres.Upscaler(scale=2, mode="faithful", memory="1MiB") as up, \
            pytest.raises(upres.PlanError):
        up.upscale(_photo())


def test_a_missing_model_and_backend_are_their_own_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        upres.Upscaler(model=str(tmp_path / "none.onnx"))
    with pytest.raises((upres.BackendUnavailable, upres.SettingsError)):
        upres.Upscaler(backend="ort-trt")


def test_every_setting_is_a_keyword_of_the_upscaler() -> None:
    """A new setting is a Settings field; this keeps the Upscaler's keywords in step with it."""
    import dataclasses
    import inspect

    fields = [f.name for f in dataclasses.fields(upres.Settings)]
    assert list(inspect.signature(upres.Upscaler).parameters) == fields
    defaults = {f.name: f.default for f in dataclasses.fields(upres.Settings)}
    params = inspect.signature(upres.Upscaler).parameters
    assert {name: p.default for name, p in params.items()} == defaults


def test_plan_is_what_upres_plan_prints(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(_photo(60, 80)).save(src)
    result = runner.invoke(app, ["plan", str(src), "--scale", "2", "--mode", "faithful",
                                 "--memory", "1GiB", "--tile", "32"])
    assert result.exit_code == 0, result.output
    with upres.Upscaler(scale=2, mode="faithful", memory="1GiB", tile=32) as up:
        planned = up.plan(src)
    assert planned.output_size == (160, 120)
    # The same lines, but for the baseline RSS in the estimate, measured at another moment.
    def words(text: str) -> str:
        return " ".join(text.split()).split(" memory: ")[0] + text.split("output:")[1].split()[0]

    assert words(result.stdout) == words(planned.text())
    assert "tile 32" in planned.text() and planned.to_dict()["plan"]["tile"] == 32
    assert planned.to_dict()["mode"] == "faithful"


def test_import_upres_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, upres; heavy = [m for m in ('numpy', 'onnxruntime', 'cv2', 'upres.api') "
            "if m in sys.modules]; print(heavy); upres.Upscaler; print('upres.api.upscaler' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "True"], done.stdout + done.stderr
