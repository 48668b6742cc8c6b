"""The compute step of the GPU pipeline: one model call enqueued on a stream, device to device.

The pipeline owns streams, staging and I/O buffers; a step only turns an (n, C, h, w) float32
buffer into an (n, C', h*s, w*s) float32 buffer on the stream it is given. A step is created per
stream (`for_lane`), because a TensorRT execution context may run one enqueue at a time.
"""

from __future__ import annotations

from typing import Protocol

from upres.gpu.memory import DeviceBuffer


class LaneStep(Protocol):
    def run(self, stream: int, src: int, n: int, h: int, w: int, dst: int) -> None:
        """Enqueue the model on `stream`: src (n, in_channels, h, w) -> dst (n, out, h*s, w*s)."""
        ...


class ModelStep(Protocol):
    name: str
    scale: int
    in_channels: int
    out_channels: int
    pooled: bool  # activations live in the pipeline's pool (TensorRT) or in the framework's (torch)

    def for_lane(self, scratch: DeviceBuffer, max_side: int) -> LaneStep:
        """A step for one stream, for inputs up to max_side x max_side. `scratch` is the lane's
        activation memory (empty unless `pooled`); the steps of one lane share it, since they
        run one after another on the lane's stream."""
        ...

    def activation_bytes(self, side: int) -> int | None:
        """Device memory one call on a side x side tile needs beyond its I/O buffers (None: this
        side cannot run)."""
        ...
