"""The CUDA runtime calls upres makes, on a machine with cuda-python but no GPU driver.

There cuda-python still converts every argument before the driver answers
cudaErrorInsufficientDriver, so a wrong argument type, count or name surfaces here as a TypeError
or AttributeError instead of as a CudaError. On a GPU host the GPU tests run these calls for real.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from upres.gpu import cuda, memory, streams
from upres.gpu.cuda import CudaError, bindings_missing, gpu_missing


def _no_driver() -> str | None:
    missing = bindings_missing()
    if missing:
        return missing
    reason = gpu_missing()
    if reason is None or "InsufficientDriver" not in reason:
        return f"needs cuda-python without a GPU driver ({reason or 'a GPU is present'})"
    return None


pytestmark = pytest.mark.skipif(_no_driver() is not None, reason=str(_no_driver()))

HOST = np.zeros(64, np.float32)
DEVICE, OTHER, STREAM, EVENT = 1 << 20, 1 << 21, 1 << 12, 1 << 13  # handles as the pipeline holds them

CALLS: dict[str, Callable[[], object]] = {
    "stream create": streams.Stream,
    "timing event create": streams.Event,
    "plain event create": lambda: streams.Event(timing=False),
    "device pool": lambda: memory.DevicePool(4096),
    "pinned buffer": lambda: memory.PinnedBuffer(4096),
    "host to device": lambda: memory.copy_h2d_async(DEVICE, HOST, STREAM),
    "device to host": lambda: memory.copy_d2h_async(HOST, DEVICE, STREAM),
    "device to device": lambda: memory.copy_d2d_async(DEVICE, OTHER, 256, STREAM),
    "memory info": cuda.mem_get_info,
    "device init": lambda: cuda.init_device(0),
    "device properties": lambda: cuda.device_info.__wrapped__(0),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_runtime_call_reaches_the_driver(name: str) -> None:
    with pytest.raises(CudaError, match="cudaErrorInsufficientDriver"):
        CALLS[name]()


def test_stream_and_event_calls_on_raw_handles() -> None:
    """The calls Stream and Event make on handles they own, made on plain integers."""
    stream, event = object.__new__(streams.Stream), object.__new__(streams.Event)
    stream.handle, event.handle = STREAM, EVENT
    start = object.__new__(streams.Event)
    start.handle = EVENT + 1
    for call in (stream.synchronize, lambda: stream.wait(event), lambda: event.record(stream),
                 event.synchronize, lambda: event.elapsed_ms(start), event.close, stream.close):
        with pytest.raises(CudaError, match="cudaErrorInsufficientDriver"):
            call()
