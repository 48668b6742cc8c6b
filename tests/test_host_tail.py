"""The coarse networks' dequantise-add-shuffle tail runs on the host (upres.runtime.tail): the
pixels and the output bytes are those of the whole graph, for both scales and precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import SAMPLE

from upres.batch import BatchRunner, RunOptions
from upres.core import parallel
from upres.core.choices import Mode
from upres.imageio.samples import NonFiniteError, quantize_into
from upres.runtime import tail
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import DEFAULT_REFINE, resolve
from upres.runtime.chain_factory import build_chain
from upres.runtime.inputs import collect_jobs
from upres.runtime.stages import FaithfulChain, FaithfulTailChain, HybridChain

CASES = [(2, "fp32"), (4, "fp32"), (2, "int8"), (4, "int8")]


def _tile(h: int = 37, w: int = 53) -> np.ndarray:
    rng = np.random.default_rng(3)
    # A little outside [0, 1] too: the network's output is clipped by the quantiser, not before.
    return (rng.random((1, 3, h, w), dtype=np.float32) * 1.1 - 0.05).astype(np.float32)


@pytest.mark.parametrize(("scale", "precision"), CASES)
def test_the_split_graph_with_its_tail_on_the_host_is_the_whole_graph(scale: int, precision: str) -> None:
    model = resolve(f"coarse-x{scale}", precision)
    split = tail.split_graph(model.path, model.sha256, scale)
    assert split is not None
    planes = tail.TailSession(split, 1).run(_tile())
    assert (planes.tail.dequantize is not None) == (precision == "int8")
    whole = OrtBackend(model.path, threads=1).run(_tile())[0].transpose(1, 2, 0)
    assert planes.shape == whole.shape
    assert np.array_equal(np.asarray(planes), whole)
    for dtype in (np.uint8, np.uint16):
        expected, got = np.empty(whole.shape, dtype), np.empty(whole.shape, dtype)
        quantize_into(whole, expected)
        planes.quantize_into(got)
        assert np.array_equal(got, expected)
    # Cut on the scale's grid it stays deferred (a strip of a tile); off the grid, pixels.
    rows = slice(3 * scale, 11 * scale)
    core = planes[rows, 0 : whole.shape[1]]
    assert isinstance(core, tail.TailPlanes)
    assert np.array_equal(np.asarray(core), whole[rows])
    off = planes[1:7, 2:9]
    assert isinstance(off, np.ndarray) and np.array_equal(off, whole[1:7, 2:9])
    strided = np.zeros((whole.shape[0], whole.shape[1] + 5, 3), np.uint8)[:, :whole.shape[1]]
    planes.quantize_into(strided)  # not contiguous: written all the same
    expected8 = np.empty(whole.shape, np.uint8)
    quantize_into(whole, expected8)
    assert np.array_equal(strided, expected8)


def test_non_finite_outputs_are_refused_as_the_quantiser_refuses_them() -> None:
    planes = tail.TailPlanes(np.full((12, 2, 2), np.nan, np.float32), np.zeros((12, 2, 2), np.float32),
                             tail.Tail(2, None))
    with pytest.raises(NonFiniteError):
        planes.quantize_into(np.empty((4, 4, 3), np.uint8))


@pytest.mark.parametrize("helpers", [0, 1, 3])
def test_the_fused_pass_gives_the_same_bytes_on_any_number_of_cores(
        monkeypatch: pytest.MonkeyPatch, helpers: int) -> None:
    rng = np.random.default_rng(7)
    h, w = 5 * tail.BLOCK_ROWS + 3, 9  # parts of whole blocks and a short last one
    first = rng.integers(0, 256, (48, h, w)).astype(np.uint8)
    second = rng.normal(0.5, 0.4, (48, h, w)).astype(np.float32)
    planes = tail.TailPlanes(first, second, tail.Tail(4, (0.01, 128.0)))
    pixels = (((first.astype(np.float32) - np.float32(128.0)) * np.float32(0.01) + second)
              .reshape(3, 4, 4, h, w).transpose(3, 1, 4, 2, 0).reshape(h * 4, w * 4, 3))
    expected = np.empty(pixels.shape, np.uint16)
    quantize_into(pixels, expected)
    monkeypatch.setattr(parallel, "_helpers", parallel._Helpers())
    monkeypatch.setattr(parallel._helpers, "_size", helpers)
    got = np.empty_like(expected)
    planes.quantize_into(got)
    assert np.array_equal(got, expected)
    assert np.array_equal(np.asarray(planes), pixels)
    # A part that fails on another core fails the pass, after every part has stopped writing.
    second[:, -1, -1] = np.nan
    with pytest.raises(NonFiniteError):
        planes.quantize_into(got)


def test_graphs_that_end_otherwise_run_whole_and_the_answer_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    refine = resolve(DEFAULT_REFINE, "fp32")
    assert tail.split_graph(refine.path, refine.sha256, 2) is None
    coarse = resolve("coarse-x4", "fp32")
    assert tail.split_graph(coarse.path, coarse.sha256, 2) is None  # a block of 4, not 2
    made = tail.split_graph(coarse.path, coarse.sha256, 4)

    def must_not_run(model: Path, scale: int) -> bytes | None:
        raise AssertionError("the cached answer was not used")

    monkeypatch.setattr(tail, "_without_tail", must_not_run)
    assert tail.split_graph(refine.path, refine.sha256, 2) is None
    assert tail.split_graph(coarse.path, coarse.sha256, 4) == made is not None


def test_on_the_cpu_faithful_and_hybrid_run_the_tail_on_the_host() -> None:
    assert isinstance(build_chain(Mode.FAITHFUL, 4, backend="ort-cpu", threads=1).chain, FaithfulTailChain)
    hybrid = build_chain(Mode.HYBRID, 4, backend="ort-cpu", threads=1).chain
    assert isinstance(hybrid, HybridChain) and isinstance(hybrid.coarse, tail.PlanarTailSession)


@pytest.mark.parametrize("scale,precision", [(2, "fp32"), (4, "fp32"), (2, "int8"), (4, "int8")])
def test_hybrid_s_coarse_planes_are_the_whole_graph_s(scale: int, precision: str) -> None:
    ref = resolve(f"coarse-x{scale}", precision)
    split = tail.split_graph(ref.path, ref.sha256, scale)
    assert split is not None
    planar = tail.PlanarTailSession(tail.TailSession(split, threads=1))
    x = np.random.default_rng(scale).random((1, 3, 2 * tail.BLOCK_ROWS + 5, 23), dtype=np.float32)
    assert np.array_equal(planar.run(x), OrtBackend(ref.path, threads=1).run(x))


def _inputs(folder: Path) -> None:
    folder.mkdir()
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
    rgb.save(folder / "rgb.png")
    rgb.convert("L").save(folder / "gray.png")
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(folder / "alpha.png")
    deep = (np.asarray(rgb.convert("L"), np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    rgb.save(folder / "rgb.tif")
    rgb.crop((0, 0, 36, rgb.height)).save(folder / "narrow.png")  # one tile wide, several high


@pytest.mark.parametrize(("scale", "precision"), [(2, "int8"), (4, "fp32")])
@pytest.mark.parametrize("tile", [None, 40])
def test_batch_outputs_are_byte_for_byte_those_of_the_whole_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: int, precision: str,
        tile: int | None) -> None:
    _inputs(tmp_path / "in")
    outputs = {}
    for label in ("host", "whole"):
        if label == "whole":
            monkeypatch.setattr(tail, "split_graph", lambda *args: None)
        setup = build_chain(Mode.FAITHFUL, scale, None, 0.5, "ort-cpu", precision, 1)
        assert isinstance(setup.chain, FaithfulTailChain if label == "host" else FaithfulChain)
        out = tmp_path / label
        out.mkdir()
        report = BatchRunner(setup, RunOptions(memory=1 << 32, tile=tile, threads=1)).run(
            collect_jobs([str(tmp_path / "in")], out), print)
        assert report.counts()["done"] == 6
        outputs[label] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix != ".json"}
    assert len(outputs["host"]) == 6
    assert outputs["host"] == outputs["whole"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_the_api_gives_the_whole_graph_s_arrays(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    import upres

    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB"))
    image = rgb.astype(np.float32) / 255 if dtype == np.float32 else rgb.astype(dtype) * (
        257 if dtype == np.uint16 else 1)
    results = []
    for label in ("host", "whole"):
        if label == "whole":
            monkeypatch.setattr(tail, "split_graph", lambda *args: None)
        with upres.Upscaler(scale=4, mode="faithful", precision="int8", threads=1) as up:
            assert isinstance(up.setup.chain, FaithfulTailChain if label == "host" else FaithfulChain)
            results.append(up.upscale(image))
    assert results[0].dtype == dtype and np.array_equal(results[0], results[1])


def _graph_with_a_broadcast_addend(path: Path) -> None:
    """A user's x2 model whose last Add takes a per-channel (1, 12, 1, 1) tensor it computes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array((rng.standard_normal((12, 3, 3, 3)) * 0.2).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["input", "w"], ["features"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["features"], ["mean"], axes=[2, 3], keepdims=1),
             helper.make_node("Add", ["features", "mean"], ["summed"]),
             helper.make_node("DepthToSpace", ["summed"], ["output"], blocksize=2, mode="CRD")]
    graph = helper.make_graph(
        nodes, "broadcast",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "H", "W"])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_a_broadcast_addend_is_added_as_the_graph_adds_it(tmp_path: Path) -> None:
    model = tmp_path / "user.onnx"
    _graph_with_a_broadcast_addend(model)
    split = tail.split_graph(model, "0" * 64, 2)
    assert split is not None
    planes = tail.TailSession(split, 1).run(_tile(19, 23))
    whole = OrtBackend(model, threads=1).run(_tile(19, 23))[0].transpose(1, 2, 0)
    assert np.array_equal(np.asarray(planes), whole)
    got, expected = np.empty(whole.shape, np.uint8), np.empty(whole.shape, np.uint8)
    planes.quantize_into(got)
    quantize_into(whole, expected)
    assert np.array_equal(got, expected)
