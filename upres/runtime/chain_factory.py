"""Build the tile chain for a mode: resolve models, create backends, report what was chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

from upres.runtime.backends import select
from upres.runtime.backends.base import BackendChoice
from upres.runtime.catalog import DEFAULT_REFINE, ModelRef, resolve
from upres.runtime.stages import MODES, DeterministicChain, FaithfulChain, HybridChain, TileFn

SCALES = (2, 4)
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ChainSetup:
    chain: TileFn
    mode: str
    scale: int
    backend: str
    backend_reason: str
    precision: str
    models: dict[str, ModelRef] = field(default_factory=dict)

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
        }


def build_chain(
    mode: str = "hybrid",
    scale: int | None = 4,
    model: str | None = None,
    texture: float = 0.5,
    backend: str = "auto",
    precision: str = "fp32",
    threads: int = 0,
) -> ChainSetup:
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
    coarse = resolve(model or f"coarse-x{scale}", precision)
    if scale is not None and coarse.info.scale != scale:
        raise ValueError(f"model {coarse.path.name} upscales x{coarse.info.scale}, "
                         f"but --scale {scale} was asked for")
    s = coarse.info.scale
    coarse_backend = select.create(choice.name, coarse.path, threads)
    if mode == "faithful":
        chain: TileFn = FaithfulChain(coarse_backend, s, coarse.info.receptive_field)
        return ChainSetup(chain, mode, s, choice.name, choice.reason, precision, {"coarse": coarse})
    refine = resolve(DEFAULT_REFINE, "fp32")
    refine_backend = select.create(choice.name, refine.path, threads)
    chain = HybridChain(coarse_backend, refine_backend, s, coarse.info.receptive_field,
                        refine.info.receptive_field, texture)
    return ChainSetup(chain, mode, s, choice.name, choice.reason, precision,
                      {"coarse": coarse, "refine": refine})
