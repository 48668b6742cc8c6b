"""The CUDA-stream tile pipeline shared by the `trt` and `torch-cuda` backends.

N lanes, each owning a stream, four events, pinned host staging and device buffers from the pool
(allocated once). Tile k goes to lane k mod N: its upload, kernels, model call(s) and download are
enqueued on that lane's stream, so while tile k computes on one stream, tile k+1 uploads on the
next and tile k-1 downloads on the previous (the copy engines and the SMs work at once). The host
waits only for the oldest tile's "done" event, right before its lane is reused, which also keeps
outputs in order and bounds the work in flight to N tiles.

Per tile: HWC samples -> pinned -> device -> CHW float (normalize kernel) -> coarse model -> for
hybrid: Sobel + refine model + gated compose -> HWC float clipped (quantize kernel) -> pinned ->
host. Event times per tile show the overlap (`PipelineStats`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from upres.gpu.buffers import LaneLayout
from upres.gpu.cuda import mem_get_info
from upres.gpu.kernel_launch import CudaKernels
from upres.gpu.memory import DeviceBuffer, DevicePool, PinnedBuffer, copy_d2h_async, copy_h2d_async
from upres.gpu.steps import LaneStep, ModelStep
from upres.gpu.streams import Event, Stream


@dataclass(frozen=True)
class TileTiming:
    """Event times of one tile in ms since the pipeline started."""

    index: int
    lane: int
    start: float
    uploaded: float
    computed: float
    done: float


def _intersection(a: tuple[float, float], spans: list[tuple[float, float]]) -> float:
    """Length of `a` covered by the union of `spans`."""
    covered, cursor = 0.0, a[0]
    for s0, s1 in sorted(spans):
        s0, s1 = max(s0, cursor), min(s1, a[1])
        if s1 > s0:
            covered += s1 - s0
            cursor = s1
    return covered


@dataclass
class PipelineStats:
    tiles: list[TileTiming] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Wall time, summed stage times, and how much copy time ran under another tile's compute."""
        if not self.tiles:
            return {"tiles": 0}
        up = sum(t.uploaded - t.start for t in self.tiles)
        comp = sum(t.computed - t.uploaded for t in self.tiles)
        down = sum(t.done - t.computed for t in self.tiles)
        hidden = 0.0
        for t in self.tiles:
            others = [(o.uploaded, o.computed) for o in self.tiles if o.index != t.index]
            hidden += _intersection((t.start, t.uploaded), others)
            hidden += _intersection((t.computed, t.done), others)
        wall = max(t.done for t in self.tiles) - min(t.start for t in self.tiles)
        return {"tiles": len(self.tiles), "wall_ms": wall, "upload_ms": up, "compute_ms": comp,
                "download_ms": down, "copy_hidden_ms": hidden,
                "copy_hidden_fraction": hidden / (up + down) if up + down else 0.0}


class _Lane:
    def __init__(self, index: int, layout: LaneLayout, pool: DevicePool, steps: list[ModelStep]):
        self.index = index
        self.stream = Stream()
        self.events = [Event() for _ in range(4)]  # start, uploaded, computed, done
        pinned = layout.pinned_buffers()
        self.pin_in = PinnedBuffer(pinned["in"])
        self.pin_out = PinnedBuffer(pinned["out"])
        self.buf = {name: pool.alloc(n, f"lane {index} {name}")
                    for name, n in layout.device_buffers().items()}
        scratch_bytes = max((s.activation_bytes(layout.side * (1 if i == 0 else layout.scale)) or 0
                             for i, s in enumerate(steps) if s.pooled), default=0)
        scratch = pool.alloc(scratch_bytes, f"lane {index} activations") if scratch_bytes else \
            DeviceBuffer(0, 0)
        sides = [layout.side, layout.side * layout.scale]
        self.steps: list[LaneStep] = [s.for_lane(scratch, sides[i]) for i, s in enumerate(steps)]

    def close(self) -> None:
        self.stream.synchronize()
        for ev in self.events:
            ev.close()
        self.pin_in.close()
        self.pin_out.close()
        self.stream.close()


@dataclass
class _InFlight:
    index: int
    lane: _Lane
    out_shape: tuple[int, int, int]
    out_dtype: np.dtype


class TilePipeline:
    def __init__(self, kernels: CudaKernels, pool: DevicePool, layout: LaneLayout, streams: int,
                 coarse: ModelStep, refine: ModelStep | None = None, texture: float = 0.0) -> None:
        if layout.hybrid != (refine is not None):
            raise ValueError("a hybrid layout needs a refine step, and only it")
        self.kernels = kernels
        self.layout = layout
        self.scale = layout.scale
        self.texture = texture
        steps = [coarse] + ([refine] if refine is not None else [])
        self.lanes = [_Lane(i, layout, pool, steps) for i in range(streams)]
        self._t0 = Event()
        self.stats = PipelineStats()
        self._count = 0
        # The driver's free device memory, lowest seen as tiles finish (all processes included):
        # the measured side of the memory target.
        self.lowest_free = mem_get_info()[0]

    # -- one tile ------------------------------------------------------------------------------
    def _enqueue(self, lane: _Lane, tile: np.ndarray, out_dtype: np.dtype) -> tuple[int, int, int]:
        h, w = tile.shape[:2]
        side = self.layout.side
        if h > side or w > side:
            raise ValueError(f"tile {h}x{w} exceeds the planned {side}x{side}")
        k, b, st = self.kernels, lane.buf, lane.stream.handle
        channels = min(tile.shape[2], 3)
        staged = lane.pin_in.view((h, w, channels), tile.dtype)
        np.copyto(staged, tile[..., :channels])
        ev_start, ev_up, ev_comp, ev_done = lane.events
        ev_start.record(lane.stream)
        copy_h2d_async(b["in_hwc"].ptr, staged, st)
        ev_up.record(lane.stream)
        k.normalize(b["in_hwc"].ptr, tile.dtype, h, w, channels, 0, 0, h, w, channels,
                    b["in_chw"].ptr, st)
        lane.steps[0].run(st, b["in_chw"].ptr, 1, h, w, b["coarse"].ptr)
        hh, ww = h * self.scale, w * self.scale
        final = b["coarse"].ptr
        if len(lane.steps) > 1 and self.texture != 0:
            k.sobel_refine_input(b["coarse"].ptr, hh, ww, b["refine_in"].ptr, st)
            lane.steps[1].run(st, b["refine_in"].ptr, 1, hh, ww, b["residual"].ptr)
            # In place: each thread reads its residual pixel before writing the composed one.
            k.gated_compose(b["refine_in"].ptr, b["residual"].ptr, hh, ww, self.texture,
                            b["residual"].ptr, st)
            final = b["residual"].ptr
        k.quantize(final, hh, ww, 3, 0, 0, hh, ww, out_dtype, b["out_hwc"].ptr, st)
        ev_comp.record(lane.stream)
        copy_d2h_async(lane.pin_out.view((hh, ww, 3), out_dtype), b["out_hwc"].ptr, st)
        ev_done.record(lane.stream)
        return hh, ww, 3

    def _collect(self, item: _InFlight) -> np.ndarray:
        lane = item.lane
        ev_start, ev_up, ev_comp, ev_done = lane.events
        ev_done.synchronize()
        self.lowest_free = min(self.lowest_free, mem_get_info()[0])
        self.stats.tiles.append(TileTiming(
            item.index, lane.index, ev_start.elapsed_ms(self._t0), ev_up.elapsed_ms(self._t0),
            ev_comp.elapsed_ms(self._t0), ev_done.elapsed_ms(self._t0)))
        return lane.pin_out.view(item.out_shape, item.out_dtype).copy()

    # -- many tiles ----------------------------------------------------------------------------
    def map_tiles(self, tiles: Iterable[np.ndarray],
                  out_dtype: np.dtype | type = np.float32) -> Iterator[np.ndarray]:
        """(h, w, 3+) uint8/uint16/float32 tiles -> (h*s, w*s, 3) outputs in `out_dtype`, in order,
        up to one tile per lane in flight."""
        dt = np.dtype(out_dtype)
        pending: deque[_InFlight] = deque()
        if not self.stats.tiles and self._count == 0:
            self._t0.record(self.lanes[0].stream)
        try:
            for tile in tiles:
                lane = self.lanes[self._count % len(self.lanes)]
                if len(pending) == len(self.lanes):
                    yield self._collect(pending.popleft())  # that tile's lane is the one needed now
                shape = self._enqueue(lane, np.ascontiguousarray(tile), dt)
                pending.append(_InFlight(self._count, lane, shape, dt))
                self._count += 1
            while pending:
                yield self._collect(pending.popleft())
        finally:
            # Abandoned early (an error, a closed generator): let queued copies finish before the
            # next call refills the pinned buffers they read from or write to.
            for item in pending:
                item.lane.stream.synchronize()

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()
        self._t0.close()
