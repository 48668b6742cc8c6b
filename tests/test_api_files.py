"""upres.Upscaler on files and folders: upscale_file writes `upres run`'s bytes and sidecar, map
is `upres run`'s batch (resume, lock, report), and `upres run --json` prints its results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

import upres
from upres.cli import app
from upres.runtime.lock import OutdirLock

runner = CliRunner()


def _image(folder: Path, name: str, size: tuple[int, int] = (40, 32), offset: int = 0) -> Path:
    """A crop of the bundled photo saved with DPI, EXIF and an ICC profile (the metadata a run
    must carry)."""
    from PIL import ImageCms

    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        crop = im.convert("RGB").crop((offset, offset, offset + size[0], offset + size[1]))
    exif = Image.Exif()
    exif[0x010F] = "upres test camera"  # Make
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = folder / name
    crop.save(path, dpi=(300, 300), exif=exif.tobytes(), icc_profile=icc,
              **({"quality": 90} if name.endswith(".jpg") else {}))
    return path


def _sidecar(path: Path) -> dict[str, object]:
    """The sidecar but for what no two runs share, the CLI's included: how long it took and the
    process's RSS (the plan's baseline, and so its total)."""
    record = json.loads(path.with_name(path.name + ".json").read_text())
    record.pop("timings")
    for key in ("baseline", "total"):
        record["plan"]["estimate"].pop(key)
    return record


@pytest.mark.parametrize("name, mode", [("a.png", "hybrid"), ("b.jpg", "faithful"),
                                        ("c.tif", "deterministic")])
def test_upscale_file_writes_the_bytes_and_sidecar_of_upres_run(tmp_path: Path, name: str,
                                                                mode: str) -> None:
    src = _image(tmp_path / "in", name) if not name.endswith(".tif") else None
    if src is None:  # TIFF input: through upres's own writer, with its metadata
        png = _image(tmp_path / "in", "c.png")
        src = tmp_path / "in" / name
        with upres.Upscaler(scale=2, mode="deterministic") as up:
            up.upscale_file(png, src)  # any TIFF with metadata will do
    result = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "cli"), "--scale", "2",
                                 "--mode", mode, "--quiet"])
    assert result.exit_code == 0, result.output
    expected = tmp_path / "cli" / Path(name).with_suffix(Path(name).suffix).name
    dst = tmp_path / "api" / expected.name
    with upres.Upscaler(scale=2, mode=mode) as up:
        done = up.upscale_file(src, dst)
    assert done.status == "done" and Path(done.output) == dst and done.seconds > 0
    assert dst.read_bytes() == expected.read_bytes()
    assert _sidecar(dst) == _sidecar(expected)
    assert _sidecar(dst)["metadata"]["kept"]  # type: ignore[index]


def test_upscale_file_names_the_format_and_resumes(tmp_path: Path) -> None:
    src = _image(tmp_path, "a.png")
    with upres.Upscaler(scale=2, mode="faithful") as up:
        tif = up.upscale_file(src, tmp_path / "out" / "a.TIFF")
        assert Path(tif.output).read_bytes()[:2] in (b"II", b"MM")
        assert _sidecar(Path(tif.output))["settings"]["format"] == "tiff"  # type: ignore[index]
        first = up.upscale_file(src, tmp_path / "out" / "a.png")
        assert _sidecar(Path(first.output))["settings"]["format"] == "same"  # type: ignore[index]
        again = up.upscale_file(src, tmp_path / "out" / "a.png", resume=True)
        assert again.status == "skipped"
        with pytest.raises(upres.SettingsError, match=r"\.png, \.tif"):
            up.upscale_file(src, tmp_path / "out" / "a.bmp")
        with pytest.raises(upres.InputError, match="its own input"):
            up.upscale_file(src, src)
        with pytest.raises(upres.ImageError, match=r"missing\.png"):
            up.upscale_file(tmp_path / "missing.png", tmp_path / "out" / "m.png")
        (tmp_path / "bad.png").write_bytes(b"not a png")
        with pytest.raises(upres.ImageError):
            up.upscale_file(tmp_path / "bad.png", tmp_path / "out" / "bad.png")
        assert not (tmp_path / "out" / "bad.png").exists()


def test_map_is_the_batch_of_upres_run_with_resume(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _image(folder, "a.png")
    _image(folder, "b.png", (30, 26), offset=20)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n torn")
    out = tmp_path / "out"
    errors: list[str] = []
    with upres.Upscaler(scale=2, mode="faithful") as up:
        batch = up.map(folder, out, report=tmp_path / "r.json", on_error=errors.append)
        results = {Path(r.source).name: r for r in batch}
        assert {k: r.status for k, r in results.items()} == \
            {"a.png": "done", "b.png": "done", "broken.png": "failed"}
        assert "broken.png" in results["broken.png"].error and errors == [results["broken.png"].error]
        assert batch.summary.counts() == {"done": 2, "skipped": 0, "failed": 1}
        assert not (out / ".upres.lock").exists()  # let go once the batch ended
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["counts"]["done"] == 2 and len(report["images"]) == 3
        # The same bytes as `upres run` into another folder.
        cli = runner.invoke(app, ["run", str(folder), "-o", str(tmp_path / "cli"), "--scale", "2",
                                  "--mode", "faithful", "--quiet"])
        assert cli.exit_code == 1  # broken.png
        for name in ("a.png", "b.png"):
            assert (out / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
        # Resume: finished outputs are skipped, a damaged one is redone.
        (out / "b.png").write_bytes(b"torn")
        again = {Path(r.source).name: r.status for r in up.map([folder / "a.png", folder / "b.png"], out)}
        assert again == {"a.png": "skipped", "b.png": "done"}
        overwrite = [r.status for r in up.map(folder / "a.png", out, resume=False)]
        assert overwrite == ["done"]


def test_a_batch_stopped_early_lets_go_of_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(3):
        _image(folder, f"{i}.png", (24, 24), offset=10 * i)
    out = tmp_path / "out"
    with upres.Upscaler(scale=2, mode="deterministic") as up:
        with up.map(folder, out, report=tmp_path / "r.json") as batch:
            assert (out / ".upres.lock").exists()  # held from map(), before the first image
            first = next(batch)
            assert first.status == "done"
        assert not (out / ".upres.lock").exists()
        assert batch.summary.interrupted and batch.summary.not_started == 3 - len(batch.summary.results)
        assert json.loads((tmp_path / "r.json").read_text())["interrupted"] is True
        assert list(batch) == []  # closed: nothing more


def test_a_folder_in_use_is_refused_or_waited_for(tmp_path: Path) -> None:
    _image(tmp_path / "in", "a.png")
    out = tmp_path / "out"
    out.mkdir()
    with upres.Upscaler(scale=2, mode="deterministic") as up, OutdirLock(out):
        with pytest.raises(upres.OutdirLocked, match="in use"):
            up.map(tmp_path / "in", out)
        waited: list[tuple[Path, int | None]] = []
        with pytest.raises(upres.OutdirLocked):
            up.map(tmp_path / "in", out, wait=0.3, on_wait=lambda f, pid: waited.append((f, pid)))
        assert len(waited) == 1


def test_closing_the_upscaler_ends_an_open_batch(tmp_path: Path) -> None:
    _image(tmp_path / "in", "a.png")
    _image(tmp_path / "in", "b.png")
    up = upres.Upscaler(scale=2, mode="deterministic")
    batch = up.map(tmp_path / "in", tmp_path / "out")
    up.close()
    with pytest.raises(upres.ClosedError):
        next(batch)
    assert not (tmp_path / "out" / ".upres.lock").exists()


def test_run_json_prints_a_line_per_image_and_a_summary(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _image(folder, "a.png")
    (folder / "empty.png").write_bytes(b"")
    result = runner.invoke(app, ["run", str(folder), "-o", str(tmp_path / "out"), "--scale", "2",
                                 "--mode", "faithful", "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    images, summary = lines[:-1], lines[-1]["summary"]
    assert sorted((Path(r["source"]).name, r["status"]) for r in images) == \
        [("a.png", "done"), ("empty.png", "failed")]
    done = next(r for r in images if r["status"] == "done")
    assert Path(done["output"]).is_file() and done["seconds"] > 0 and done["plan"]["exact"]
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 1}
    assert summary["backend"] == "ort-cpu"
    # Human lines stay on stderr.
    assert "failed:" in result.stderr and "1 done" in result.stderr
    quiet = runner.invoke(app, ["run", str(folder / "a.png"), "-o", str(tmp_path / "out"),
                                "--scale", "2", "--mode", "faithful", "--json", "--quiet"])
    assert quiet.exit_code == 0
    assert [json.loads(line).get("status") for line in quiet.stdout.splitlines()] == ["skipped", None]


def test_float_arrays_round_trip_through_files_as_16_bit(tmp_path: Path) -> None:
    """The API's float output, quantised, is what `upres run` writes for a float TIFF."""
    import tifffile

    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))[:24, :32].astype(np.float32) / 255
    tifffile.imwrite(tmp_path / "f.tif", rgb, photometric="rgb")
    with upres.Upscaler(scale=2, mode="faithful") as up:
        up.upscale_file(tmp_path / "f.tif", tmp_path / "out" / "f.tif")
        from upres.imageio import quantize

        expected = quantize(up.upscale(rgb), 16)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "f.tif"), expected)
