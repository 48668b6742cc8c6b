"""The contender kinds `upres bench` knows, built from their specs. Apart from the base types
(upres.bench.contender), so that module imports no contender and no contender imports this."""

from __future__ import annotations

from pathlib import Path

from upres.bench.contender import BaseContender, BenchContext, ContenderSpec


def build(spec: ContenderSpec, ctx: BenchContext) -> BaseContender:
    """The contender a spec names. Imports stay inside so no contender pays for another's library."""
    if spec.kind == "upres":
        from upres.bench.upres_contender import UpresContender

        return UpresContender(threads=ctx.threads, memory=ctx.memory, denoise=ctx.denoise, **spec.params)
    if spec.kind == "eager":
        from upres.bench.eager import EagerContender

        return EagerContender(threads=ctx.threads, **spec.params)
    if spec.kind == "dnn_superres":
        from upres.bench.opencv_contenders import DnnSuperresContender

        folder = Path(ctx.peers) if ctx.peers else None
        return DnnSuperresContender(threads=ctx.threads, peers=folder, **spec.params)
    if spec.kind == "bicubic":
        from upres.bench.opencv_contenders import BicubicContender

        return BicubicContender(threads=ctx.threads, **spec.params)
    raise ValueError(f"unknown contender kind {spec.kind!r}")


def name_of(spec: ContenderSpec, ctx: BenchContext) -> str:
    """The display name without loading anything (building a contender is cheap; loading is not)."""
    return build(spec, ctx).name
