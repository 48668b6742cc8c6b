"""`upres run` end to end through the real CLI, real files and real ONNX Runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

from upres.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args, "--quiet"])
    return result.exit_code, result.output


def _small(tmp: Path, name: str = "a.png", size: tuple[int, int] = (48, 40)) -> Path:
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, *size)).save(tmp / name)
    return tmp / name


def test_run_sample_writes_output_and_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = _run(str(SAMPLE), "-o", str(out), "--report", str(tmp_path / "r.json"))
    assert code == 0, text
    result = out / "sample.png"
    with Image.open(result) as im:
        assert im.size == (960, 640)
    sidecar = json.loads((out / "sample.png.json").read_text())
    assert sidecar["settings"]["mode"] == "hybrid" and sidecar["settings"]["scale"] == 4
    assert len(sidecar["input"]["sha256"]) == 64
    assert sidecar["plan"]["exact"] is True
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backend"] == "ort-cpu" and report["counts"]["done"] == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", ["deterministic", "faithful", "hybrid"])
def test_same_input_same_bytes_and_tiling_invisible(tmp_path: Path, mode: str) -> None:
    src = _small(tmp_path, size=(90, 70))
    outs = []
    for i, tile in enumerate(["0", "0", "32"]):
        code, text = _run(str(src), "-o", str(tmp_path / f"o{i}"), "--mode", mode, "--tile", tile,
                          "--scale", "2")
        assert code == 0, text
        outs.append(tmp_path / f"o{i}" / "a.png")
    assert outs[0].read_bytes() == outs[1].read_bytes()
    a = np.asarray(Image.open(outs[0])).astype(int)
    b = np.asarray(Image.open(outs[2])).astype(int)
    assert np.abs(a - b).max() <= 1


def test_resume_skips_finished_and_redoes_changed(tmp_path: Path) -> None:
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    _small(src_dir, "a.png")
    _small(src_dir, "b.png", (30, 30))
    out = tmp_path / "out"
    assert _run(str(src_dir), "-o", str(out), "--mode", "faithful")[0] == 0
    before = (out / "a.png").stat().st_mtime_ns
    (out / "b.png").write_bytes(b"torn")  # a damaged output must be redone
    result = runner.invoke(app, ["run", str(src_dir), "-o", str(out), "--mode", "faithful",
                                 "--report", str(tmp_path / "r.json"), "--quiet"])
    assert result.exit_code == 0
    counts = json.loads((tmp_path / "r.json").read_text())["counts"]
    assert counts == {"done": 1, "skipped": 1, "failed": 0}
    assert (out / "a.png").stat().st_mtime_ns == before
    assert (out / "b.png").read_bytes()[:4] == b"\x89PNG"
    # Other settings: not finished, redone.
    assert _run(str(src_dir), "-o", str(out), "--mode", "faithful", "--scale", "2")[0] == 0
    with Image.open(out / "a.png") as im:
        assert im.size == (96, 80)


def test_bad_inputs_fail_alone(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _small(src, "good.png")
    (src / "empty.png").write_bytes(b"")
    (src / "text.png").write_text("not an image")
    data = (src / "good.png").read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(src), "-o", str(out), "--mode", "faithful",
                                 "--quiet"])
    assert result.exit_code == 1
    for name in ("empty.png", "text.png", "truncated.png"):
        assert name in result.output
        assert not (out / name).exists()
    assert (out / "good.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good.png.json"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    src = _small(tmp_path)
    assert _run(str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"))[0] == 2
    assert _run(str(src), "-o", str(tmp_path / "o"), "--scale", "3")[0] == 2
    assert _run(str(src), "-o", str(tmp_path / "o"), "--mode", "magic")[0] == 2
    assert _run(str(src), "-o", str(tmp_path / "o"), "--memory", "lots")[0] == 2
    assert _run(str(src), "-o", str(tmp_path / "o"), "--tile", "big")[0] == 2
    assert _run(str(src), "-o", str(tmp_path / "o"), "--texture", "2")[0] == 2


def test_foreign_model_is_probed_and_tiles_exactly(tmp_path: Path) -> None:
    import onnx

    from upres.runtime.catalog import WEIGHTS_DIR

    foreign = onnx.load(str(WEIGHTS_DIR / "coarse-x2.onnx"))
    del foreign.metadata_props[:]
    path = tmp_path / "someone-elses-x2.onnx"
    onnx.save(foreign, str(path))
    inspect = runner.invoke(app, ["inspect", str(path)])
    assert inspect.exit_code == 0 and "probed" in inspect.output
    assert "15" in inspect.output  # the receptive field upres's own export measured
    src = _small(tmp_path, size=(70, 60))
    a = _run(str(src), "-o", str(tmp_path / "a"), "--model", str(path), "--mode", "faithful",
             "--scale", "2", "--tile", "0")
    b = _run(str(src), "-o", str(tmp_path / "b"), "--model", str(path), "--mode", "faithful",
             "--scale", "2", "--tile", "24")
    assert a[0] == 0 and b[0] == 0, a[1] + b[1]
    x = np.asarray(Image.open(tmp_path / "a" / "a.png")).astype(int)
    y = np.asarray(Image.open(tmp_path / "b" / "a.png")).astype(int)
    assert np.abs(x - y).max() <= 1


def test_run_does_not_import_torch(tmp_path: Path) -> None:
    src = _small(tmp_path)
    code = (
        "import sys; from upres.cli import app\n"
        "try:\n    app(['run', sys.argv[1], '-o', sys.argv[2], '--quiet'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "o")], check=True)


def test_run_path_imports_only_what_it_uses(tmp_path: Path) -> None:
    """The start-up of `upres run` (the `upres` entry point, as a user starts it) loads neither
    onnx, the calibration or export code, nor the other commands' modules."""
    src = _small(tmp_path)
    code = (
        "import sys; sys.argv = ['upres', 'run', sys.argv[1], '-o', sys.argv[2], '--quiet',\n"
        "                        '--mode', 'faithful']\n"
        "from upres.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "unwanted = [m for m in sys.modules if m in ('onnx', 'torch', 'ml_dtypes', 'pydantic')\n"
        "            or m.startswith(('upres.calibration', 'upres.export.onnx_export',\n"
        "                             'upres.export.graph_stats', 'upres.bench', 'upres.serving',\n"
        "                             'upres.cleaning', 'upres.gpu', 'upres.models'))]\n"
        "assert not unwanted, unwanted\n"
    )
    subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "o")], check=True)


def test_a_users_model_runs_alone_unless_hybrid_is_asked_for(tmp_path: Path) -> None:
    from upres.runtime.catalog import WEIGHTS_DIR

    src = _small(tmp_path)
    model = str(WEIGHTS_DIR / "coarse-x2.onnx")
    assert _run(str(src), "-o", str(tmp_path / "a"), "--model", model, "--scale", "2")[0] == 0
    record = json.loads((tmp_path / "a" / "a.png.json").read_text())
    assert record["settings"]["mode"] == "faithful"
    assert list(record["settings"]["models"]) == ["coarse"]
    assert _run(str(src), "-o", str(tmp_path / "b"), "--model", model, "--scale", "2",
                "--mode", "hybrid")[0] == 0
    record = json.loads((tmp_path / "b" / "a.png.json").read_text())
    assert record["settings"]["mode"] == "hybrid" and "refine" in record["settings"]["models"]
    assert _run(str(src), "-o", str(tmp_path / "c"), "--scale", "2")[0] == 0  # upres's own: hybrid
    assert json.loads((tmp_path / "c" / "a.png.json").read_text())["settings"]["mode"] == "hybrid"


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_compression_changes_size_not_pixels(tmp_path: Path, fmt: str) -> None:
    src = _small(tmp_path, size=(96, 80))
    sizes = {}
    pixels = {}
    for level in ("fast", "default", "small"):
        out = tmp_path / level
        code, text = _run(str(src), "-o", str(out), "--scale", "2", "--mode", "faithful",
                          "--format", fmt, "--compression", level)
        assert code == 0, text
        name = "a.png" if fmt == "png" else "a.tif"
        sizes[level] = (out / name).stat().st_size
        pixels[level] = np.asarray(Image.open(out / name))
        record = json.loads((out / f"{name}.json").read_text())
        assert record["settings"]["compression"] == level
    assert np.array_equal(pixels["fast"], pixels["default"])
    assert np.array_equal(pixels["fast"], pixels["small"])
    assert sizes["small"] <= sizes["default"] <= sizes["fast"]
    assert _run(str(src), "-o", str(tmp_path / "x"), "--compression", "best")[0] == 2


def test_resume_redoes_outputs_of_another_compression(tmp_path: Path) -> None:
    src = _small(tmp_path)
    args = (str(src), "-o", str(tmp_path / "o"), "--scale", "2", "--mode", "faithful")
    assert _run(*args)[0] == 0
    assert "1 skipped" in runner.invoke(app, ["run", *args]).output
    redone = runner.invoke(app, ["run", *args, "--compression", "fast"])
    assert redone.exit_code == 0 and "1 done" in redone.output, redone.output


def test_outputs_stay_inside_outdir(tmp_path: Path) -> None:
    nested = tmp_path / "in" / "sub"
    nested.mkdir(parents=True)
    _small(nested, "x.png")
    out = tmp_path / "out"
    assert _run(str(tmp_path / "in"), "-o", str(out), "--mode", "deterministic")[0] == 0
    assert (out / "sub" / "x.png").exists()
    link = tmp_path / "link.png"
    os.symlink(nested / "x.png", link)
    assert _run(str(link), "-o", str(out), "--mode", "deterministic")[0] == 0
    assert (out / "link.png").exists()
    assert not (tmp_path / "x.png").exists()
    shutil.rmtree(out)


def test_every_command_has_working_help() -> None:
    # Help text is rich markup: a stray "[/...]" in an option's help crashes --help.
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups if g.name]
    assert {"run", "clean", "train", "build"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
