"""Build the tile chain for a mode: resolve models, create backends, report what was chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

from upres.core.errors import BackendUnavailable, ModelError
from upres.core.model import ModelRef
from upres.runtime.backends import select
from upres.runtime.backends.base import Backend, BackendChoice
from upres.runtime.backends.registry import Runs, spec
from upres.runtime.catalog import DEFAULT_REFINE, require_rgb, resolve
from upres.runtime.chain import DevicePlan, TileChain
from upres.runtime.stages import MODES, DeterministicChain, FaithfulChain, HybridChain

SCALES = (2, 4)
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ChainSetup:
    chain: TileChain
    mode: str
    scale: int
    backend: str
    backend_reason: str
    precision: str
    models: dict[str, ModelRef] = field(default_factory=dict)
    device: DevicePlan | None = None  # GPU pipeline backends: the device memory plan

    def describe(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "scale": self.scale,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "precision": self.precision,
            "halo_required": self.chain.halo,
            "models": {k: {"path": str(m.path), "sha256": m.sha256, "name": m.info.name,
                           "receptive_field": m.info.receptive_field, "probed": m.probed}
                       for k, m in self.models.items()},
            **({"device_plan": self.device.to_dict()} if self.device is not None else {}),
            **({"device_memory": measured} if (measured := self.device_memory()) else {}),
        }

    def device_memory(self) -> dict[str, int] | None:
        """GPU pipeline chains: device memory measured so far beside the plan and target."""
        return self.chain.device_report()


def build_chain(
    mode: str = "hybrid",
    scale: int | None = 4,
    model: str | None = None,
    texture: float = 0.5,
    backend: str = "auto",
    precision: str = "fp32",
    threads: int = 0,
    memory: int | None = None,
    streams: int = 3,
) -> ChainSetup:
    """memory/streams: the device memory target (hard; None = most of what is free) and the CUDA
    streams of the GPU pipeline backends (trt, torch-cuda); the CPU backends ignore them."""
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not 0.0 <= texture <= 1.0:
        raise ValueError(f"--texture must be within 0..1, got {texture}")
    choice = select.choose(backend)
    if precision == "fp16" and choice.name == "ort-cpu":
        # ONNX Runtime's CPU provider has few FP16 kernels: an FP16 graph runs slower than FP32
        # there and gains no accuracy, so FP16 is for GPU backends.
        choice = BackendChoice(choice.name, choice.reason + "; fp16 requested, but the CPU "
                               "provider runs FP32 faster: running fp32")
        precision = "fp32"
    if mode == "deterministic":
        if scale not in SCALES:
            raise ValueError(f"--scale must be one of {SCALES}, got {scale}")
        return ChainSetup(DeterministicChain(scale), mode, scale, "none",
                          "deterministic mode runs no network", precision)
    if spec(choice.name).runs is Runs.CHAIN:
        return _gpu_chain(choice, mode, scale, model, texture, precision, memory, streams)
    coarse = require_rgb(resolve(model or f"coarse-x{scale}", precision))
    if scale is not None and coarse.info.scale != scale:
        raise ValueError(f"model {coarse.path.name} upscales x{coarse.info.scale}, "
                         f"but --scale {scale} was asked for")
    s = coarse.info.scale
    coarse_backend = _agrees(coarse, select.create(choice.name, coarse.path, threads))
    if mode == "faithful":
        chain: TileChain = FaithfulChain(coarse_backend, s, coarse.info.receptive_field)
        return ChainSetup(chain, mode, s, choice.name, choice.reason, precision, {"coarse": coarse})
    refine = resolve(DEFAULT_REFINE, "fp32")
    refine_backend = _agrees(refine, select.create(choice.name, refine.path, threads))
    chain = HybridChain(coarse_backend, refine_backend, s, coarse.info.receptive_field,
                        refine.info.receptive_field, texture)
    return ChainSetup(chain, mode, s, choice.name, choice.reason, precision,
                      {"coarse": coarse, "refine": refine})


def _agrees(ref: ModelRef, backend: Backend) -> Backend:
    """``backend`` once its graph's channel counts (where it states them) match ``ref``'s info:
    metadata that misdescribes its graph would fail every image instead."""
    for side, stated, described in (("input", getattr(backend, "input_channels", None),
                                     ref.info.input_channels),
                                    ("output", getattr(backend, "output_channels", None),
                                     ref.info.output_channels)):
        if stated is not None and stated != described:
            raise ModelError(f"{ref.path}: its graph has {stated} {side} channels, its upres "
                             f"metadata says {described}")
    return backend


def _gpu_chain(choice: BackendChoice, mode: str, scale: int | None, model: str | None,
               texture: float, precision: str, memory: int | None, streams: int) -> ChainSetup:
    """The whole chain on the CUDA-stream pipeline (upres.gpu): models, kernels, memory plan."""
    why = select.unavailable(choice.name)
    if why:
        raise BackendUnavailable(why)
    # PyTorch runs the fp32 weights (in fp16 when asked); TensorRT builds from the ONNX graph of
    # the precision asked for (fp16/int8 graphs made by `upres calibrate`).
    backend = spec(choice.name)
    coarse = require_rgb(resolve(model or f"coarse-x{scale}",
                                 precision if backend.onnx_precision else "fp32"))
    if scale is not None and coarse.info.scale != scale:
        raise ValueError(f"model {coarse.path.name} upscales x{coarse.info.scale}, "
                         f"but --scale {scale} was asked for")
    refine = resolve(DEFAULT_REFINE, "fp32") if mode == "hybrid" else None
    chain: TileChain = backend.opener()(choice.name, coarse, refine, texture, precision, memory,
                                        streams)
    models = {"coarse": coarse} | ({"refine": refine} if refine is not None else {})
    return ChainSetup(chain, mode, coarse.info.scale, choice.name, choice.reason, precision, models,
                      chain.device_plan())
