"""`upres bench`: contenders, seams, skips, the GEMM peak probe, reports and the command.

Tiny sizes and one thread throughout: these check that the bench measures the right things, not
how fast anything is (one thread also keeps torch's OpenMP pool from stalling on a busy CI box).
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import typer
from support import dataset
from typer.testing import CliRunner

from upres.bench import eager, opencv_contenders, plot
from upres.bench.contender import BenchContext, ContenderSpec
from upres.bench.contenders import build
from upres.bench.markdown import render
from upres.bench.opencv_contenders import BicubicContender
from upres.bench.peak import measure_peak
from upres.bench.quality import seam_error, set_psnr
from upres.bench.runner import BenchConfig, BenchResult, contender_specs, run_bench
from upres.cli.commands.bench import bench_command
from upres.core.model import read_info
from upres.runtime.catalog import builtin_path

TINY = {"threads": 1, "image_size": 40, "image_count": 2, "passes": 2, "warmup": 1,
        "seam_size": 0, "sets": (), "gemm_size": 64, "gemm_runs": 1, "isolate": False,
        "hybrid": False}
ALWAYS = ("upres-fp32-auto", "upres-fp32-whole", "upres-fp32-tile32", "bicubic")


def tiny(**overrides: object) -> BenchConfig:
    return BenchConfig.quick(**{**TINY, "upres_tile": 32, "eager_tiles": (32,), **overrides})


def test_quick_bench_rows_for_always_present_contenders() -> None:
    cfg = tiny(only=("upres-fp32", "bicubic", "fsrcnn"))
    result = run_bench(cfg)
    rows = {r.key: r for r in result.rows}
    assert set(ALWAYS) <= set(rows)
    for key in ALWAYS:
        row = rows[key]
        assert row.status == "ok", row.reason
        assert row.mp_s is not None and row.mp_s.median > 0 and row.mp_s.n == 2
        assert row.p50_ms is not None and 0 < row.p50_ms <= row.p95_ms  # type: ignore[operator]
    # FSRCNN runs or says why not (no peers folder / no opencv-contrib), never crashes the run.
    assert rows["fsrcnn"].status in ("ok", "skipped")
    assert rows["fsrcnn"].status == "ok" or rows["fsrcnn"].reason
    assert result.failed == 0
    assert result.peak["fp32"].median > 0 and result.peak["int8"].median > 0
    flops = read_info(builtin_path("coarse-x4")).flops_per_pixel
    upres = rows["upres-fp32-auto"]
    assert upres.flops_per_pixel == flops and upres.gflops is not None
    assert upres.peak_fraction is not None and upres.peak_fraction > 0


def test_default_contenders_cover_the_issue() -> None:
    keys = [s.key for s in contender_specs(BenchConfig.full())]
    assert keys[:4] == ["upres-fp32-auto", "upres-fp32-whole", "upres-fp32-tile256", "upres-int8-auto"]
    assert {"eager-tile256", "eager-tile512", "fsrcnn", "espcn", "bicubic"} <= set(keys)
    assert BenchConfig.full().sets == ("Set5", "Set14")


def test_seams_upres_exact_eager_pad10_not() -> None:
    pytest.importorskip("torch")
    # The pad-10 loop can only show seams on a model that sees further than 10 px.
    assert read_info(builtin_path("coarse-x4")).receptive_field > 10
    specs = [ContenderSpec("upres", {"tile": 32}, "upres-tile32"),
             ContenderSpec("eager", {"tile": 32, "tile_pad": 10}, "eager-tile32")]
    result = run_bench(tiny(passes=1, seam_size=80, gemm_size=0), specs=specs)
    ours, theirs = result.row("upres-tile32"), result.row("eager-tile32")
    assert ours is not None and theirs is not None
    assert ours.status == "ok" and theirs.status == "ok", (ours.reason, theirs.reason)
    assert ours.seam_tiles == 9 and theirs.seam_tiles == 9
    assert ours.seam_max is not None and ours.seam_max <= 1
    assert theirs.seam_max is not None and theirs.seam_max > 0 and theirs.seam_mean > 0


def test_missing_dependencies_are_skipped_with_a_reason(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(eager, "torch_missing", lambda: "torch is not installed (test)")
    monkeypatch.delattr(cv2, "dnn_superres", raising=False)
    monkeypatch.setattr("upres.runtime.catalog.WEIGHTS_DIR", tmp_path)  # no INT8 model there
    (tmp_path / "FSRCNN_x4.pb").write_bytes(b"")  # present, but no dnn_superres to run it
    specs = [ContenderSpec("eager", {"tile": 32}, "eager"),
             ContenderSpec("dnn_superres", {"model": "FSRCNN"}, "fsrcnn"),
             ContenderSpec("dnn_superres", {"model": "ESPCN"}, "espcn"),
             ContenderSpec("upres", {"precision": "int8"}, "int8"),
             ContenderSpec("bicubic", {}, "bicubic")]
    result = run_bench(tiny(peers=tmp_path, gemm_size=0), specs=specs)
    rows = {r.key: r for r in result.rows}
    assert rows["bicubic"].status == "ok"
    for key, words in (("eager", "torch"), ("fsrcnn", "opencv-contrib"), ("espcn", "not found"),
                       ("int8", "int8")):
        assert rows[key].status == "skipped", key
        assert words in rows[key].reason, rows[key].reason
    assert result.failed == 0
    no_peers = build(ContenderSpec("dnn_superres"), BenchContext(threads=1, peers=None))
    assert "peers" in (no_peers.available() or "")


def test_an_opencv_without_tensorflow_reader_skips_dnn_superres(monkeypatch, tmp_path) -> None:
    # OpenCV 5 reads no TensorFlow graphs: FSRCNN_x4.pb is skipped with that reason, not crashed.
    monkeypatch.setattr(opencv_contenders, "_tensorflow_reader", lambda: None)
    if not hasattr(cv2, "dnn_superres"):
        monkeypatch.setattr(cv2, "dnn_superres", object(), raising=False)
    (tmp_path / "FSRCNN_x4.pb").write_bytes(b"")
    contender = build(ContenderSpec("dnn_superres", {"model": "FSRCNN"}),
                      BenchContext(threads=1, peers=tmp_path))
    assert "TensorFlow" in (contender.available() or "")
    assert opencv_contenders.tf_conv_flops_per_pixel(tmp_path / "FSRCNN_x4.pb", 4) is None


def test_a_crashing_contender_is_reported_not_raised(monkeypatch) -> None:
    def boom(self: BicubicContender, img: np.ndarray) -> np.ndarray:
        raise RuntimeError("kaputt")

    specs = [ContenderSpec("bicubic", {}, "a"), ContenderSpec("upres", {"tile": 0}, "b")]
    monkeypatch.setattr(BicubicContender, "upscale", boom)
    result = run_bench(tiny(gemm_size=0, warmup=0), specs=specs)
    assert result.row("a").status == "failed" and "kaputt" in result.row("a").reason  # type: ignore[union-attr]
    assert result.row("b").status == "ok"  # type: ignore[union-attr]


def test_worker_process_reports_its_own_peak_rss(tmp_path) -> None:
    specs = [ContenderSpec("bicubic", {}, "bicubic"),
             ContenderSpec("dnn_superres", {"model": "ESPCN"}, "espcn")]
    result = run_bench(tiny(isolate=True, gemm_size=0, peers=tmp_path), specs=specs)
    row = result.row("bicubic")
    assert row is not None and row.status == "ok", row.reason if row else None
    assert row.peak_rss_mib is not None and row.peak_rss_mib > 10
    assert result.row("espcn").status == "skipped"  # type: ignore[union-attr]


def test_peak_probe_positive() -> None:
    peak = measure_peak(threads=1, n=64, runs=2)
    assert peak["fp32"].median > 0 and peak["int8"].median > 0


def test_seam_error_levels() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 3
    assert seam_error(a, b) == (3.0, 3 / 48)


@pytest.mark.parametrize("denoise", ["0", "auto"])
def test_bench_psnr_is_upres_eval_psnr(denoise: str) -> None:
    from upres.degraded_eval import chain_upscale, evaluate_degraded, summary
    from upres.runtime.chain_factory import build_chain
    from upres.runtime.denoise import DenoiseSetting

    folder = dataset("Set5")
    upres = build(ContenderSpec("upres", {"tile": 0}), BenchContext(threads=1, denoise=denoise))
    upres.load()
    setup = build_chain("faithful", 4, threads=1, denoise=DenoiseSetting.parse(denoise))
    expected = summary(evaluate_degraded(folder, 4, "clean", chain_upscale(setup)))
    assert set_psnr(upres.upscale, folder, 4) == pytest.approx(expected["psnr"], abs=1e-9)


def test_pareto_front_and_labels() -> None:
    pts = [(1.0, 3.0), (2.0, 2.0), (0.5, 1.0), (3.0, 1.0), (2.0, 1.5)]
    assert plot.pareto_front(pts) == [0, 1, 3]
    offsets = plot.label_offsets([30.0, 30.0, 30.02, 28.0])
    assert len({offsets[0], offsets[1], offsets[2]}) == 3  # same PSNR: labels stacked apart


def test_result_json_markdown_and_plot(tmp_path, monkeypatch) -> None:
    result = run_bench(tiny(only=("upres-fp32-whole", "bicubic")))
    again = BenchResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again.to_json() == result.to_json()
    text = render(result, "python benchmarks/run_bench.py --quick", "bench_pareto.png")
    assert "| upres fp32 whole |" in text and "python benchmarks/run_bench.py" in text
    assert "## Targets" in text and "GEMM peak" in text
    monkeypatch.setattr(plot, "matplotlib_missing", lambda: "plot skipped: matplotlib (test)")
    assert "matplotlib" in (plot.pareto_plot(result, tmp_path / "p.png") or "")
    assert not (tmp_path / "p.png").exists()


def test_bench_command_registers_and_exits_with_its_code(tmp_path) -> None:
    app = typer.Typer()
    app.command("bench")(bench_command)

    @app.command()
    def other() -> None:  # a second command, so `bench` is a subcommand as in upres.cli
        ...

    out = tmp_path / "bench.json"
    args = ["bench", "--in-process", "--only", "bicubic", "--size", "32", "--repeats", "2",
            "--peak-size", "64", "--threads", "1", "--json", str(out),
            "--datasets", str(tmp_path), "--peers", str(tmp_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [r["key"] for r in data["rows"]] == ["bicubic"]
    assert data["rows"][0]["mp_s"]["median"] > 0
    assert CliRunner().invoke(app, ["bench", "--threads", "-1"]).exit_code == 2


def test_bench_without_torch_contenders_never_imports_torch(tmp_path) -> None:
    # The runtime must not need torch: only the eager contender (in its own worker) imports it.
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from upres.cli.commands.bench import bench_main\n"
        "rc = bench_main(only=['bicubic', 'upres-fp32-whole'], size=32, repeats=1, peak_size=0,\n"
        f"               threads=1, in_process=True, datasets=Path({str(tmp_path)!r}))\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
