"""upres.Cleaner: `upres clean` on arrays and files, the same pixels and bytes as the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

import upres
from upres.cleaning.text_detect import available as detection_available
from upres.cli import app

runner = CliRunner()
SIZE = (64, 48)  # width, height


def _rgb() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB").crop((30, 20, 30 + SIZE[0], 20 + SIZE[1]))).copy()


def _mask() -> np.ndarray:
    """A caption-like bar and a short stroke (white = remove)."""
    m = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    m[10:14, 6:50] = 255
    m[30:38, 24:27] = 255
    return m


@pytest.fixture(scope="module")
def cleaner() -> upres.Cleaner:
    with upres.Cleaner() as c:
        yield c


@pytest.mark.parametrize("layout", ["rgb8", "rgb16", "gray8", "rgba8"])
def test_clean_of_an_array_is_what_upres_clean_writes(cleaner: upres.Cleaner, tmp_path: Path,
                                                      layout: str) -> None:
    rgb = _rgb()
    samples = {"rgb8": rgb, "rgb16": rgb.astype(np.uint16) * 257, "gray8": rgb[..., 0],
               "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])}[layout]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    tifffile.imwrite(tmp_path / "a.tif", samples, photometric="rgb" if channels >= 3 else "minisblack",
                     **({"extrasamples": ("unassalpha",)} if channels == 4 else {}))
    Image.fromarray(_mask()).save(tmp_path / "m.png")
    result = runner.invoke(app, ["clean", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"),
                                 "--mask", str(tmp_path / "m.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    cli = tifffile.imread(tmp_path / "out" / "a.tif")
    # The CLI's grain seed is the file's hash; with grain 0 (the default) nothing depends on it.
    got = cleaner.clean(samples, _mask())
    assert got.dtype == samples.dtype and got.shape == samples.shape
    np.testing.assert_array_equal(got, cli)
    from upres.kernels.masks import final_mask

    outside = ~final_mask(_mask() > 0, 2)
    np.testing.assert_array_equal(got[outside], samples[outside])
    assert not np.array_equal(got, samples)


def test_clean_file_writes_the_bytes_and_sidecar_of_upres_clean(cleaner: upres.Cleaner,
                                                                tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    Image.fromarray(_mask()).save(tmp_path / "m.png")
    result = runner.invoke(app, ["clean", str(tmp_path / "a.png"), "-o", str(tmp_path / "cli"),
                                 "--mask", str(tmp_path / "m.png"), "--save-mask", "--quiet"])
    assert result.exit_code == 0, result.output
    done = cleaner.clean_file(tmp_path / "a.png", tmp_path / "api" / "a.png", tmp_path / "m.png",
                              save_mask=True)
    assert done.status == "done"
    for name in ("a.png", "a.mask.png"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()

    def sidecar(folder: str) -> dict[str, object]:
        record = json.loads((tmp_path / folder / "a.png.json").read_text())
        record.pop("timings")
        for key in ("baseline", "total"):
            record["plan"]["estimate"].pop(key)
        return record

    assert sidecar("api") == sidecar("cli")


def test_then_upscale_is_the_clean_then_the_upscale(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    Image.fromarray(_mask()).save(tmp_path / "m.png")
    result = runner.invoke(app, ["clean", str(tmp_path / "a.png"), "-o", str(tmp_path / "cli"),
                                 "--mask", str(tmp_path / "m.png"), "--then-upscale", "--scale", "2",
                                 "--mode", "faithful", "--quiet"])
    assert result.exit_code == 0, result.output
    with upres.Upscaler(scale=2, mode="faithful") as up, upres.Cleaner(upscale=up) as cleaner:
        results = list(cleaner.map(tmp_path / "a.png", tmp_path / "api", tmp_path / "m.png"))
        assert [r.status for r in results] == ["done"]
        assert (tmp_path / "api" / "a.png").read_bytes() == (tmp_path / "cli" / "a.png").read_bytes()
        # Arrays: the clean's output is quantised before the upscale (a file run hands the cleaned
        # floats on): within one level.
        both = up.upscale(cleaner.clean(_rgb(), _mask())).astype(int)
    assert np.abs(both - np.asarray(Image.open(tmp_path / "cli" / "a.png")).astype(int)).max() <= 1


def test_masks_it_refuses(cleaner: upres.Cleaner) -> None:
    with pytest.raises(upres.ArrayError, match="image's size"):
        cleaner.clean(_rgb(), np.zeros((10, 10), bool))
    with pytest.raises(upres.ArrayError, match="nothing left to fill from"):
        cleaner.clean(_rgb(), np.ones(_rgb().shape[:2], bool))
    with pytest.raises(upres.SettingsError):
        cleaner.clean(_rgb(), "everything")
    with pytest.raises(upres.SettingsError, match="--fill-model applies"):
        upres.Cleaner(fill_model="x.onnx")
    with pytest.raises(upres.SettingsError, match="--feather"):
        upres.Cleaner(feather=-1)


@pytest.mark.skipif(not detection_available(), reason="no text detector in this installation")
def test_auto_mask_cleans_a_caption_and_leaves_a_clean_photo_alone(cleaner: upres.Cleaner) -> None:
    import cv2

    from upres.samples import __file__ as samples

    photo = np.asarray(Image.open(Path(samples).parent / "sample.png").convert("RGB"))
    np.testing.assert_array_equal(cleaner.clean(photo, "auto"), photo)
    stamped = photo.copy()
    cv2.putText(stamped, "1987 06 14", (20, 140), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 150, 0), 2,
                cv2.LINE_AA)
    got = cleaner.clean(stamped, "auto")
    assert got.shape == stamped.shape and got.dtype == stamped.dtype
    changed = np.any(got != stamped, axis=2)
    assert changed[115:150, 15:200].mean() > 0.05  # the caption was cleaned
    assert not changed[:90].any()  # far from it, nothing moved
