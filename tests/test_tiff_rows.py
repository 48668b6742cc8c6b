"""TIFFs read a band of rows at a time: the same values as decoding them whole, only for layouts
whose rows stand alone, and `upres run` uses it exactly when the decoded image would not fit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from upres.batch import runner as batch
from upres.imageio import ImageError, TiffRows, open_tiff_rows, read_image
from upres.runtime.chain_factory import build_chain
from upres.runtime.inputs import collect_jobs

BANDS = [(0, 17), (17, 64), (100, 181), (150, 200)]  # first, middle, across strips, the last rows


def _samples(photo: np.ndarray, dtype: str) -> np.ndarray:
    base = np.asarray(Image.fromarray(photo).resize((150, 200))).astype(np.float64) / 255.0
    if dtype == "uint8":
        return np.round(base * 255).astype(np.uint8)
    if dtype == "uint16":
        return np.round(base * 65535).astype(np.uint16)
    return base.astype(np.float32)


LAYOUTS = {
    "contiguous uint8": ("uint8", False, {}),
    "contiguous uint16 big-endian": ("uint16", False, {"byteorder": ">"}),
    "gray uint16 zlib strips": ("uint16", True, {"compression": "zlib", "rowsperstrip": 16}),
    "tiled uint8 deflate": ("uint8", False, {"compression": "zlib", "tile": (64, 64)}),
    "uint8 deflate with predictor": ("uint8", False, {"compression": "zlib", "predictor": True,
                                                      "rowsperstrip": 8}),
    "float32 strips": ("float32", False, {"rowsperstrip": 40}),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_rows_equal_the_whole_decode(tmp_path: Path, photo: np.ndarray, layout: str) -> None:
    dtype, gray, options = LAYOUTS[layout]
    samples = _samples(photo, dtype)
    if gray:
        samples = samples[..., 0]
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, samples, photometric="minisblack" if gray else "rgb", **options)
    whole = read_image(path)
    rows = open_tiff_rows(path)
    assert rows is not None
    with rows:
        assert rows.meta == whole.meta
        for y0, y1 in BANDS:
            assert np.array_equal(rows.read(y0, y1), whole.rgb[y0:y1]), (y0, y1)
        with pytest.raises(ValueError, match="outside"):
            rows.read(190, 201)


def test_layouts_that_need_the_whole_decode(tmp_path: Path, photo: np.ndarray) -> None:
    rgb = _samples(photo, "uint8")
    cases = {
        "alpha.tif": dict(data=np.dstack([rgb, rgb[..., :1]]), photometric="rgb", extrasamples=[2]),
        "rotated.tif": dict(data=rgb, photometric="rgb", extratags=[(274, 3, 1, 6, True)]),
        "tall-strips.tif": dict(data=np.tile(rgb, (2, 1, 1)), photometric="rgb", compression="zlib",
                                rowsperstrip=400),
        "lzw.tif": dict(data=rgb, photometric="rgb", compression="lzw", rowsperstrip=16),
        "planar.tif": dict(data=np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate"),
    }
    for name, kwargs in cases.items():
        data = kwargs.pop("data")
        try:
            tifffile.imwrite(tmp_path / name, data, **kwargs)
        except (KeyError, AttributeError):  # writing LZW needs imagecodecs too
            continue
        assert open_tiff_rows(tmp_path / name) is None, name
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    assert open_tiff_rows(tmp_path / "photo.png") is None


def test_truncated_tiff_is_an_image_error(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _samples(photo, "uint8"), photometric="rgb")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        open_tiff_rows(path)


def test_run_streams_the_input_only_when_it_must_and_writes_the_same_pixels(
        tmp_path: Path, photo: np.ndarray) -> None:
    """A target that the decoded image does not fit: the rows are streamed, and the output is
    bit for bit the one of a run that decoded the image whole (same tiles)."""
    scan = np.tile(_samples(photo, "uint16"), (12, 2, 1))  # 2400 x 300, 16-bit
    src = tmp_path / "in" / "scan.tif"
    src.parent.mkdir()
    tifffile.imwrite(src, scan, photometric="rgb", compression="zlib", rowsperstrip=32)
    setup = build_chain("deterministic", 2, None, 0.5, "ort-cpu", "fp32", 1)
    outputs = {}
    for name in ("whole", "streamed"):
        runner = batch.BatchRunner(setup, batch.RunOptions(memory=1 << 34, tile=96))
        if name == "streamed":
            meta = read_image(src).meta
            target = runner.plan(2400, 300, 16).estimate["total"]
            while runner._whole_fits(meta):  # the largest target the decoded image misses
                target -= 1 << 20
                runner.opts = dataclasses.replace(runner.opts, memory=target)
        opened = runner.open_planned(src)[0]
        assert isinstance(opened, TiffRows) == (name == "streamed")
        assert runner.plan_file(src)[1].streamed_input == (name == "streamed")  # `upres plan`
        if isinstance(opened, TiffRows):
            opened.close()
        out = tmp_path / name
        out.mkdir()
        report = runner.run(collect_jobs([str(src)], out), print)
        assert report.counts()["done"] == 1
        plan = report.results[0].plan
        assert plan["streamed_input"] == (name == "streamed") and plan["tile"] == 96
        written = next(out.glob("scan.tif"))
        outputs[name] = tifffile.imread(written)
    assert outputs["whole"].dtype == np.uint16 and outputs["whole"].shape == (4800, 600, 3)
    assert np.array_equal(outputs["whole"], outputs["streamed"])
