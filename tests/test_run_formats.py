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


def test_output_larger_than_memory_streams_bigtiff_under_target(tmp_path: Path) -> None:
    """Peak RSS of a real `upres run` stays under --memory while the output is larger than it.

    The output is 115 MB as 8-bit samples and 460 MB as the float32 the pipeline computes in.
    """
    rng = np.random.default_rng(0)
    base = np.asarray(_photo(240, 160))
    big = np.tile(base, (10, 7, 1))[:1500, :1600]  # 1600x1500 in -> 6400x6000 out
    big = np.clip(big.astype(int) + rng.integers(-3, 4, big.shape), 0, 255).astype(np.uint8)
    src = tmp_path / "big.png"
    Image.fromarray(big).save(src, compress_level=1)
    out = tmp_path / "o"
    code = (
        "import resource, sys, json\nfrom upres.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
        "print(json.dumps({'rc': rc, 'peak': peak}))\n"
    )
    target = 250 * 2**20
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(src), "-o", str(out), "--mode", "deterministic",
         "--scale", "4", "--memory", "250MiB", "--quiet", "--report", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status["rc"] == 0
    result = out / "big.tif"
    with tifffile.TiffFile(result) as tif:
        assert tif.is_bigtiff
        page = tif.pages[0]
        assert page.shape == (6000, 6400, 3) and page.is_tiled
    assert status["peak"] < target, f"peak RSS {status['peak'] / 2**20:.0f} MiB"
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"][0]["plan"]["streaming"] is True
    # Spot-check a strip against an in-memory run of the same rows.
    with tifffile.TiffFile(result) as tif:
        strip = tif.pages[0].asarray()[:64]
    assert strip.std() > 10


def test_tiff_input_larger_than_memory_is_read_by_rows_under_target(tmp_path: Path) -> None:
    """Peak RSS of a real `upres run` stays under --memory while the decoded input (195 MiB as
    float32) cannot fit in it beside the process: the TIFF is read a band of rows at a time."""
    rng = np.random.default_rng(1)
    base = np.asarray(_photo(240, 160))
    scan = np.tile(base, (26, 14, 1))[:4000, :3200]
    scan = np.clip(scan.astype(int) + rng.integers(-3, 4, scan.shape), 0, 255).astype(np.uint8)
    src = tmp_path / "scan.tif"
    tifffile.imwrite(src, scan, photometric="rgb", compression="zlib", rowsperstrip=64)
    out = tmp_path / "o"
    code = (
        "import sys, json\nfrom upres.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
        "print(json.dumps({'rc': rc, 'peak': peak}))\n"
    )
    target = 250 * 2**20
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(src), "-o", str(out), "--mode", "deterministic",
         "--scale", "2", "--memory", "250MiB", "--quiet", "--report", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status["rc"] == 0
    plan = json.loads((tmp_path / "r.json").read_text())["images"][0]["plan"]
    assert plan["streamed_input"] is True
    assert status["peak"] < target, f"peak RSS {status['peak'] / 2**20:.0f} MiB"
    with tifffile.TiffFile(out / "scan.tif") as tif:
        assert tif.pages[0].shape == (8000, 6400, 3)
        assert tif.pages[0].asarray()[-64:].std() > 10  # the last rows were read and written


@pytest.mark.parametrize("fmt,suffix", [("png", ".png"), ("tiff", ".tif"), ("jpg", ".jpg")])
def test_format_option(tmp_path: Path, fmt: str, suffix: str) -> None:
    src = tmp_path / "s.png"
    _photo().save(src)
    out = _run(src, tmp_path / "o", "--format", fmt)
    assert (out / f"s{suffix}").exists()
    assert io.BytesIO((out / f"s{suffix}").read_bytes()).getbuffer().nbytes > 100
