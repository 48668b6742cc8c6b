"""Outputs too large for --memory are streamed as BigTIFF under the .tif name: that name must never
be another job's output or an input, whatever order the images run in and whatever a resumed run
finds on disk.

Streaming is forced for chosen inputs (the planner's own choice needs outputs of hundreds of MB,
as tests/test_run_formats.py measures): the plan is the real one with ``streaming`` set, so the
image goes through the real BigTIFF writer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

from upres.batch.planning import BatchPlanner
from upres.cli import app
from upres.runtime.inputs import InputError, collect_jobs

runner = CliRunner()
FAST = ("--mode", "deterministic", "--scale", "2")


def _crop(path: Path, box: tuple[int, int, int, int], fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop(box).save(path, format=fmt)
    return path


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch):
    """Names of inputs whose outputs are streamed as if too large for --memory."""
    names: set[str] = set()
    real = BatchPlanner.open_planned

    def open_planned(self: BatchPlanner, path: Path):
        image, plan = real(self, path)
        return image, dataclasses.replace(plan, streaming=True) if path.name in names else plan

    monkeypatch.setattr(BatchPlanner, "open_planned", open_planned)
    return names


def _run(*args: str) -> tuple[int, str, dict]:
    report = Path(args[args.index("-o") + 1]).parent / "report.json"
    result = runner.invoke(app, ["run", *args, *FAST, "--quiet", "--report", str(report)])
    return result.exit_code, result.output, json.loads(report.read_text())


def _tif_pixels(path: Path) -> np.ndarray:
    return tifffile.imread(path)


def test_streamed_name_of_another_jobs_output_fails_that_image_in_every_run(tmp_path: Path,
                                                                            stream: set[str]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _crop(src / "a.png", (0, 0, 64, 48))
    _crop(src / "a.tif", (50, 30, 90, 60))  # another photo, another size
    reference = tmp_path / "ref"
    assert runner.invoke(app, ["run", str(src / "a.tif"), "-o", str(reference), *FAST, "--quiet"]
                         ).exit_code == 0
    stream.add("a.png")
    for attempt in (1, 2):
        code, text, report = _run(str(src), "-o", str(out))
        assert code == 1, text
        failures = [line for line in text.splitlines() if line.startswith("failed:")]
        assert len(failures) == 1, text
        # One line naming both images and the name they would share.
        assert str(src / "a.png") in failures[0] and str(src / "a.tif") in failures[0], failures
        assert str(out / "a.tif") in failures[0] and "--memory" in failures[0], failures
        expected = {"done": 1, "skipped": 0, "failed": 1} if attempt == 1 else \
            {"done": 0, "skipped": 1, "failed": 1}
        assert report["counts"] == expected, (attempt, report["counts"])
        # out/a.tif is a.tif's upscale, its sidecar says so, and nothing is under a.png's names.
        assert np.array_equal(_tif_pixels(out / "a.tif"), _tif_pixels(reference / "a.tif"))
        record = json.loads((out / "a.tif.json").read_text())
        assert record["input"]["path"] == str(src / "a.tif")
        assert sorted(p.name for p in out.iterdir()) == ["a.tif", "a.tif.json"]


def test_identical_inputs_never_take_each_others_streamed_output(tmp_path: Path,
                                                                 stream: set[str]) -> None:
    """a.tif holding the very bytes of a.png has the same hash: its finished output, under the
    name a.png would stream to, must not count as a.png's on resume."""
    src, out = tmp_path / "in", tmp_path / "out"
    _crop(src / "a.png", (0, 0, 64, 48))
    (src / "a.tif").write_bytes((src / "a.png").read_bytes())  # decoded by content: a PNG
    stream.add("a.png")
    assert _run(str(src), "-o", str(out))[2]["counts"] == {"done": 1, "skipped": 0, "failed": 1}
    code, text, report = _run(str(src), "-o", str(out))
    assert code == 1 and report["counts"] == {"done": 0, "skipped": 1, "failed": 1}, text
    assert "a.png" in report["images"][0]["source"] and report["images"][0]["status"] == "failed"


def test_two_images_streamed_to_one_name_the_first_in_order_keeps_it(tmp_path: Path,
                                                                      stream: set[str]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _crop(src / "a.jpg", (0, 0, 64, 48), "JPEG")
    _crop(src / "a.png", (50, 30, 90, 60))
    stream.update({"a.jpg", "a.png"})  # outputs a.jpg and a.png: both would stream to a.tif
    for attempt in (1, 2):
        code, text, report = _run(str(src), "-o", str(out))
        assert code == 1, text
        by_name = {Path(i["source"]).name: i for i in report["images"]}
        assert by_name["a.jpg"]["status"] == ("done" if attempt == 1 else "skipped")
        assert by_name["a.png"]["status"] == "failed"
        assert f"{src / 'a.jpg'} is streamed there" in by_name["a.png"]["error"]
        record = json.loads((out / "a.tif.json").read_text())
        assert record["input"]["path"] == str(src / "a.jpg")


def test_a_streamed_output_without_a_clash_is_unchanged(tmp_path: Path, stream: set[str]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _crop(src / "a.png", (0, 0, 64, 48))
    _crop(src / "b.tif", (50, 30, 90, 60))
    stream.add("a.png")
    code, text, report = _run(str(src), "-o", str(out))
    assert code == 0 and report["counts"]["done"] == 2, text
    assert _tif_pixels(out / "a.tif").shape == (96, 128, 3)
    assert _run(str(src), "-o", str(out))[2]["counts"] == {"done": 0, "skipped": 2, "failed": 0}


def test_collect_jobs_marks_streamed_name_clashes(tmp_path: Path) -> None:
    src = tmp_path / "in"
    for name in ("a.png", "a.tif", "b.jpg", "b.png", "c.png"):
        _crop(src / name, (0, 0, 8, 8), "PNG")
    jobs = {job.source.name: job for job in collect_jobs([str(src)], tmp_path / "out")}
    assert jobs["a.png"].stream_clash == f"that is the output of {src / 'a.tif'}"
    assert jobs["a.tif"].stream_clash == ""  # a TIFF output streams under its own name
    assert jobs["b.jpg"].stream_clash == "" and jobs["c.png"].stream_clash == ""
    assert jobs["b.png"].stream_clash == f"{src / 'b.jpg'} is streamed there"


def test_an_output_onto_another_input_is_refused(tmp_path: Path) -> None:
    """`upres run src out/sub/c.png -o out`: src/sub/c.png's output is out/sub/c.png, an input
    of the same batch (given by name, so it is not skipped as an earlier output)."""
    src, out = tmp_path / "src", tmp_path / "out"
    _crop(src / "sub" / "c.png", (0, 0, 16, 16))
    mine = _crop(out / "sub" / "c.png", (20, 20, 36, 36))
    with pytest.raises(InputError, match="would overwrite the input"):
        collect_jobs([str(src), str(mine)], out)
