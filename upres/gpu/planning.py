"""Device memory plan for a GPU backend: tile side and stream count within `--memory`.

device bytes = resident model memory (weights, measured once loaded) + streams x (activations
of one tile + the lane's I/O buffers) + blend canvas (when blending on the device). Activations
are the TensorRT engine's context memory (read from the engine's manifest, no TensorRT needed)
or PyTorch's measured peak per tile. Every stream runs its own tile at the same time, so each
needs its own activations. The target is hard: the pool is allocated at exactly the planned
size, so nothing outside the plan can be allocated from it, and PyTorch's allocator is capped at
what the plan leaves it. The CUDA context itself (driver and library code, a few hundred MiB) is
not upres's to plan and is not counted.
"""

from __future__ import annotations

from collections.abc import Callable

from upres.core.sizes import format_size
from upres.gpu.buffers import LaneLayout
from upres.gpu.memory import align_up
from upres.runtime.chain import DevicePlan
from upres.runtime.planner import PlanError

TILE_STEP = 16
MIN_CORE = 16  # below this the halo dominates: most of each model call is thrown away
USEFUL_CORE = 128  # fewer streams are tried before tiles get smaller than this
MAX_SIDE = 2048
DEFAULT_STREAMS = 3  # upload, compute and download of three tiles in flight


# Activation bytes of one tile with this padded side (LR px); None where it cannot run at all
# (beyond an engine's profile).
ActivationFn = Callable[[int], int | None]


def _total(layout: LaneLayout, activation: int, streams: int, fixed: int) -> int:
    return streams * (activation + layout.device_bytes()) + fixed


def _sides(halo: int, max_side: int) -> list[int]:
    smallest = 2 * halo + MIN_CORE
    top = max_side - max_side % TILE_STEP if max_side >= TILE_STEP else max_side
    sides = list(range(top, smallest - 1, -TILE_STEP))
    return sides or [max_side]


def plan_device(
    target: int,
    *,
    scale: int,
    halo: int,
    hybrid: bool,
    activation: ActivationFn,
    streams: int = DEFAULT_STREAMS,
    max_side: int = MAX_SIDE,
    canvas: int = 0,
    resident: int = 0,
) -> DevicePlan:
    """Largest tile with `streams` streams, as long as the core stays >= USEFUL_CORE; then fewer
    streams; then smaller tiles with one stream. Raises PlanError if nothing fits."""
    if target <= 0 or streams < 1 or scale < 1 or halo < 0 or canvas < 0 or resident < 0:
        raise ValueError(f"bad device plan request: target={target}, streams={streams}, "
                         f"scale={scale}, halo={halo}")
    sides = _sides(halo, max_side)
    useful = [s for s in sides if s - 2 * halo >= USEFUL_CORE] or sides[:1]
    for n, candidates in [(n, useful) for n in range(streams, 0, -1)] + [(1, sides)]:
        for side in candidates:
            act = activation(side)
            if act is None:
                continue
            act = align_up(act)  # the pool hands out 256-byte aligned pieces
            layout = LaneLayout(side, scale, hybrid)
            if _total(layout, act, n, canvas + resident) <= target:
                notes = [f"tile side {side} (core {side - 2 * halo} + halo {halo} each side), "
                         f"{n} stream(s) fit {format_size(target)}"]
                if n < streams:
                    notes.append(f"{streams} streams would not fit with a tile of core "
                                 f">= {USEFUL_CORE}: {n} stream(s), less copy/compute overlap")
                return DevicePlan(side, side - 2 * halo, n, act, layout.device_bytes(), canvas,
                                  resident, target, tuple(notes))
    smallest = sides[-1]
    act = activation(smallest)
    if act is None:
        raise PlanError(f"no tile side between {smallest} and {max_side} can run on this engine")
    need = _total(LaneLayout(smallest, scale, hybrid), act, 1, canvas + resident)
    raise PlanError(f"device memory target {format_size(target)} is too small: one stream with the "
                    f"smallest tile (side {smallest}) needs {format_size(need)}; raise --memory")


def describe(plan: DevicePlan) -> str:
    lines = [f"device: weights {format_size(plan.resident)} + {plan.streams} stream(s) x "
             f"(activations {format_size(plan.activation_per_stream)} + I/O "
             f"{format_size(plan.io_per_stream)}) + canvas {format_size(plan.canvas)} = "
             f"{format_size(plan.total)} of {format_size(plan.target)}"]
    return "\n".join(lines + [f"  - {n}" for n in plan.notes])
