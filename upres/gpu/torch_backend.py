"""The `torch-cuda` compute step: the PyTorch model on the pipeline's own CUDA streams.

torch is imported only here, and only when this backend is chosen. The pipeline's streams are
cuda-python streams handed to PyTorch as `torch.cuda.ExternalStream`, and its device buffers are
wrapped as tensors through `__cuda_array_interface__` (no copy): one primary context, one set of
streams, and PyTorch's caching allocator only holds the model's activations. Those are measured
(`torch.cuda.max_memory_allocated` over a few tile sizes, a fitted line) instead of guessed, and
capped with `set_per_process_memory_fraction`, so the memory target is hard for PyTorch too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upres.core.errors import BackendUnavailable
from upres.gpu.memory import DeviceBuffer
from upres.runtime.memory import MemoryModel

PROBE_SIDES = (48, 96, 160)
# cuDNN may pick algorithms with more workspace at sizes between the probed ones; the plan keeps
# this much headroom over the fitted line.
ACTIVATION_MARGIN = 1.25


def torch_cuda_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install 'upres[export]' with a CUDA build of torch)"
    import torch

    if not torch.cuda.is_available():
        return f"this torch ({torch.__version__}) sees no CUDA GPU"
    return None


@dataclass(frozen=True)
class _DeviceArray:
    """A pool buffer described for `torch.as_tensor` (zero copy)."""

    ptr: int
    shape: tuple[int, ...]

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        # Version 2, no "stream" entry: ordering is the pipeline's business (same stream).
        return {"shape": self.shape, "typestr": "<f4", "data": (self.ptr, False), "strides": None,
                "version": 2}


def _tensor(ptr: int, shape: tuple[int, ...]) -> Any:
    import torch

    return torch.as_tensor(_DeviceArray(ptr, shape), device="cuda")


class TorchModel:
    def __init__(self, weights: Path, scale: int, in_channels: int = 3, out_channels: int = 3,
                 precision: str = "fp32") -> None:
        missing = torch_cuda_missing()
        if missing:
            raise BackendUnavailable(f"torch-cuda: {missing}")
        if precision not in ("fp32", "fp16"):
            raise BackendUnavailable(f"torch-cuda runs fp32 or fp16, not {precision}: use the trt "
                                     "backend (Q/DQ engine) or ort-cpu for int8")
        if not weights.is_file():
            raise BackendUnavailable(f"torch-cuda runs upres's own models from their PyTorch "
                                     f"weights; {weights.name} is not there")
        import torch

        from upres.models.train import load_model

        # fp32 means fp32: no TF32 in cuDNN convolutions (it rounds inputs to 10-bit mantissas).
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        self.precision = precision
        module = load_model(weights).eval().to("cuda")
        self.module = module.half() if precision == "fp16" else module
        self.name = f"torch-cuda:{weights.stem}"
        self.pooled = False  # PyTorch's caching allocator holds the activations
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        self._memory: MemoryModel | None = None

    def _forward(self, x: Any) -> Any:
        import torch

        with torch.inference_mode():
            if self.precision == "fp16":
                return self.module(x.half()).float()
            return self.module(x)

    def memory_model(self) -> MemoryModel:
        """Peak bytes PyTorch allocates for one tile, as a line in its input pixels (measured)."""
        if self._memory is None:
            import torch

            samples = []
            for side in PROBE_SIDES:
                x = torch.rand((1, self.in_channels, side, side), device="cuda")
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                y = self._forward(x)
                torch.cuda.synchronize()
                samples.append((side * side, torch.cuda.max_memory_allocated() - base))
                del x, y
            self._memory = MemoryModel.fit(samples)
        return self._memory

    def activation_bytes(self, side: int) -> int | None:
        return math.ceil(self.memory_model().estimate(side * side) * ACTIVATION_MARGIN)

    def for_lane(self, scratch: DeviceBuffer, max_side: int) -> TorchLane:
        return TorchLane(self)


class TorchLane:
    def __init__(self, model: TorchModel) -> None:
        self.model = model
        self._streams: dict[int, Any] = {}

    def _stream(self, handle: int) -> Any:
        import torch

        if handle not in self._streams:
            self._streams[handle] = torch.cuda.ExternalStream(handle)
        return self._streams[handle]

    def run(self, stream: int, src: int, n: int, h: int, w: int, dst: int) -> None:
        import torch

        m = self.model
        s = m.scale
        with torch.cuda.stream(self._stream(stream)):
            x = _tensor(src, (n, m.in_channels, h, w))
            y = m._forward(x)
            _tensor(dst, (n, m.out_channels, h * s, w * s)).copy_(y)


class TorchMemoryCap:
    """PyTorch's allocator may hold at most `limit` bytes (it raises OOM instead of growing);
    `close` lifts the cap and hands cached blocks back to the driver."""

    def __init__(self, limit: int) -> None:
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(max(0.0, min(1.0, limit / total)))
        self.limit = limit

    def close(self) -> None:
        import torch

        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def torch_peak() -> tuple[int, int]:
    """(max allocated, max reserved) by PyTorch since the last reset."""
    import torch

    return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())


def reset_torch_peak() -> None:
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
