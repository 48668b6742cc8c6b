"""The file-to-file bench: the naive loop's outputs, the derived ratios and targets, the rendering,
and one tiny real run. No assertion depends on the machine's speed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from upres.bench import naive_loop
from upres.bench.file_images import (
    compare_folders,
    png_size,
    synth_photo,
)
from upres.bench.file_report import cells, render_markdown, write_json
from upres.bench.file_rows import (
    COMPUTE,
    FOLDER,
    IMPORTS,
    LARGE,
    NAIVE,
    STARTUP,
    UPRES,
    FileRow,
)
from upres.bench.file_targets import (
    compute_fraction,
    evaluate_targets,
    naive_speedup,
    paired,
)
from upres.bench.files import (
    MODELS,
    Check,
    FileBenchConfig,
    FileBenchResult,
    Spec,
    _repeat_order,
    build_workload,
    run_files,
)
from upres.cli.commands.bench import bench_main

ALL_KEYS = {"naive-fp32", "naive-int8", "upres-fp32", "upres-int8", "compute-fp32", "compute-int8",
            "startup-upres", "startup-imports"}


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, path
    return img


def _direct(model: Path, bgr: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    x = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
    rgb = (np.clip(y, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_naive_loop_writes_what_onnxruntime_computes(tmp_path: Path, precision: str) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    images = {"b.png": synth_photo(0, 21, 17), "a.png": synth_photo(1, 16, 12)}
    for name, img in images.items():
        cv2.imwrite(str(src / name), img)
    (src / "notes.txt").write_text("not an image")
    assert naive_loop.main([str(src), str(dst), "--model", str(MODELS[precision]), "--threads", "1"]) == 0
    assert sorted(p.name for p in dst.iterdir()) == ["a.png", "b.png"]
    for name, img in images.items():
        got = _read(dst / name)
        assert got.shape == (4 * img.shape[0], 4 * img.shape[1], 3)
        np.testing.assert_array_equal(got, _direct(MODELS[precision], img))


def test_naive_loop_names_an_unreadable_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    code = naive_loop.main([str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(MODELS["fp32"])])
    err = capsys.readouterr().err
    assert code == 1 and "cannot read" in err and "broken.png" in err


def _row(key: str, case: str, kind: str, precision: str, seconds: list[float], mp: float = 49.2,
         status: str = "ok") -> FileRow:
    return FileRow(key, key.replace("-", " "), case, kind, precision, mp, seconds, status,
                   "" if status == "ok" else "exit code 1: boom")


def _rows() -> list[FileRow]:
    return [
        _row("naive-fp32", FOLDER, NAIVE, "fp32", [12.0, 11.0, 10.0]),
        _row("upres-fp32", FOLDER, UPRES, "fp32", [6.0, 5.0, 7.0]),
        _row("compute-fp32", FOLDER, COMPUTE, "fp32", [4.8, 4.5, 5.0]),
        _row("naive-int8", FOLDER, NAIVE, "int8", [8.0, 8.0, 8.0]),
        _row("upres-int8", FOLDER, UPRES, "int8", [4.0, 4.0, 4.0]),
        _row("compute-int8", FOLDER, COMPUTE, "int8", [2.0, 2.0, 2.0]),
        _row("large-upres-fp32", LARGE, UPRES, "fp32", [10.0, 10.0, 10.0], mp=48.0),
        _row("large-compute-fp32", LARGE, COMPUTE, "fp32", [7.0, 7.0, 7.0], mp=48.0),
        _row("startup-upres", STARTUP, UPRES, "fp32", [1.0, 1.2, 1.1], mp=0.0123),
        _row("startup-imports", STARTUP, IMPORTS, "", [0.5, 0.5, 0.5], mp=0.0),
    ]


def _result(rows: list[FileRow]) -> FileBenchResult:
    return FileBenchResult(
        config=FileBenchConfig().to_json(),
        machine={"cpu": "Test CPU 9000", "cores": 2, "simd": ["avx2", "fma"], "vnni": False,
                 "versions": {"python": "3.11.0", "numpy": "2.0", "onnxruntime": "1.20", "opencv": "4.10"}},
        threads=2,
        workload={"images": 10, "names": [], "output_mp": 49.152, "large_mp": 48.0, "tiny_mp": 0.0123,
                  "source": "the first 10 images of BSD100 (x)", "sizes": {}},
        rows=rows, checks=[Check("upres run FP32 = naive loop FP32 within 1 level", False,
                                 "max |diff| 3 level(s)")],
        started="2026-01-01 00:00:00 UTC", seconds=123.0, load_before=0.1, load_after=0.2,
        others_cpu_share=0.01, command="python benchmarks/file_bench.py")


def test_derived_ratios_are_taken_run_by_run() -> None:
    rows = _rows()
    by = {r.key: r for r in rows}
    frac = compute_fraction(rows, by["upres-fp32"])  # 4.8/6, 4.5/5, 5/7
    assert frac is not None and frac.median == pytest.approx(0.8)
    assert (frac.low, frac.high) == (pytest.approx(5.0 / 7.0), pytest.approx(0.9))
    fast = naive_speedup(rows, by["upres-fp32"])  # 12/6, 11/5, 10/7
    assert fast is not None and fast.median == pytest.approx(2.0)
    assert naive_speedup(rows, by["naive-fp32"]) is None  # the baseline is not compared with itself
    assert compute_fraction(rows, by["compute-fp32"]) is None
    assert compute_fraction(rows, by["large-upres-fp32"]).median == pytest.approx(0.7)  # type: ignore[union-attr]
    assert by["upres-fp32"].mp_s.median == pytest.approx(49.2 / 6.0)  # type: ignore[union-attr]


def test_targets_from_a_hand_made_result() -> None:
    targets = {t.name: t for t in evaluate_targets(_rows(), 48.0)}
    expect = {
        "upres FP32 end to end vs bare compute": (0.80, True),
        "upres INT8 end to end vs bare compute": (0.50, False),
        "upres FP32 vs the naive loop": (2.00, True),
        "upres INT8 vs the naive loop": (2.00, True),
        "upres INT8 vs upres FP32, end to end": (1.50, False),
        "one 48 MP output vs bare compute (FP32)": (0.70, True),
        "start-up: upres run on a tiny image vs bare imports": (2.20, False),
    }
    assert set(targets) == set(expect)
    for name, (value, met) in expect.items():
        assert targets[name].met is met, name
        assert targets[name].value.startswith(f"{value:.2f}x ("), name
    assert targets["start-up: upres run on a tiny image vs bare imports"].goal == "<= 2x"


def test_targets_not_measured_when_a_contender_failed_or_is_absent() -> None:
    rows = [r for r in _rows() if r.case != LARGE]
    rows[1] = _row("upres-fp32", FOLDER, UPRES, "fp32", [], status="failed")
    targets = {t.name: t for t in evaluate_targets(rows, None)}
    for name in ("upres FP32 end to end vs bare compute", "upres FP32 vs the naive loop",
                 "upres INT8 vs upres FP32, end to end", "one large output vs bare compute (FP32)"):
        assert targets[name].met is None and targets[name].note.startswith("not measured"), name
    assert targets["upres INT8 vs the naive loop"].met is True


def test_markdown_has_every_row_target_check_and_the_machine() -> None:
    result = _result(_rows())
    md = render_markdown(result)
    assert md.startswith("## File to file")
    assert ("| upres fp32 | 6.00 (5.00-7.00) | 8.20 (7.03-9.84) | 0.80x (0.71-0.90) | 2.00x (1.43-2.20) |"
            in md)
    for row in result.rows:
        assert f"| {row.name} |" in md
    for t in result.targets():
        assert f"| {t.name} | {t.goal} |" in md
    assert "max \\|diff\\| 3 level(s)" in md and "| **no** |" in md
    assert "Test CPU 9000, 2 cores; avx2 yes, avx512f no, avx512_vnni no, avx_vnni no" in md
    assert "onnxruntime 1.20" in md and "opencv 4.10" in md and "Contended" not in md
    result.others_cpu_share = 0.5
    assert "Contended run" in render_markdown(result)
    failed = _result([*_rows()[:-1], _row("startup-imports", STARTUP, IMPORTS, "", [], status="failed")])
    assert cells(failed, failed.rows[-1])[1] == "failed: exit code 1: boom"


def test_json_round_trip_renders_the_same(tmp_path: Path) -> None:
    result = _result(_rows())
    write_json(result, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["derived"]["upres-int8"]["x_naive_loop"]["median"] == pytest.approx(2.0)
    assert render_markdown(FileBenchResult.from_json(data)) == render_markdown(result)


def test_compare_folders_reports_the_worst_level(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    img = synth_photo(2, 20, 10)
    cv2.imwrite(str(a / "x.png"), img)
    off = img.copy()
    off[0, 0, 0] = min(255, int(off[0, 0, 0]) + 3) if off[0, 0, 0] < 250 else off[0, 0, 0] - 3
    off[1, 1, 1] = min(255, int(off[1, 1, 1]) + 1) if off[1, 1, 1] < 255 else off[1, 1, 1] - 1
    cv2.imwrite(str(b / "x.png"), off)
    worst, share, n = compare_folders(a, b, ("x.png", "missing.png"))
    assert (worst, n) == (3.0, 1) and share == pytest.approx(1 / img.size)


def test_workload_fills_up_with_synthesized_photos(tmp_path: Path) -> None:
    (tmp_path / "ds" / "BSD100").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "ds" / "BSD100" / "p.png"), synth_photo(3, 30, 44))  # portrait
    cfg = FileBenchConfig(datasets=tmp_path / "ds", count=2, size=(40, 30), large_size=(50, 36))
    work = build_workload(cfg, tmp_path / "work")
    assert work.names == ("p.png", "synth_002.png")
    assert "1 synthesized" in work.source
    for name in work.names:
        assert _read(work.folder / name).shape == (30, 40, 3)
    assert work.large is not None and _read(work.large).shape == (36, 50, 3)
    assert png_size(work.large) == (50, 36)
    assert _read(work.tiny).shape == (24, 32, 3)
    assert work.output_mp == pytest.approx(2 * 40 * 30 * 16 / 1e6)
    np.testing.assert_array_equal(synth_photo(5), synth_photo(5))


def test_files_rejects_compute_bench_options() -> None:
    assert bench_main(files=True, size=64) == 2
    assert bench_main(files=True, repeats=0) == 2


@pytest.mark.slow
def test_one_tiny_file_run_times_every_contender(tmp_path: Path) -> None:
    cfg = FileBenchConfig(datasets=None, count=2, size=(40, 30), repeats=1, large=False)
    result = run_files(cfg)
    write_json(result, tmp_path / "files.json")
    data = json.loads((tmp_path / "files.json").read_text())
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == ALL_KEYS
    for key, row in rows.items():
        assert row["status"] == "ok", (key, row["reason"])
        runs = cfg.startup_runs if key.startswith("startup-") else 1
        assert len(row["seconds"]) == runs and min(row["seconds"]) > 0, key
    assert all(c["ok"] for c in data["checks"]), data["checks"]
    assert len(data["targets"]) == 7
    assert "| upres run FP32 |" in render_markdown(result)


def test_each_repeat_rotates_the_long_runs_and_alternates_the_start_up_pair() -> None:
    def spec(key: str, case: str) -> Spec:
        return Spec(key, key, case, UPRES, "fp32", ("true",), 0.0)

    long = [spec(k, FOLDER) for k in ("a", "b", "c")]
    short = [spec("startup-upres", STARTUP), spec("startup-imports", STARTUP)]
    specs = [*long, *short]
    for repeat in range(4):
        keys = [s.key for s in _repeat_order(specs, repeat, 3)]
        assert keys[:3] == ["abc"[(repeat + i) % 3] for i in range(3)]
        pairs = [tuple(keys[3 + 2 * k : 5 + 2 * k]) for k in range(3)]
        assert len(keys) == 9 and all(set(p) == {"startup-upres", "startup-imports"} for p in pairs)
        firsts = [p[0] for p in pairs]  # the first of each pair alternates, so neither is always first
        assert firsts[0] != firsts[1] and firsts[1] != firsts[2]
    assert [s.key for s in _repeat_order(specs, 0, 0)].count("startup-upres") == 1


def test_a_drifting_machine_moves_both_sides_of_a_ratio_alike() -> None:
    # Each repeat slower than the last: run by run the ratio stays 2, the medians' spread would not.
    slow, fast = (_row("a", FOLDER, NAIVE, "fp32", [10.0, 8.0, 6.0]),
                  _row("b", FOLDER, UPRES, "fp32", [5.0, 4.0, 3.0]))
    r = paired(slow, fast)
    assert r is not None and (r.median, r.low, r.high, r.n) == (2.0, 2.0, 2.0, 3)
    # Rows of different lengths (a run failed part-way): the ratio of the medians.
    short = _row("c", FOLDER, UPRES, "fp32", [5.0, 3.0])
    r = paired(slow, short)
    assert r is not None and r.median == pytest.approx(8.0 / 4.0) and r.low == pytest.approx(6.0 / 5.0)
    assert paired(slow, None) is None
