"""Build the tile chain for a mode: resolve models, create backends, report what was chosen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from upres.core.choices import Mode
from upres.core.errors import BackendUnavailable, ModelError
from upres.core.hashing import file_sha256
from upres.core.model import ModelRef
from upres.runtime import tail
from upres.runtime.backends import select
from upres.runtime.backends.base import Backend, BackendChoice
from upres.runtime.backends.registry import Runs, spec
from upres.runtime.catalog import DEFAULT_REFINE, require_rgb, resolve
from upres.runtime.chain import DevicePlan, TileChain
from upres.runtime.denoise import OFF, DenoiseSetting, texture_at
from upres.runtime.interpolate import interpolated_path
from upres.runtime.stages import DeterministicChain, FaithfulChain, FaithfulTailChain, HybridChain

SCALES = (2, 4)
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ChainSetup:
    chain: TileChain
    mode: Mode | None  # None: the chain does not upscale (`upres clean` alone)
    scale: int
    backend: str
    backend_reason: str
    precision: str
    models: dict[str, ModelRef] = field(default_factory=dict)  # the chain's stages, by role
    device: DevicePlan | None = None  # GPU pipeline backends: the device memory plan
    denoise: DenoiseSetting = OFF
    # The coarse model's restoration twin: not a stage of its own, it moves the coarse stage's
    # weights (--denoise), so outputs record it beside the stages.
    restore: ModelRef | None = None
    # auto denoise: the chain at another strength, built on first use (None: `chain` serves all).
    variants: Callable[[float], TileChain] | None = None
    keep_variants: int = 11  # GPU pipelines hold device memory each: one at a time there
    _built: dict[float, TileChain] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mode_name(self) -> str:
        """The mode as sidecars, reports and `upres plan` write it ("none" for no upscale)."""
        return self.mode or "none"

    @property
    def recorded_models(self) -> dict[str, ModelRef]:
        """Every model an output depends on: the stages, and the restoration twin if one is used."""
        return self.models | ({"restore": self.restore} if self.restore is not None else {})

    def chain_for(self, strength: float) -> TileChain:
        """The tile chain for an image upscaled at this denoise strength."""
        if self.variants is None or strength == self.denoise.strength:
            return self.chain
        if strength not in self._built:
            while self._built and len(self._built) >= self.keep_variants:
                self._built.pop(next(iter(self._built))).close()
            self._built[strength] = self.variants(strength)
        return self._built[strength]

    def describe(self) -> dict[str, object]:
        return {
            "mode": self.mode_name,
            "scale": self.scale,
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "precision": self.precision,
            "denoise": str(self.denoise),
            "halo_required": self.chain.halo,
            "models": {k: {"path": str(m.path), "sha256": m.sha256, "name": m.info.name,
                           "receptive_field": m.info.receptive_field, "probed": m.probed}
                       for k, m in self.recorded_models.items()},
            **({"device_plan": self.device.to_dict()} if self.device is not None else {}),
            **({"device_memory": measured} if (measured := self.device_memory()) else {}),
        }

    def close(self) -> None:
        """Free the chain and the variants built for other denoise strengths."""
        while self._built:
            self._built.popitem()[1].close()
        self.chain.close()

    def device_memory(self) -> dict[str, int] | None:
        """GPU pipeline chains: device memory measured so far beside the plan and target."""
        return self.chain.device_report()


def build_chain(
    mode: Mode = Mode.HYBRID,
    scale: int | None = 4,
    model: str | None = None,
    texture: float = 0.5,
    backend: str = "auto",
    precision: str = "fp32",
    threads: int = 0,
    memory: int | None = None,
    streams: int = 3,
    denoise: DenoiseSetting | None = None,
) -> ChainSetup:
    """memory/streams: the device memory target (hard; None = most of what is free) and the CUDA
    streams of the GPU pipeline backends (trt, torch-cuda); the CPU backends ignore them.
    denoise: a fixed strength toward the restoration model, or auto (per image, through
    ChainSetup.chain_for); None = 0, the clean models alone. A mode given by name (a script's
    string) is parsed here, so a bad one fails as the CLI's does."""
    mode = Mode.parse(mode)
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
    if mode is Mode.DETERMINISTIC:
        if scale not in SCALES:
            raise ValueError(f"--scale must be one of {SCALES}, got {scale}")
        return ChainSetup(DeterministicChain(scale), mode, scale, "none",
                          "deterministic mode runs no network", precision)
    backend_spec = spec(choice.name)
    gpu = backend_spec.runs is Runs.CHAIN
    if gpu:
        why = select.unavailable(choice.name)
        if why:
            raise BackendUnavailable(why)
    # PyTorch runs the fp32 weights (in fp16 when asked); TensorRT and onnxruntime run the ONNX
    # graph of the precision asked for (fp16/int8 graphs made by `upres calibrate`).
    graphs = precision if backend_spec.onnx_precision or not gpu else "fp32"
    coarse = require_rgb(resolve(model or f"coarse-x{scale}", graphs))
    if scale is not None and coarse.info.scale != scale:
        raise ValueError(f"model {coarse.path.name} upscales x{coarse.info.scale}, "
                         f"but --scale {scale} was asked for")
    s = coarse.info.scale
    denoise = denoise or OFF
    restore = _restore_for(coarse, model, s, graphs, denoise)
    refine = resolve(DEFAULT_REFINE, "fp32") if mode is Mode.HYBRID else None
    models = {"coarse": coarse} | ({"refine": refine} if refine is not None else {})

    def coarse_at(strength: float) -> ModelRef:
        if strength == 0.0 or restore is None:
            return coarse
        path = interpolated_path(coarse.path, coarse.sha256, restore.path, restore.sha256, strength)
        return ModelRef(path, coarse.info, file_sha256(path), probed=False)

    def chain_at(strength: float) -> TileChain:
        texture_here = texture_at(texture, strength)
        if gpu:
            return backend_spec.opener()(choice.name, coarse_at(strength), refine, texture_here,
                                         precision, memory, streams)
        return _cpu_chain(choice.name, coarse_at(strength), refine, texture_here, threads)

    chain = chain_at(denoise.strength)
    return ChainSetup(chain, mode, s, choice.name, choice.reason, precision, models,
                      chain.device_plan(),
                      denoise, restore, chain_at if denoise.auto and restore is not None else None,
                      1 if gpu else 11)


def _restore_for(coarse: ModelRef, model: str | None, scale: int, precision: str,
                 denoise: DenoiseSetting) -> ModelRef | None:
    """The restoration twin of the built-in coarse model, where denoise can use it."""
    if not denoise.auto and denoise.strength == 0.0:
        return None
    # A model named by path runs as given (even a copy of a built-in file): only the built-in
    # name has a twin.
    if model is not None and model != f"coarse-x{scale}":
        if denoise.auto:
            return None  # a model of the user's runs as given
        raise ValueError("--denoise applies to the built-in models; --model runs its model as given "
                         "(use --denoise 0 or auto)")
    return resolve(f"restore-x{scale}", precision)


_B = TypeVar("_B", Backend, "tail.TailSession")


def _cpu_chain(backend: str, coarse: ModelRef, refine: ModelRef | None, texture: float,
               threads: int) -> TileChain:
    s = coarse.info.scale
    coarse_backend: Backend | None = None
    if backend == "ort-cpu":
        # The graph's dequantise-add-shuffle tail runs faster on the host (upres.runtime.tail):
        # faithful does it inside the pass that quantises the output, hybrid into the float
        # planes its refine stage reads. A graph that ends otherwise runs whole.
        split = tail.split_graph(coarse.path, coarse.sha256, s)
        if split is not None:
            session = _agrees(coarse, tail.TailSession(split, threads))
            if refine is None:
                return FaithfulTailChain(session, s, coarse.info.receptive_field)
            coarse_backend = tail.PlanarTailSession(session)
    if coarse_backend is None:
        coarse_backend = _agrees(coarse, select.create(backend, coarse.path, threads))
    if refine is None:
        return FaithfulChain(coarse_backend, s, coarse.info.receptive_field)
    refine_backend = _agrees(refine, select.create(backend, refine.path, threads))
    return HybridChain(coarse_backend, refine_backend, s, coarse.info.receptive_field,
                       refine.info.receptive_field, texture)


def _agrees(ref: ModelRef, backend: _B) -> _B:
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
