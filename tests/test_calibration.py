"""Calibration: INT8 Q/DQ and FP16 models made from real photo crops, with real onnxruntime.

The calibration folder is crops of the bundled photo; sample counts are tiny so the whole file stays
well under a minute. Accuracy bounds are loose on purpose (the shipped weights get retrained), but far
tighter than what a broken quantization gives (an unfused or mis-scaled model lands below 20 dB).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from upres.calibration import (
    CalibrationDataReader,
    CalibrationError,
    QdqSettings,
    TileCropReader,
    calibrate_fp16,
    calibrate_int8,
)
from upres.calibration.fp16 import TensorRange, blocked_nodes
from upres.calibration.images import find_images, split_holdout
from upres.calibration.model import inspect_model
from upres.calibration.report import LayerCost
from upres.calibration.sensitivity import choose_exclusions, image_path_nodes
from upres.cli.commands.calibrate import calibrate_command
from upres.core.model import read_info, read_props
from upres.kernels.resize import bicubic_down, mod_crop
from upres.metrics import psnr
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import builtin_path
from upres.runtime.stages import FaithfulChain
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

MODEL = builtin_path("coarse-x4")
SCALE = 4
# INT8 against FP32 on real crops: ~50-56 dB measured; below 40 dB something is wrong.
INT8_VS_FP32_MIN_DB = 40.0
FP16_MAX_ABS = 5e-3  # float16 has ~3 decimal digits; outputs are in [0, 1]


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    """Six real-photo crops (some flipped, so they differ), written as PNGs."""
    folder = tmp_path_factory.mktemp("calib")
    h, w = photo.shape[:2]
    spots = [(0, 0), (0, w - 128), (h - 96, 0), (h - 96, w - 128), (32, 56), (64, 100)]
    for i, (y, x) in enumerate(spots):
        crop = photo[y : y + 96, x : x + 128]
        crop = crop[:, ::-1] if i % 2 else crop
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"crop{i}.png")
    return folder


@pytest.fixture(scope="module")
def int8(calib_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("int8") / "coarse-x4.int8.onnx"
    report = calibrate_int8(MODEL, calib_dir, out, samples=8, method="minmax", exclude="auto",
                            heldout_count=6, speed_runs=1, speed_size=32)
    return out, report


def _lr(photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hr = mod_crop(photo, SCALE)
    return hr, bicubic_down(hr, SCALE).astype(np.float32) / 255.0


def _upscale(model: Path, lr: np.ndarray, tile: int = 0, halo: int = 0) -> np.ndarray:
    info = read_info(model)
    assert info is not None
    chain = FaithfulChain(OrtBackend(model), info.scale, info.receptive_field)
    return upscale_array(lr, plan_grid(*lr.shape[:2], tile, halo), chain)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def test_int8_model_is_valid_qdq_with_metadata(int8) -> None:
    out, report = int8
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    info = read_info(out)
    assert info is not None
    assert (info.precision, info.scale, info.receptive_field, info.kind) == ("int8", 4, 15, "coarse")
    props = read_props(out)
    assert props["upres.calibration.set_sha256"] == report.calibration_sha256
    assert props["upres.calibration.samples"] == "8"
    assert props["upres.calibration.method"] == "minmax"
    assert json.loads(props["upres.calibration.excluded_nodes"]) == report.excluded_nodes
    assert props["upres.weights_sha256"] == read_info(MODEL).weights_sha256  # provenance kept
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["accuracy"]["psnr_vs_fp32"] == pytest.approx(report.accuracy.psnr_vs_fp32)
    assert saved["speed"]["models"]["int8"]["median_ms"] > 0


def test_int8_close_to_fp32_on_real_photo(int8, photo: np.ndarray) -> None:
    out, report = int8
    assert report.accuracy.psnr_vs_fp32 > INT8_VS_FP32_MIN_DB
    hr, lr = _lr(photo)
    ref, q = _u8(_upscale(MODEL, lr)), _u8(_upscale(out, lr))
    assert psnr(q, ref) > INT8_VS_FP32_MIN_DB
    # Against the truth the loss is small too (the budget is 0.3 dB; allow noise on one photo).
    assert psnr(ref, hr, SCALE) - psnr(q, hr, SCALE) < 0.5


def test_int8_tiled_equals_whole_image(int8, photo: np.ndarray) -> None:
    out, _ = int8
    _, lr = _lr(photo)
    halo = read_info(out).receptive_field
    whole = _upscale(out, lr)
    tiled = _upscale(out, lr, tile=16, halo=halo)
    assert np.abs(whole - tiled).max() <= 1.0 / 255.0


def _weight_from_dq(model: onnx.ModelProto, node_name: str) -> bool:
    producers = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    producer = producers.get(node.input[1])
    return producer is not None and producer.op_type == "DequantizeLinear"


def test_auto_keeps_image_path_in_float(int8) -> None:
    out, report = int8
    fp32 = onnx.load(str(MODEL))
    path = image_path_nodes(fp32)
    assert path == ["/Add_1", "/Conv"]  # output add and the bicubic skip branch
    assert set(path) <= set(report.excluded_nodes)
    model = onnx.load(str(out))
    assert not _weight_from_dq(model, "/Conv")
    assert _weight_from_dq(model, "/head/Conv")


def test_manual_exclusion_keeps_node_float(calib_dir: Path, tmp_path: Path) -> None:
    node = "/body/body.2/conv1/Conv"
    out = tmp_path / "m.onnx"
    report = calibrate_int8(MODEL, calib_dir, out, samples=4, exclude=[node], heldout_count=3,
                            speed_runs=0)
    assert report.excluded_nodes == [node] and report.exclude_mode == "manual"
    model = onnx.load(str(out))
    assert not _weight_from_dq(model, node)
    assert _weight_from_dq(model, "/body/body.2/conv2/Conv")
    with pytest.raises(CalibrationError, match="no node named"):
        calibrate_int8(MODEL, calib_dir, tmp_path / "x.onnx", samples=2, exclude=["nope"])


def test_exclusion_search_keeps_fewest_sensitive_layers() -> None:
    from upres.calibration.accuracy import Accuracy

    costs = [LayerCost(f"c{i}", "Conv", 40.0 + i) for i in range(6)]  # c0 most sensitive
    loss_by_kept = {0: 1.0, 1: 0.6, 2: 0.4, 3: 0.25, 4: 0.1, 5: 0.05, 6: 0.0}
    calls: list[list[str]] = []

    def score(excluded) -> Accuracy:
        calls.append(list(excluded))
        kept = len(excluded) - 1  # minus the base node
        return Accuracy(30.0, 30.0 - loss_by_kept[kept], 50.0, 0.0, 0.0, 1)

    first = Accuracy(30.0, 29.0, 45.0, 0.0, 0.0, 1)
    excluded, acc, steps = choose_exclusions(costs, ["base"], score, 0.3, first)
    assert excluded == ["base", "c0", "c1", "c2"] and acc.loss_db == pytest.approx(0.25)
    assert len(calls) <= 4  # binary search, not one quantization per layer
    assert steps[0]["kept_in_float"] == 0


def _tiny_sr_model(path: Path) -> Path:
    """A 3-conv residual RGB model (scale 1, no upres metadata): few layers, so the sensitivity pass
    (one quantization per layer) stays quick. Small seeded weights: out = in + a small correction."""
    rng = np.random.default_rng(0)
    h = onnx.helper
    inits, nodes, prev = [], [], "input"
    for i, (cin, cout) in enumerate([(3, 8), (8, 8), (8, 3)]):
        w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
        inits += [onnx.numpy_helper.from_array(w, f"w{i}"),
                  onnx.numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes.append(h.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4))
        prev = f"c{i}"
        if i < 2:
            nodes.append(h.make_node("Relu", [prev], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    nodes.append(h.make_node("Add", ["input", prev], ["output"], name="skip"))
    shape = ["batch", 3, "height", "width"]
    graph = h.make_graph(nodes, "tiny", [h.make_tensor_value_info("input", onnx.TensorProto.FLOAT, shape)],
                         [h.make_tensor_value_info("output", onnx.TensorProto.FLOAT, shape)], inits)
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), str(path))
    return path


def test_auto_sensitivity_pass_excludes_measured_layers(calib_dir: Path, tmp_path: Path) -> None:
    # An impossible budget forces the whole pass: every layer measured, all kept in float, target missed.
    model = _tiny_sr_model(tmp_path / "tiny.onnx")
    out = tmp_path / "s.onnx"
    report = calibrate_int8(model, calib_dir, out, samples=4, exclude="auto", max_loss_db=-50.0,
                            heldout_count=2, speed_runs=0)
    assert [c.node for c in report.sensitivity] and set(c.node for c in report.sensitivity) == {
        "conv0", "conv1", "conv2"}
    assert not report.target_met and report.speed is None
    assert report.excluded_nodes[0] == "skip"  # the output add: image path, by structure
    q = onnx.load(str(out))
    for cost in report.sensitivity:
        assert cost.node in report.excluded_nodes and not _weight_from_dq(q, cost.node)
    psnrs = [c.psnr_vs_fp32 for c in report.sensitivity]
    assert psnrs == sorted(psnrs)
    assert read_info(out).kind == "foreign" and read_info(out).precision == "int8"


def test_auto_within_budget_quantizes_every_layer(calib_dir: Path, tmp_path: Path) -> None:
    model = _tiny_sr_model(tmp_path / "tiny.onnx")
    report = calibrate_int8(model, calib_dir, tmp_path / "q.onnx", samples=4, exclude="auto",
                            max_loss_db=0.3, heldout_count=2, speed_runs=0)
    assert report.target_met and report.excluded_nodes == ["skip"] and not report.sensitivity
    q = onnx.load(str(tmp_path / "q.onnx"))
    assert all(_weight_from_dq(q, f"conv{i}") for i in range(3))


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_methods_take_crops_of_mixed_sizes(calib_dir: Path, tmp_path: Path, method: str) -> None:
    model = _tiny_sr_model(tmp_path / "tiny.onnx")
    out = tmp_path / f"{method}.onnx"
    report = calibrate_int8(model, calib_dir, out, samples=4, method=method, heldout_count=2,
                            speed_runs=0, settings=QdqSettings(num_bins=256))
    assert report.method == method and read_props(out)["upres.calibration.method"] == method
    assert report.accuracy.psnr_vs_fp32 > 30.0


def test_same_images_and_seed_give_same_model_bytes(calib_dir: Path, tmp_path: Path) -> None:
    model = _tiny_sr_model(tmp_path / "tiny.onnx")
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for out in (a, b):
        calibrate_int8(model, calib_dir, out, samples=3, heldout_count=1, speed_runs=0)
    assert a.read_bytes() == b.read_bytes()  # no timings or paths in the model file


def test_fp16_float32_io_and_parity(calib_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common")
    out = tmp_path / "coarse-x4.fp16.onnx"
    report = calibrate_fp16(MODEL, calib_dir, out, samples=4, heldout_count=4, speed_runs=0)
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    f32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == f32
    assert model.graph.output[0].type.tensor_type.elem_type == f32
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert report.accuracy.max_abs < FP16_MAX_ABS and report.accuracy.psnr_vs_fp32 > 50.0
    info = read_info(out)
    assert info is not None and (info.precision, info.io_dtype) == ("fp16", "float32")
    backend = OrtBackend(out)
    assert backend.input_dtype == np.float32


def test_fp16_blocks_producer_and_consumers_of_out_of_range_tensors() -> None:
    model = onnx.load(str(MODEL))
    hot = "/body/body.2/conv1/Conv_output_0"
    ranges = [TensorRange(hot, "/body/body.2/conv1/Conv", 1e5, 0.0),
              TensorRange("/head/Conv_output_0", "/head/Conv", 3.0, 0.0)]
    assert blocked_nodes(model, ranges) == ["/body/body.2/conv1/Conv", "/body/body.2/Relu"]


def test_reader_feeds_tile_like_lr_crops(calib_dir: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader as OrtReader

    spec = inspect_model(MODEL)
    images = find_images(calib_dir)
    a = list(TileCropReader(images, spec, 5, seed=3))
    b = list(TileCropReader(images, spec, 5, seed=3))
    assert len(a) == 5
    for fa, fb in zip(a, b, strict=True):
        x = fa["input"]
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[:2] == (1, 3)
        assert x.shape[2] <= 128 + 2 * spec.halo and x.shape[3] <= 128 + 2 * spec.halo
        assert np.array_equal(x, fb["input"])
        assert np.allclose(x * 255.0, np.rint(x * 255.0), atol=1e-3)  # LR pixels, k/255
    reader = TileCropReader(images, spec, 2)
    assert isinstance(reader, CalibrationDataReader) and isinstance(reader, OrtReader)
    assert reader.get_next() is not None and reader.get_next() is not None and reader.get_next() is None


def test_image_set_hash_and_split(calib_dir: Path, tmp_path: Path) -> None:
    images = find_images(calib_dir)
    calib, held = split_holdout(images, 0.2, seed=0)
    assert len(held) == 1 and len(calib) == 5 and not set(held.names) & set(calib.names)
    copy = tmp_path / calib_dir.name
    copy.mkdir()
    for p in images.files:
        (copy / p.name).write_bytes(p.read_bytes())
    assert find_images(copy).sha256 == images.sha256  # names + bytes, not where the folder lives
    (copy / "crop0.png").write_bytes((calib_dir / "crop1.png").read_bytes())
    assert find_images(copy).sha256 != images.sha256


def test_model_without_metadata_is_probed(tmp_path: Path) -> None:
    model = onnx.load(str(MODEL))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    spec = inspect_model(bare)
    assert spec.probed and (spec.scale, spec.channels, spec.halo) == (4, 3, 15)


def test_bad_inputs_give_clear_errors(calib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.onnx"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match=f"{empty}.*empty"):
        calibrate_int8(MODEL, empty, out, samples=2)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "notes.txt").write_text("not a photo")
    with pytest.raises(CalibrationError, match=f"no images in {texts}"):
        calibrate_int8(MODEL, texts, out, samples=2)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        (broken / name).write_bytes(b"\x89PNG not really")
    with pytest.raises(CalibrationError, match=r"[ab]\.png is not a readable image"):
        calibrate_int8(MODEL, broken, out, samples=2)
    with pytest.raises(CalibrationError, match="not found"):
        calibrate_int8(MODEL, tmp_path / "missing", out, samples=2)
    fake = tmp_path / "model.onnx"
    fake.write_text("this is a text file, not a model\n")
    with pytest.raises(CalibrationError, match=f"{fake} is not an ONNX model"):
        calibrate_int8(fake, calib_dir, out, samples=2)
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        calibrate_int8(tmp_path / "missing.onnx", calib_dir, out, samples=2)
    with pytest.raises(CalibrationError, match="--method"):
        calibrate_int8(MODEL, calib_dir, out, samples=2, method="magic")
    refine = builtin_path("refine")
    with pytest.raises(CalibrationError, match="4 input channels"):
        calibrate_int8(refine, calib_dir, out, samples=2)
    assert not out.exists()


def test_command_registers_with_typer_and_reports_errors(tmp_path: Path) -> None:
    import typer

    app = typer.Typer()
    app.command("calibrate")(calibrate_command)
    app.command("noop")(lambda: None)  # two commands, so "calibrate" is a subcommand as in `upres`
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["calibrate", str(MODEL), "--images", str(empty),
                                      "-o", str(tmp_path / "o.onnx")])
    assert result.exit_code == 2
    assert "empty" in result.output and str(empty) in result.output.replace("\n", "")
    result = CliRunner().invoke(app, ["calibrate", str(MODEL), "--images", str(empty), "-o",
                                      str(tmp_path / "o.onnx"), "--precision", "int4"])
    assert result.exit_code == 2 and "--precision" in result.output


def test_progress_goes_where_the_caller_says_and_the_library_prints_nothing(
        calib_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxconverter_common")
    from collections.abc import Callable, Iterator
    from contextlib import contextmanager

    from rich.console import Console

    from upres.cli.render_calibration import calibration_table

    steps: list[tuple[str, int]] = []
    advanced: list[str] = []

    @contextmanager
    def record(total: int, description: str) -> Iterator[Callable[[], None]]:
        steps.append((description, total))
        yield lambda: advanced.append(description)

    report = calibrate_fp16(MODEL, calib_dir, tmp_path / "p.fp16.onnx", samples=3, heldout_count=2,
                            speed_runs=0, progress=record)
    assert steps == [("measuring ranges", 3)] and advanced == ["measuring ranges"] * 3
    assert capsys.readouterr() == ("", "")
    console = Console(record=True, width=200)
    console.print(calibration_table(report))
    text = console.export_text()
    assert "FP16 calibration: p.fp16.onnx" in text and "PSNR FP16 vs FP32" in text
