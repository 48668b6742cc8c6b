"""Archive image types through `upres run`: bit depth, channels, EXIF, ICC, DPI, streaming."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from support import SAMPLE
from typer.testing import CliRunner

from upres.cli import app

runner = CliRunner()


def _run(src: Path, out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["run", str(src), "-o", str(out), "--mode", "faithful",
                                 "--scale", "2", "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return out


def _photo(w: int = 40, h: int = 32) -> Image.Image:
    with Image.open(SAMPLE) as im:
        return im.convert("RGB").crop((0, 0, w, h))


def test_16bit_in_16bit_out(tmp_path: Path) -> None:
    rgb8 = np.asarray(_photo()).astype(np.uint16)
    rgb16 = rgb8 * 257 + 3  # values 8-bit cannot hold
    src = tmp_path / "deep.tif"
    tifffile.imwrite(src, rgb16, photometric="rgb")
    out = _run(src, tmp_path / "o") / "deep.tif"
    res = tifffile.imread(out)
    assert res.dtype == np.uint16 and res.shape == (64, 80, 3)
    assert len(np.unique(res)) > 256


def test_grayscale_stays_grayscale(tmp_path: Path) -> None:
    src = tmp_path / "g.png"
    _photo().convert("L").save(src)
    with Image.open(_run(src, tmp_path / "o") / "g.png") as im:
        assert im.mode == "L" and im.size == (80, 64)


def test_alpha_is_kept(tmp_path: Path) -> None:
    im = _photo().convert("RGBA")
    a = np.zeros((32, 40), np.uint8)
    a[:, 20:] = 255
    im.putalpha(Image.fromarray(a))
    src = tmp_path / "a.png"
    im.save(src)
    with Image.open(_run(src, tmp_path / "o") / "a.png") as res:
        assert res.mode == "RGBA"
        alpha = np.asarray(res)[..., 3]
    assert alpha[:, :30].max() < 10 and alpha[:, 50:].min() > 245


def test_exif_orientation_icc_and_dpi(tmp_path: Path) -> None:
    im = _photo(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "e.jpg"
    im.save(src, exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300), quality=95)
    with Image.open(_run(src, tmp_path / "o") / "e.jpg") as res:
        assert res.size == (60, 80)  # rotated: 30x40 displayed, x2
        assert res.info.get("icc_profile") == icc
        assert tuple(round(v) for v in res.info["dpi"]) == (600, 600)
        assert res.getexif().get(0x0112, 1) == 1


# `upres run` in a fresh process that prints its exit code and peak RSS (VmHWM) as JSON.
_MEASURED_RUN = (
    "import sys, json\nfrom upres.cli import app\n"
    "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
    "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
    "print(json.dumps({'rc': rc, 'peak': peak}))\n"
)


def _noisy_photo_tiles(rows: int, cols: int, seed: int) -> np.ndarray:
    """A big photo-like 8-bit RGB image: tiled sample photo plus a little noise."""
    base = np.asarray(_photo(240, 160))
    big = np.tile(base, (-(-rows // 160), -(-cols // 240), 1))[:rows, :cols]
    noise = np.random.default_rng(seed).integers(-3, 4, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def _measured_run(tmp_path: Path, src: Path, *args: str) -> tuple[int, dict]:
    """(peak RSS, the image's plan) of `upres run SRC -o tmp/o --memory 250MiB ARGS`."""
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED_RUN, "run", str(src), "-o", str(tmp_path / "o"),
         "--memory", "250MiB", "--quiet", "--report", str(report), *args],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status["rc"] == 0
    return status["peak"], json.loads(report.read_text())["images"][0]["plan"]


def test_output_larger_than_memory_streams_bigtiff_under_target(tmp_path: Path) -> None:
    """Peak RSS of a real `upres run` stays under --memory while the output is larger than it.

    The output is 115 MB as 8-bit samples and 460 MB as the float32 the pipeline computes in.
    """
    src = tmp_path / "big.png"
    Image.fromarray(_noisy_photo_tiles(1500, 1600, 0)).save(src, compress_level=1)  # -> 6400x6000
    peak, plan = _measured_run(tmp_path, src, "--mode", "deterministic", "--scale", "4")
    result = tmp_path / "o" / "big.tif"
    with tifffile.TiffFile(result) as tif:
        assert tif.is_bigtiff
        page = tif.pages[0]
        assert page.shape == (6000, 6400, 3) and page.is_tiled
        assert page.asarray()[:64].std() > 10  # a strip with the photo in it
    assert peak < 250 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    assert plan["streaming"] is True


def test_tiff_input_larger_than_memory_is_read_by_rows_under_target(tmp_path: Path) -> None:
    """Peak RSS of a real `upres run` stays under --memory while the decoded input (195 MiB as
    float32) cannot fit in it beside the process: the TIFF is read a band of rows at a time."""
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, _noisy_photo_tiles(4000, 3200, 1), photometric="rgb", compression="zlib",
                     rowsperstrip=64)
    peak, plan = _measured_run(tmp_path, src, "--mode", "deterministic", "--scale", "2")
    assert plan["streamed_input"] is True
    assert peak < 250 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    with tifffile.TiffFile(tmp_path / "o" / "scan.tif") as tif:
        assert tif.pages[0].shape == (8000, 6400, 3)
        assert tif.pages[0].asarray()[-64:].std() > 10  # the last rows were read and written


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("tiff", ".tif"), ("jpg", ".jpg"), ("tif", ".tif"),
                                        ("JPEG", ".jpg")])
def test_format_option(tmp_path: Path, fmt: str, suffix: str) -> None:
    src = tmp_path / "s.png"
    _photo().save(src)
    out = _run(src, tmp_path / "o", "--format", fmt)
    assert (out / f"s{suffix}").exists()
    assert io.BytesIO((out / f"s{suffix}").read_bytes()).getbuffer().nbytes > 100
