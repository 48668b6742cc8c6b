"""`upres run` and `upres clean` do their work from one frozen request, as the typer commands
build it: the same request gives the same files, and a usage error still exits 2."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image

import upres
from upres.cleaning.mask_source import MaskSource
from upres.cli.batch_files import BatchFiles
from upres.cli.commands.clean import CleanRequest, clean_batch
from upres.cli.commands.run import RunRequest, run_batch
from upres.core.choices import CleanBlend


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(path)
    return path


def _clean_request(src: Path, mask: Path, outdir: Path, report: Path | None = None) -> CleanRequest:
    return CleanRequest(BatchFiles((str(src),), outdir, report=report, quiet=True),
                        str(mask), MaskSource.parse(str(mask)), ("text",), 0.08, None, 2, "telea",
                        None, 0.0, 0.0, CleanBlend.ALPHA, False, None, "ort-cpu", 1, None)


def test_a_run_request_is_frozen_and_runs_the_batch(tmp_path: Path) -> None:
    src = _image(tmp_path / "in" / "a.png")
    request = RunRequest(BatchFiles((str(src),), tmp_path / "o", quiet=True),
                         upres.Settings(scale=2, mode="deterministic", threads=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.ray = "local"  # type: ignore[misc]
    assert run_batch(request) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png", "a.png.json"]
    with Image.open(tmp_path / "o" / "a.png") as out:
        assert out.size == (64, 48)


def test_a_run_request_with_no_inputs_exits_2(tmp_path: Path) -> None:
    request = RunRequest(BatchFiles((str(tmp_path / "none" / "*.png"),), tmp_path / "o", quiet=True),
                         upres.Settings(scale=2, mode="deterministic"))
    with pytest.raises(typer.Exit) as stopped:
        run_batch(request)
    assert stopped.value.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_a_clean_request_cleans_and_refuses_a_report_over_its_mask(tmp_path: Path) -> None:
    src = _image(tmp_path / "in" / "a.png")
    mask = tmp_path / "m.png"
    m = np.zeros((24, 32), np.uint8)
    m[8:12, 4:20] = 255
    Image.fromarray(m).save(mask)
    assert clean_batch(_clean_request(src, mask, tmp_path / "o")) == 0
    assert (tmp_path / "o" / "a.png").is_file()
    with pytest.raises(typer.Exit) as stopped:
        clean_batch(_clean_request(src, mask, tmp_path / "o2", report=mask))
    assert stopped.value.exit_code == 2
    assert not (tmp_path / "o2").exists()
