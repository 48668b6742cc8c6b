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


def test_an_image_file_name_as_output_is_refused_not_made_a_folder(tmp_path: Path) -> None:
    src = _small(tmp_path)
    code, output = _run(str(src), "-o", str(tmp_path / "out.PNG"))
    assert code == 2 and "--output" in output and "folder" in output
    assert not (tmp_path / "out.PNG").exists()
    (tmp_path / "made.png").mkdir()  # a folder that exists is a folder, whatever its name
    assert _run(str(src), "-o", str(tmp_path / "made.png"))[0] == 0
    assert (tmp_path / "made.png" / "a.png").is_file()


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


def _modules_after_run(tmp_path: Path, *options: str, entry: str = "main") -> set[str]:
    """sys.modules after one `upres run` in a fresh interpreter, started through the `upres`
    entry point (``main``) or the full typer ``app``."""
    src = _small(tmp_path)
    out = tmp_path / f"o-{entry}"
    code = (
        "import json, sys\n"
        f"from upres.cli import {entry}\n"
        "args = ['run', sys.argv[1], '-o', sys.argv[2], '--quiet', *sys.argv[3:]]\n"
        "try:\n"
        "    if '" + entry + "' == 'main':\n"
        "        sys.argv = ['upres', *args]\n"
        "        main()\n"
        "    else:\n"
        "        app(args)\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(src), str(out), *options], check=True,
                          capture_output=True, text=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_run_does_not_import_torch(tmp_path: Path) -> None:
    assert "torch" not in _modules_after_run(tmp_path, entry="app")  # hybrid: both networks


def test_run_path_imports_only_what_it_uses(tmp_path: Path) -> None:
    """The start-up of `upres run` (the `upres` entry point, as a user starts it) loads neither
    onnx, the calibration or export code, nor the other commands' modules; a quiet run of PNGs
    neither rich (it prints nothing) nor tifffile (no TIFF read or written)."""
    # The first faithful run on a machine cuts the graph's tail with onnx and caches the result
    # (runtime/tail.py); the run measured here is a later one, as a user's runs are.
    _modules_after_run(tmp_path, "--mode", "faithful")
    loaded = _modules_after_run(tmp_path, "--mode", "faithful", "--overwrite")
    unwanted = [m for m in loaded if m in ("onnx", "torch", "ml_dtypes", "pydantic", "rich",
                                           "tifffile")
                or m.startswith(("upres.calibration", "upres.export.onnx_export",
                                 "upres.export.graph_stats", "upres.bench", "upres.serving",
                                 "upres.cleaning", "upres.gpu", "upres.models"))]
    assert not unwanted, unwanted


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
        library = {"png": {"fast": "isal 1", "default": "isal 2", "small": "zlib-ng 6"},
                   "tiff": {"fast": "libdeflate 1", "default": "libdeflate 3",
                            "small": "libdeflate 8"}}[fmt][level]
        assert record["output"]["encoder"].startswith(library)
        assert set(record["metadata"]) == {"kept", "dropped"}
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


# -- usage errors and what a script reads ----------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_pixels_below_one_is_a_usage_error(tmp_path: Path, value: str) -> None:
    src = _small(tmp_path)
    code, text = _run(str(src), "-o", str(tmp_path / "o"), "--max-pixels", value)
    assert code == 2, text
    assert f"--max-pixels must be a positive number of pixels, got {value}" in text
    assert not (tmp_path / "o").exists()
    assert "positive" in runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output


def test_report_where_the_batch_reads_or_writes_is_refused(tmp_path: Path) -> None:
    src = _small(tmp_path)
    before = src.read_bytes()
    out = tmp_path / "o"
    for report in (src, out / "a.png", out / "a.png.json", out / "a.tif", out / ".upres.lock", tmp_path):
        code, text = _run(str(src), "-o", str(out), "--report", str(report))
        assert code == 2 and "--report" in text, (report, text)
    assert src.read_bytes() == before  # the input was not replaced by JSON
    assert not out.exists() or not any(out.iterdir())
    # Anywhere else, OUTDIR included, is fine.
    code, text = _run(str(src), "-o", str(out), "--report", str(out / "report.json"))
    assert code == 0, text
    assert json.loads((out / "report.json").read_text())["counts"]["done"] == 1


def test_long_file_names_work_and_temp_names_are_short(tmp_path: Path) -> None:
    """A 240-byte name (the filesystem takes 255): its output, its sidecar (+5 bytes) and the
    report are written; the temporary names beside them are of bounded length."""
    name = "s" * 236 + ".png"
    src = _small(tmp_path, name)
    out = tmp_path / "o"
    report = tmp_path / ("r" * 235 + ".json")
    code, text = _run(str(src), "-o", str(out), "--mode", "deterministic", "--scale", "2",
                      "--report", str(report))
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == [name, name + ".json"]
    assert json.loads(report.read_text())["counts"]["done"] == 1
    from upres.core.atomic import atomic_output

    with atomic_output(out / ("t" * 250 + ".json")) as tmp:
        assert len(tmp.name) <= 36 and tmp.parent == out
        tmp.write_text("{}")


def test_inputs_named_like_temp_files_are_never_swept(tmp_path: Path) -> None:
    """Only upres's own temporaries are removed at the start of a run: not an input of the
    batch, whatever its name, nor a name an earlier version used."""
    out = tmp_path / "o"
    out.mkdir()
    dead = 0x7FFFFFFE  # above any pid_max
    legacy = _small(out, f".a.png.{dead}.0badf00d.tmp.png")
    current = _small(out, f".upres-{dead:08x}0badf00d.tmp.png")
    stale = out / f".upres-{dead:08x}12345678.tmp.png"
    stale.write_bytes(b"half an image")
    args = (str(legacy), str(current), "-o", str(out), "--mode", "deterministic", "--scale", "2",
            "--format", "tiff", "--report", str(tmp_path / "r.json"))
    code, text = _run(*args)
    assert code == 0, text
    assert legacy.is_file() and current.is_file() and not stale.exists()
    outputs = [legacy.with_suffix(".tif"), current.with_suffix(".tif")]
    assert all(p.is_file() for p in outputs)
    # An output named like a temporary is the batch's own: kept, and skipped by the next run.
    assert _run(*args)[0] == 0
    assert all(p.is_file() for p in outputs)
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["skipped"] == 2


def test_error_lines_stay_whole_at_any_terminal_width(tmp_path: Path) -> None:
    """Every error, failure and summary line is one physical line: a script greps for it."""
    deep = tmp_path / ("a-long-folder-name-" * 6) / "and-another-long-folder"
    deep.mkdir(parents=True)
    (deep / "broken-scan-with-a-long-name.png").write_bytes(b"not an image")
    good = _small(deep, "fine.png")
    env = {**os.environ, "COLUMNS": "40"}
    proc = subprocess.run([sys.executable, "-m", "upres", "run", str(deep), "-o", str(tmp_path / "o"),
                           "--mode", "deterministic", "--scale", "2"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and str(deep / "broken-scan-with-a-long-name.png") in failed[0], proc.stderr
    summary = [line for line in proc.stdout.splitlines() if line.startswith("1 done")]
    assert len(summary) == 1 and "backend" in summary[0], proc.stdout
    proc = subprocess.run([sys.executable, "-m", "upres", "run", str(good.with_name("missing.png")),
                           "-o", str(tmp_path / "o")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), proc.stderr
    assert str(good.with_name("missing.png")) in errors[0]


# -- what a folder or a glob yields -----------------------------------------------------------------


def test_a_folder_yields_every_format_that_decodes_by_name(tmp_path: Path) -> None:
    from PIL import Image as PillowImage

    from upres.runtime.inputs import INPUT_SUFFIXES

    PillowImage.init()
    opened = {ext for ext, fmt in PillowImage.registered_extensions().items() if fmt in PillowImage.OPEN}
    assert opened >= INPUT_SUFFIXES  # nothing is taken from a folder that upres cannot decode
    src = tmp_path / "in"
    src.mkdir()
    with PillowImage.open(SAMPLE) as im:
        rgb = im.convert("RGB").crop((0, 0, 40, 32))
    for i, suffix in enumerate((".avif", ".jp2", ".jfif", ".ppm", ".pgm", ".j2k", ".tga", ".qoi")):
        rgb.save(src / f"s{i}{suffix}")
    (src / "notes.txt").write_text("not an image")
    report = tmp_path / "r.json"
    code, text = _run(str(src), "-o", str(tmp_path / "o"), "--mode", "deterministic", "--scale", "2",
                      "--report", str(report))
    assert code == 0, text
    assert json.loads(report.read_text())["counts"] == {"done": 8, "skipped": 0, "failed": 0}
    assert (tmp_path / "o" / "s2.jpg").is_file()  # a JFIF is a JPEG: --format same keeps it


def test_rerun_of_a_shell_glob_that_now_matches_outdir_skips_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`upres run * -o upscaled` from inside the scans folder, twice: the second time the shell
    passes `upscaled` too; it is skipped with a note, and the finished images are skipped."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a.png", "b.png"):
        _small(scans, name)
    monkeypatch.chdir(scans)
    fast = ("--mode", "deterministic", "--scale", "2")
    assert _run(*sorted(os.listdir(".")), "-o", "upscaled", *fast)[0] == 0
    star = sorted(os.listdir("."))
    assert star == ["a.png", "b.png", "upscaled"]
    result = runner.invoke(app, ["run", *star, "-o", "upscaled", *fast, "--report", "../r.json"])
    assert result.exit_code == 0, result.output
    assert "note: skipped upscaled" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["skipped"] == 2
    # A recursive glob (quoted, so upres expands it) reaches the outputs themselves: skipped too.
    code, text = _run("**/*.png", "-o", "upscaled", *fast, "--report", "../r.json")
    assert code == 0, text
    assert json.loads((tmp_path / "r.json").read_text())["counts"] == {"done": 0, "skipped": 2,
                                                                      "failed": 0}
    # OUTDIR alone: nothing to do, a usage error.
    code, text = _run("upscaled", "-o", "upscaled", *fast)
    assert code == 2 and "choose another --output folder" in text, text


def test_the_consoles_made_on_first_use_work_where_rich_wants_a_console() -> None:
    from rich.console import Console
    from rich.progress import Progress

    from upres.cli.options import err, out, real_console

    assert isinstance(real_console(err), Console) and isinstance(real_console(out), Console)
    with Progress(console=err) as bar:  # rich's Live enters the console it is given
        bar.update(bar.add_task("x", total=2), completed=2)
    with Progress(console=real_console(err)) as bar:
        bar.update(bar.add_task("y", total=1), completed=1)
