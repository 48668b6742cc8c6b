"""Models upres cannot run: each is refused up front, in `run`, `inspect` and `plan`, with one
line naming the file and the reason and exit code 2 (a usage error), never a traceback and never
a batch whose every image fails. Also: backend creation fails one way, and the usage errors and
the Ray spec bugs the QA pass found."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

from upres.cli import app
from upres.core.errors import BackendUnavailable
from upres.core.model import read_props
from upres.core.receptive_field import probe_scale
from upres.runtime.backends import select
from upres.runtime.backends.base import BackendChoice
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import WEIGHTS_DIR, resolve

runner = CliRunner()
COMMANDS = ("inspect", "plan", "run")


# ------------------------------------------------------------------------------ tiny graphs


def _save(path: Path, nodes: list, inputs: list, outputs: list, inits: list | None = None,
          props: dict[str, str] | None = None) -> Path:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits or []),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (props or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def _upscaler(path: Path, *, cout: int = 3, scale: int = 2, shape: tuple = ("N", 3, "H", "W"),
              out_shape: tuple | None = None, props: dict[str, str] | None = None) -> Path:
    """Nearest-neighbour x`scale`, through a 1x1 conv when it changes the channel count."""
    nodes, inits, src = [], [numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "s")], "x"
    if cout != 3:
        inits.append(numpy_helper.from_array(np.full((cout, 3, 1, 1), 1 / 3, np.float32), "w"))
        nodes.append(helper.make_node("Conv", ["x", "w"], ["c"]))
        src = "c"
    nodes.append(helper.make_node("Resize", [src, "", "s"], ["y"], mode="nearest"))
    return _save(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                list(out_shape) if out_shape else None)],
                 inits, props)


def _classifier(path: Path) -> Path:
    """Global pool -> 1000 logits: an image in, a (1, 1000) vector out."""
    w = numpy_helper.from_array(np.ones((3, 1000), np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])]
    return _save(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])], [w])


def _int64(path: Path) -> Path:
    return _save(path, [helper.make_node("Identity", ["x"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 3, "H", "W"])],
                 [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", 3, "H", "W"])])


def _meta(scale: str = "2", **extra: str) -> dict[str, str]:
    return {"upres.name": "m", "upres.kind": "coarse", "upres.scale": scale,
            "upres.receptive_field": "1", **{f"upres.{k}": v for k, v in extra.items()}}


def _bytes(data: bytes) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return write


def _truncated(path: Path) -> Path:
    _upscaler(path)
    path.write_bytes(path.read_bytes()[:-20])
    return path


# name -> (writer, the reason the one-line error must contain)
REFUSED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "random": (_bytes(np.random.default_rng(0).bytes(4096)), "not an ONNX model ("),
    "empty": (_bytes(b""), "not an ONNX model (empty file)"),
    "text": (_bytes(b"not a model at all\n"), "not an ONNX model ("),
    # Parses as a protobuf message (one varint field), but has no graph.
    "no-graph": (_bytes(b"\x08\x07\x12\x03abc"), "not an ONNX model (no graph in it)"),
    "truncated": (_truncated, "not an ONNX model (truncated"),
    "classifier": (_classifier, "output has shape (1, 1000), not an image"),
    "fixed32": (lambda p: _upscaler(p, shape=(1, 3, 32, 32)),
                "expects a fixed 32x32 input; upres needs dynamic height/width"),
    "fixed-width": (lambda p: _upscaler(p, shape=("N", 3, "H", 48)), "expects a fixed input width 48"),
    "int64": (_int64, "input is int64; upres runs float32/float16 image models"),
    "scale0": (lambda p: _upscaler(p, props=_meta("0")), "its metadata says scale 0"),
    "scale-two": (lambda p: _upscaler(p, props=_meta("two")), "unreadable upres metadata"),
    "float64-io": (lambda p: _upscaler(p, props=_meta(io_dtype="float64")), "io_dtype float64"),
}


def _cli(command: str, model: Path, tmp: Path) -> tuple[int, str, BaseException | None]:
    image = tmp / "in.png"
    if not image.exists():
        with Image.open(SAMPLE) as im:
            im.convert("RGB").crop((0, 0, 40, 32)).save(image)
    args = {"inspect": ["inspect", str(model)],
            "plan": ["plan", str(image), "--model", str(model), "--scale", "2"],
            "run": ["run", str(image), "-o", str(tmp / "out"), "--model", str(model), "--scale", "2",
                    "--quiet"]}[command]
    result = runner.invoke(app, args)
    return result.exit_code, result.output, result.exception


def _assert_refused(code: int, output: str, exc: BaseException | None, model: Path, reason: str) -> None:
    assert isinstance(exc, SystemExit) and code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: {model}: "), output
    assert reason in lines[0], output


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_model_upres_cannot_run_is_one_line_and_exit_2(tmp_path: Path, case: str, command: str) -> None:
    write, reason = REFUSED[case]
    model = write(tmp_path / f"{case}.onnx")
    code, output, exc = _cli(command, model, tmp_path)
    _assert_refused(code, output, exc, model, reason)
    assert not (tmp_path / "out" / "in.png").exists()


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_never_reach_a_traceback(tmp_path: Path, seed: int) -> None:
    # Some random buffers parse as protobuf fields; ONNX Runtime must then refuse them the same way.
    model = tmp_path / f"r{seed}.onnx"
    model.write_bytes(np.random.default_rng(seed).bytes(64 + 97 * seed))
    for command in COMMANDS:
        code, output, exc = _cli(command, model, tmp_path)
        _assert_refused(code, output, exc, model, "")


@pytest.mark.parametrize("command", ["plan", "run"])
def test_three_to_one_channels_is_refused_before_any_image(tmp_path: Path, command: str) -> None:
    # Probed (no metadata) and described (metadata that says so): both would fail every image.
    for name, props in (("probed", None), ("described", _meta(output_channels="1"))):
        model = _upscaler(tmp_path / f"{name}.onnx", cout=1, props=props)
        code, output, exc = _cli(command, model, tmp_path)
        _assert_refused(code, output, exc, model, "maps 3 -> 1 channels; upres upscales with RGB models")


def test_inspect_shows_a_three_to_one_models_channels(tmp_path: Path) -> None:
    model = _upscaler(tmp_path / "gray.onnx", cout=1)
    code, output, _ = _cli("inspect", model, tmp_path)
    assert code == 0, output
    assert re.search(r"output_channels\s*│\s*1\s*│", output), output


def test_metadata_that_misdescribes_its_graph_is_refused(tmp_path: Path) -> None:
    model = _upscaler(tmp_path / "liar.onnx", cout=1, out_shape=("N", 1, "H2", "W2"), props=_meta())
    code, output, exc = _cli("run", model, tmp_path)
    _assert_refused(code, output, exc, model, "its graph has 1 output channels, its upres metadata says 3")


def test_upres_own_non_sr_models_are_refused_as_the_upscaler(tmp_path: Path) -> None:
    for name, channels in (("refine", "4 -> 3"), ("overlay-detect", "1")):
        path = WEIGHTS_DIR / f"{name}.onnx"
        code, output, exc = _cli("run", path, tmp_path)
        assert code == 2 and isinstance(exc, SystemExit), output
        assert f"{path}: maps" in output and channels in output, output


def test_a_good_tiny_model_still_runs(tmp_path: Path) -> None:
    model = _upscaler(tmp_path / "ok.onnx")
    for command in COMMANDS:
        code, output, _ = _cli(command, model, tmp_path)
        assert code == 0, output
    with Image.open(tmp_path / "out" / "in.png") as im:
        assert im.size == (80, 64)


def test_read_props_garbage_is_a_model_error_naming_the_file(tmp_path: Path) -> None:
    from upres.core.errors import ModelError

    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff" * 32)
    with pytest.raises(ModelError, match=r"junk\.onnx: not an ONNX model \("):
        read_props(path)
    assert issubclass(ModelError, ValueError)  # every existing ValueError handler takes it


def test_resolve_and_the_backend_refuse_with_model_errors(tmp_path: Path) -> None:
    from upres.core.errors import ModelError

    with pytest.raises(ModelError, match="expects a fixed 32x32 input"):
        resolve(_upscaler(tmp_path / "f.onnx", shape=(1, 3, 32, 32)))
    with pytest.raises(ModelError, match="input is int64"):
        OrtBackend(_int64(tmp_path / "i.onnx"))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        OrtBackend(b"\x08\x07\x3a\x02\x0a\x00")  # a graph field ORT cannot make sense of


def test_probe_scale_names_a_non_image_output() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, 1000\): not an image"):
        probe_scale(lambda x: np.zeros((1, 1000), np.float32), 3)


# ------------------------------------------------------------------------------ backends


def _tensorrt_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """What select sees on a host with TensorRT, cuda-python and a GPU."""
    monkeypatch.setattr(select, "unavailable", lambda name: None)
    monkeypatch.setattr(select, "choose", lambda name: BackendChoice("trt", "TensorRT is present"))


def test_creating_a_gpu_pipeline_backend_for_one_model_is_backend_unavailable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _tensorrt_host(monkeypatch)
    for name in select.GPU_PIPELINE:
        with pytest.raises(BackendUnavailable, match=f"{name} runs whole tile chains"):
            select.create(name, WEIGHTS_DIR / "refine.onnx")


@pytest.mark.parametrize("name", ["ort-quantum", "triton://", "triton://host:port:x"])
def test_every_backend_creation_failure_is_backend_unavailable(name: str) -> None:
    with pytest.raises(BackendUnavailable):
        select.create(name, WEIGHTS_DIR / "coarse-x2.onnx")


def test_clean_on_a_tensorrt_host_is_a_one_line_usage_error(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _tensorrt_host(monkeypatch)
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, 60, 40)).save(tmp_path / "a.png")
    mask = np.zeros((40, 60), np.uint8)
    mask[10:14, 5:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = runner.invoke(app, ["clean", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                                 "--mask", str(tmp_path / "mask.png"), "--quiet"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "trt runs whole tile chains" in result.output


def test_plan_with_a_bad_blend_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", str(SAMPLE), "--blend", "foo"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.strip() == "error: --blend must be auto, crop or feather, got 'foo'"


# ------------------------------------------------------------------------------ ray spec


class _GpuFaithfulChain:
    """What upres.gpu.chain.GpuChain reports for a faithful chain: no refine stage, texture None."""

    scale = 2
    halo = 15
    texture = None

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        raise AssertionError("not run")


def test_ray_spec_carries_a_faithful_chains_texture_as_none() -> None:
    from upres.batch import RunOptions
    from upres.batch.records import settings_record
    from upres.fleet.ray_worker import chain_spec
    from upres.runtime.chain_factory import build_chain

    cpu = build_chain("faithful", 2, backend="ort-cpu")
    gpu = replace(cpu, chain=_GpuFaithfulChain())
    spec = chain_spec(gpu, threads=1)
    assert spec.texture is None
    # The worker's chain must report the driver's settings (texture included) or it is refused.
    opts = RunOptions(memory=1 << 30)
    assert settings_record(spec.build(), opts)["texture"] is None
    assert settings_record(gpu, opts)["texture"] is None
    hybrid = chain_spec(build_chain("hybrid", 2, texture=0.25, backend="ort-cpu"), threads=1)
    assert hybrid.texture == 0.25 and hybrid.build().chain.texture == 0.25
