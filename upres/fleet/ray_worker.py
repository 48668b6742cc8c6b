"""What a Ray worker needs to rebuild the driver's chain, and the actor that upscales whole images.

This module imports no Ray: the driver (``upres.fleet.ray_batch``) wraps :class:`ImageWorker` in
``ray.remote`` with the plan's resource request. Each worker resolves the models on its own node
and checks that it ended up with exactly the driver's settings (model hashes included), so every
sidecar of a batch says the same thing whichever node wrote it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from upres.batch import BatchRunner, ImageResult, RunOptions
from upres.core.choices import Mode
from upres.runtime.backends.registry import SPECS, DeviceKind
from upres.runtime.catalog import builtin_path
from upres.runtime.chain_factory import ChainSetup, build_chain
from upres.runtime.inputs import Job

# Backends whose workers each take a GPU from Ray.
GPU_BACKENDS = tuple(s.name for s in SPECS if s.device is DeviceKind.CUDA)


@dataclass(frozen=True)
class ChainSpec:
    """The arguments of :func:`build_chain` that reproduce a driver's :class:`ChainSetup`."""

    mode: Mode
    scale: int
    model: str | None  # a built-in name, or an absolute path every node must see
    texture: float | None  # None: the chain has no refine stage (deterministic, faithful)
    backend: str
    precision: str
    threads: int

    def build(self) -> ChainSetup:
        # No device memory target: a GPU pipeline worker plans for the GPU of its own node. A
        # chain without a refine stage ignores texture, so build_chain's default stands in.
        texture = 0.5 if self.texture is None else self.texture
        return build_chain(self.mode, self.scale, self.model, texture, self.backend,
                           self.precision, self.threads)


def _portable_model(setup: ChainSetup) -> str | None:
    """Built-in weights by name (their path differs between nodes' installs), others by path."""
    coarse = setup.models.get("coarse")
    if coarse is None:
        return None
    suffix = "" if setup.precision == "fp32" else f".{setup.precision}"
    name = coarse.path.name.removesuffix(".onnx").removesuffix(suffix)
    if builtin_path(name, setup.precision) == coarse.path:
        return name
    return str(coarse.path.resolve())


def chain_spec(setup: ChainSetup, threads: int) -> ChainSpec:
    """The spec for workers; ``threads`` is each worker's intra-op thread count."""
    # The driver's backend choice, not "auto": a node that picked another backend would write
    # other sidecars (and possibly other bytes) than its neighbours.
    backend = "ort-cpu" if setup.backend == "none" else setup.backend
    texture = setup.chain.texture
    assert setup.mode is not None, "only `upres run` batches (which upscale) go to Ray workers"
    return ChainSpec(setup.mode, setup.scale, _portable_model(setup),
                     None if texture is None else float(texture), backend, setup.precision, threads)


def _differences(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    keys = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    return ", ".join(f"{k}: {mine.get(k)!r} here, {theirs.get(k)!r} on the driver" for k in keys)


class ImageWorker:
    """A Ray actor's state: one chain (backends, sessions) built once, reused for every image."""

    def __init__(self, spec: ChainSpec, opts: RunOptions, settings: dict[str, Any]) -> None:
        self.runner = BatchRunner(spec.build(), opts)
        if self.runner.settings != settings:
            raise RuntimeError("this node's models or settings differ from the driver's ("
                               f"{_differences(self.runner.settings, settings)}); install the same "
                               "upres and models on every node")

    def pid(self) -> int:
        """The worker's process id: readiness check (the chain is built) and a handle for tests."""
        return os.getpid()

    def process(self, job: Job) -> ImageResult:
        """Upscale one image with the single-machine code path (atomic output, then sidecar).

        Failures of the image itself come back inside the result; only the death of this process
        surfaces as a Ray error, and Ray then retries the call on a restarted worker.
        """
        return self.runner.run_one(job, lambda message: None)
