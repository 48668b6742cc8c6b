"""ONNX -> TensorRT engine (TensorRT 10/11 Python API), stored in the engine cache.

Networks are strongly typed: the precision comes from the ONNX graph itself (a mixed-precision
FP16 graph or a Q/DQ INT8 graph, both written by `upres calibrate`), never from builder flags.
So `--precision` only checks that the graph matches and goes into the cache key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from upres.core.atomic import atomic_write_bytes
from upres.core.errors import BackendUnavailable
from upres.core.hashing import file_sha256
from upres.gpu.engine_cache import (
    CachedEngine,
    EngineCache,
    EngineKey,
    Profile,
    device_fields,
    tensorrt_field,
)

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
DEFAULT_OPTIMIZATION_LEVEL = 3  # TensorRT's default; 4-5 search longer for little gain on convs


def tensorrt_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return ("the tensorrt package is not installed (it comes from NVIDIA's package index, "
                "pip install tensorrt on a machine with an NVIDIA GPU)")
    return None


def require_tensorrt(what: str) -> Any:
    missing = tensorrt_missing()
    if missing:
        raise BackendUnavailable(f"{what}: {missing}")
    import tensorrt as trt

    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise BackendUnavailable(f"{what}: TensorRT {trt.__version__} is too old; upres uses the "
                                 "TensorRT 10/11 API (execute_async_v3, device_memory_size_v2)")
    return trt


@dataclass(frozen=True)
class BuildOptions:
    precision: str
    profile: Profile
    batch: int = 1
    workspace: int = 0  # bytes; 0 leaves TensorRT's default (the device's memory)
    optimization_level: int = DEFAULT_OPTIMIZATION_LEVEL
    hardware_compat: bool = False
    version_compatible: bool = False


def graph_precision(model: onnx.ModelProto) -> str:
    """What a strongly typed build of this graph computes in: int8 (Q/DQ), fp16 or fp32."""
    ops = {n.op_type for n in model.graph.node}
    if ops & QDQ_OPS:
        return "int8"
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer) or any(
            a.name == "to" and a.i == half for n in model.graph.node if n.op_type == "Cast"
            for a in n.attribute):
        return "fp16"
    return "fp32"


def check_precision(onnx_path: Path, precision: str) -> None:
    found = graph_precision(onnx.load(str(onnx_path), load_external_data=False))
    if found != precision:
        hint = {"int8": "make a Q/DQ model with `upres calibrate --precision int8`",
                "fp16": "make a mixed-precision model with `upres calibrate --precision fp16`",
                "fp32": "pass the fp32 ONNX"}[precision]
        raise ValueError(f"{onnx_path.name} is a {found} graph, but --precision {precision} was asked "
                         f"for; TensorRT networks are strongly typed (precision comes from the graph): "
                         f"{hint}")


def engine_key(onnx_sha256: str, options: BuildOptions, tensorrt_version: str, gpu_name: str,
               compute_capability: tuple[int, int]) -> EngineKey:
    gpu, cc = device_fields(gpu_name, compute_capability, options.hardware_compat)
    return EngineKey(onnx_sha256, tensorrt_field(tensorrt_version, options.version_compatible), gpu,
                     cc, options.precision, options.profile, options.batch, options.workspace,
                     options.optimization_level, options.hardware_compat, options.version_compatible)


def runtime_for(trt: Any, logger: Any, key: EngineKey) -> Any:
    """A TensorRT runtime that may load this key's engine. A version-compatible engine carries
    its own lean runtime (host code); engines reach here only from our cache after their sha256
    matched the manifest we wrote, so that code is ours to trust."""
    runtime = trt.Runtime(logger)
    if key.version_compatible:
        runtime.engine_host_code_allowed = True
    return runtime


def _network_flags(trt: Any) -> int:
    # TensorRT 10 needs STRONGLY_TYPED to take precisions from the graph; 11 always does and only
    # keeps the flag for compatibility. EXPLICIT_BATCH is gone (always on since 10).
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _parser_error(error: Any) -> str:
    return f"{error.desc()} (node {error.node()}, {error.code()})"


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> Any:
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        # ParserError has no __str__ in the bindings: its description and node say what failed.
        errors = "; ".join(_parser_error(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    return network, parser


def _add_profile(builder: Any, config: Any, network: Any, options: BuildOptions) -> None:
    profile = builder.create_optimization_profile()
    p, b = options.profile, options.batch
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if len(shape) != 4:
            raise ValueError(f"input {tensor.name!r} has shape {shape}; upres engines take NCHW")
        channels = shape[1]
        if channels < 0:
            raise ValueError(f"input {tensor.name!r} has a dynamic channel count")
        batch_min = 1 if shape[0] < 0 else shape[0]
        batch_max = b if shape[0] < 0 else shape[0]
        profile.set_shape(tensor.name, (batch_min, channels, p.min, p.min),
                          (batch_max, channels, p.opt, p.opt), (batch_max, channels, p.max, p.max))
    config.add_optimization_profile(profile)


def _configure(trt: Any, builder: Any, config: Any, options: BuildOptions) -> None:
    if options.workspace:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace)
    config.builder_optimization_level = options.optimization_level
    if options.hardware_compat:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if options.version_compatible:
        # Embeds the lean runtime: later TensorRT versions of the same major load the engine.
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    # Lets a context size its activation memory for the shapes it will really see
    # (update_device_memory_size_for_shapes) rather than the profile's maximum.
    resize = getattr(trt.PreviewFeature, "RUNTIME_ACTIVATION_RESIZE_10_10", None)
    if resize is not None:
        config.set_preview_feature(resize, True)


def _load_timing_cache(config: Any, path: Path) -> None:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, False)  # ignore_mismatch=False: another GPU's timings are refused


def _save_timing_cache(config: Any, path: Path) -> None:
    data = bytes(memoryview(config.get_timing_cache().serialize()))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _io(trt: Any, engine: Any) -> tuple[dict[str, str], dict[str, str]]:
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dtype = str(engine.get_tensor_dtype(name)).rsplit(".", 1)[-1]
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs)[name] = dtype
    return inputs, outputs


def build_engine(onnx_path: Path, options: BuildOptions, cache: EngineCache,
                 log: Callable[[str], None] = lambda _: None, force: bool = False) -> CachedEngine:
    """The cached engine for this ONNX and these options on this GPU, building it when missing
    or stale."""
    from upres.gpu.cuda import device_info, gpu_missing, init_device

    trt = require_tensorrt("upres build")
    missing = gpu_missing()
    if missing:
        raise BackendUnavailable(f"upres build: TensorRT builds for the GPU it runs on; {missing}")
    check_precision(onnx_path, options.precision)
    init_device(0)
    device = device_info(0)
    version = str(trt.__version__)
    key = engine_key(file_sha256(onnx_path), options, version, device.name, device.compute_capability)
    cached, why = cache.check(key, onnx_path.stem, version)
    if cached is not None and not force:
        log(f"cached: {cached.engine_path}")
        return cached
    log(f"building {onnx_path.name} ({options.precision}, profile {options.profile}, batch "
        f"{options.batch}) on {device.name}: {why}")
    t0 = time.monotonic()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    _configure(trt, builder, config, options)
    _add_profile(builder, config, network, options)
    timing = cache.timing_cache_path(key, version)
    _load_timing_cache(config, timing)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine for {onnx_path.name} "
                           "(see the TensorRT messages above)")
    _save_timing_cache(config, timing)
    engine = runtime_for(trt, logger, key).deserialize_cuda_engine(serialized)
    inputs, outputs = _io(trt, engine)
    return cache.store(key, onnx_path.stem, bytes(memoryview(serialized)), tensorrt_built=version,
                       activation_bytes=int(engine.device_memory_size_v2), inputs=inputs,
                       outputs=outputs, build_seconds=time.monotonic() - t0,
                       extra={"onnx_path": str(onnx_path), "gpu_total_memory": device.total_memory})
