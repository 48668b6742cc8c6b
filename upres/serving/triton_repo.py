"""A Triton Inference Server model repository for one upres tile model.

Triton serves the *tile* model only; planning, halos, blending and image I/O stay in the client
(`upres run --backend triton://...`). Layout written (Triton's own conventions):

    REPO/NAME/config.pbtxt        platform onnxruntime_onnx, dynamic H/W, dynamic batching
    REPO/NAME/1/model.onnx
    REPO/NAME-trt/config.pbtxt    only with --plan: platform tensorrt_plan, cc_model_filenames
    REPO/NAME-trt/1/model_smXY.plan

TensorRT plans are specific to a GPU's compute capability and TensorRT version, so they are built
on the target GPUs (``upres build``) and handed in as ``--plan ENGINE`` (an engine of upres's
cache: its manifest says the compute capability and is checked against this ONNX) or
``--plan CC=FILE`` (any plan); Triton picks the file of the GPU it runs on through
``cc_model_filenames``. Every config carries the source ONNX's
sha256 as the ``upres_sha256`` parameter: the client checks it before sending a tile, so a run's
sidecar names the model that really ran.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from upres.core.atomic import atomic_output, atomic_write_text
from upres.core.hashing import file_sha256
from upres.runtime.backends.triton_backend import SHA_PARAMETER, served_name

PRECISIONS = ("fp32", "fp16", "int8")
KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
_TRITON_TYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}
_CC_RE = re.compile(r"^\d+\.\d+$")
WARMUP_SIDE = 64  # one small tile per batch size: loads kernels before the first real request


class RepoError(ValueError):
    """The model or the options cannot make a valid repository (exit code 2)."""


@dataclass(frozen=True)
class RepoOptions:
    max_batch: int = 8
    instances: int = 1
    kind: str = "auto"  # auto | gpu | cpu
    max_queue_delay_us: int = 2000  # how long a tile waits for others to batch with
    plans: dict[str, Path] = field(default_factory=dict)  # compute capability "8.9" -> plan file

    def check(self) -> None:
        if not 1 <= self.max_batch <= 1024:
            raise RepoError(f"--max-batch must be within 1..1024, got {self.max_batch}")
        if not 1 <= self.instances <= 64:
            raise RepoError(f"--instances must be within 1..64, got {self.instances}")
        if self.kind not in KINDS:
            raise RepoError(f"--kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for cc, plan in self.plans.items():
            if not _CC_RE.match(cc):
                raise RepoError(f"--plan {cc}={plan}: the compute capability must look like 8.9")
            if not plan.is_file():
                raise RepoError(f"--plan {cc}={plan}: no such file")


@dataclass(frozen=True)
class CachedPlan:
    """What the engine cache's manifest says about an engine file."""

    compute_capability: str
    onnx_sha256: str
    precision: str
    batch: int
    profile: tuple[int, int]  # smallest and largest input side
    version_compatible: bool  # Triton must be started with version-compatible=true to load it


def read_cached_plan(engine: Path) -> CachedPlan | None:
    """The manifest beside an engine of upres's cache (``upres build``), or None if it has none."""
    from upres.gpu.engine_cache import EngineKey

    manifest = engine.with_suffix(".json")
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        key = EngineKey.from_dict(data["key"])
        if data.get("engine_file") != engine.name:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if key.hardware_compat:
        raise RepoError(f"--plan {engine}: a hardware-compatible engine runs on any Ampere+ GPU; "
                        "give it per compute capability as --plan CC=FILE")
    return CachedPlan(key.compute_capability, key.onnx_sha256, key.precision, key.batch,
                      (key.profile.min, key.profile.max), key.version_compatible)


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # TYPE_FP32 | TYPE_FP16
    channels: int


@dataclass(frozen=True)
class RepoModel:
    name: str
    folder: Path
    config: str
    sha256: str


def _tensor(value: onnx.ValueInfoProto, what: str, path: Path) -> Tensor:
    t = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    if len(dims) != 4:
        raise RepoError(f"{path.name}: {what} {value.name!r} is not NCHW ({len(dims)} dims)")
    if dims[0] != -1:
        # Dynamic batching stacks tiles on the first axis; a fixed batch cannot take that.
        raise RepoError(f"{path.name}: {what} {value.name!r} has a fixed batch of {dims[0]}; "
                        "export it with a dynamic batch axis")
    if t.elem_type not in _TRITON_TYPES:
        raise RepoError(f"{path.name}: {what} {value.name!r} has ONNX type {t.elem_type}; "
                        "Triton tile models take float32 or float16")
    if dims[1] < 1:
        raise RepoError(f"{path.name}: {what} {value.name!r} needs a fixed channel count")
    return Tensor(value.name, _TRITON_TYPES[t.elem_type], dims[1])


def model_io(path: Path) -> tuple[Tensor, Tensor]:
    """The tile model's one input and one output, bound by name as Triton serves them."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise RepoError(f"{path.name}: a tile model has one input and one output, this one has "
                        f"{len(inputs)} and {len(graph.output)}")
    return _tensor(inputs[0], "input", path), _tensor(graph.output[0], "output", path)


def _io_block(key: str, tensor: Tensor) -> str:
    # dims leave out the batch axis (max_batch_size > 0); -1 = any height / width.
    return (f'{key} [\n  {{\n    name: "{tensor.name}"\n    data_type: {tensor.data_type}\n'
            f"    dims: [ {tensor.channels}, -1, -1 ]\n  }}\n]\n")


def _batch_sizes(max_batch: int) -> list[int]:
    sizes = [b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if b < max_batch]
    return [*sizes, max_batch]


def _warmup(inp: Tensor, max_batch: int) -> str:
    blocks = []
    for b in sorted({1, max_batch}):
        blocks.append(
            f'  {{\n    name: "tile_{WARMUP_SIDE}_batch_{b}"\n    batch_size: {b}\n'
            f'    inputs {{\n      key: "{inp.name}"\n      value {{\n'
            f"        data_type: {inp.data_type}\n"
            f"        dims: [ {inp.channels}, {WARMUP_SIDE}, {WARMUP_SIDE} ]\n"
            f"        zero_data: true\n      }}\n    }}\n  }}")
    return "model_warmup [\n" + ",\n".join(blocks) + "\n]\n"


def render_config(name: str, platform: str, inp: Tensor, out: Tensor, opts: RepoOptions,
                  sha256: str, precision: str, extra: str = "") -> str:
    """config.pbtxt text (protobuf text format of Triton's ModelConfig)."""
    preferred = [b for b in _batch_sizes(opts.max_batch) if b > 1] or [opts.max_batch]
    return (
        f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {opts.max_batch}\n'
        + _io_block("input", inp) + _io_block("output", out)
        # Tiles of the same size from concurrent requests (other images, other clients) are
        # stacked into one batch; a lone tile waits at most max_queue_delay for company.
        + "dynamic_batching {\n"
        + f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
        + f"  max_queue_delay_microseconds: {opts.max_queue_delay_us}\n}}\n"
        + f"instance_group [\n  {{\n    count: {opts.instances}\n    kind: {KINDS[opts.kind]}\n  }}\n]\n"
        + extra
        + _warmup(inp, opts.max_batch)
        + f'parameters {{\n  key: "{SHA_PARAMETER}"\n  value {{ string_value: "{sha256}" }}\n}}\n'
        + f'parameters {{\n  key: "upres_precision"\n  value {{ string_value: "{precision}" }}\n}}\n'
    )


def validate_config(text: str) -> str | None:
    """Parse ``text`` with Triton's own ModelConfig schema; returns None when tritonclient (which
    ships the schema) is not installed, else the parsed model's name. Raises RepoError if invalid."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return None
    try:
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise RepoError(f"config.pbtxt does not parse as Triton's ModelConfig: {exc}") from None
    return str(config.name)


def _write_model(folder: Path, config: str, files: dict[str, Path]) -> None:
    (folder / "1").mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = folder / "1" / name
        with atomic_output(target) as tmp:  # Triton polling the repository never sees half a file
            shutil.copyfile(source, tmp)
    atomic_write_text(folder / "config.pbtxt", config)


def export_repo(model: Path, repo: Path, precision: str, opts: RepoOptions,
                name: str | None = None) -> list[RepoModel]:
    """Write (or overwrite) this model's entries in ``repo``; returns what was written."""
    if precision not in PRECISIONS:
        raise RepoError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    opts.check()
    inp, out = model_io(model)
    sha = file_sha256(model)
    name = name or served_name(model)
    written = []
    onnx_config = render_config(name, "onnxruntime_onnx", inp, out, opts, sha, precision)
    validate_config(onnx_config)
    _write_model(repo / name, onnx_config, {"model.onnx": model})
    written.append(RepoModel(name, repo / name, onnx_config, sha))
    if opts.plans:
        trt = f"{name}-trt"
        files = {f"model_sm{cc.replace('.', '')}.plan": path for cc, path in sorted(opts.plans.items())}
        mapping = "".join(f'cc_model_filenames {{\n  key: "{cc}"\n  value: "model_sm{cc.replace(".", "")}'
                          f'.plan"\n}}\n' for cc in sorted(opts.plans))
        default = f'default_model_filename: "{next(iter(files))}"\n'
        trt_config = render_config(trt, "tensorrt_plan", inp, out, opts, sha, precision,
                                   extra=default + mapping)
        validate_config(trt_config)
        _write_model(repo / trt, trt_config, files)
        written.append(RepoModel(trt, repo / trt, trt_config, sha))
    return written
