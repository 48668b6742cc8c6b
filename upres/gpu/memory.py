"""Device memory from one pool, pinned host staging buffers, and async copies between them.

The pool is a single cudaMalloc of exactly the bytes the planner budgeted, carved up once with a
bump allocator: every I/O buffer and every TensorRT execution context's activation memory comes
from it, so the job cannot use more device memory than the plan says, and no tile pays for a
cudaMalloc/cudaFree (which also synchronise the device).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from upres.gpu.cuda import cuda_call, runtime

ALIGN = 256  # cudaMalloc's own alignment; TensorRT's set_device_memory requires 256 bytes


def align_up(n: int, alignment: int = ALIGN) -> int:
    return (n + alignment - 1) // alignment * alignment


class PoolExhausted(MemoryError):
    """A device buffer was asked for beyond what the planner gave the pool."""


@dataclass(frozen=True)
class DeviceBuffer:
    ptr: int
    nbytes: int


class DevicePool:
    """`capacity` bytes of device memory, handed out in 256-byte aligned pieces, freed together."""

    def __init__(self, capacity: int) -> None:
        self.capacity = align_up(max(capacity, ALIGN))
        self._base = int(cuda_call(runtime().cudaMalloc(self.capacity),
                                   f"cudaMalloc({self.capacity}) for the device pool"))
        self.used = 0

    def alloc(self, nbytes: int, what: str = "buffer") -> DeviceBuffer:
        size = align_up(max(nbytes, 1))
        if self.used + size > self.capacity:
            raise PoolExhausted(f"device pool: {what} needs {size} bytes, {self.capacity - self.used} "
                                f"of {self.capacity} left; the plan under-counted this buffer")
        buf = DeviceBuffer(self._base + self.used, size)
        self.used += size
        return buf

    def close(self) -> None:
        if self._base:
            cuda_call(runtime().cudaFree(self._base), "cudaFree (device pool)")
            self._base = 0

    def __enter__(self) -> DevicePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PinnedBuffer:
    """Page-locked host memory: async copies from/to it really are async and run at full PCIe
    speed; from pageable memory the driver stages through its own buffer synchronously."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = align_up(max(nbytes, 1))
        self.ptr = int(cuda_call(runtime().cudaMallocHost(self.nbytes), "cudaMallocHost"))
        raw = (ctypes.c_ubyte * self.nbytes).from_address(self.ptr)
        self._bytes = np.frombuffer(raw, dtype=np.uint8)  # type: ignore[call-overload]  # ctypes arrays are buffers

    def view(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A numpy array over the start of the buffer (no copy)."""
        dt = np.dtype(dtype)
        n = int(np.prod(shape)) * dt.itemsize
        if n > self.nbytes:
            raise ValueError(f"pinned buffer of {self.nbytes} bytes cannot hold {shape} {dt}")
        return self._bytes[:n].view(dt).reshape(shape)

    def close(self) -> None:
        if self.ptr:
            self._bytes = np.empty(0, np.uint8)
            cuda_call(runtime().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


def copy_h2d_async(dst: int, host: np.ndarray, stream: int) -> None:
    rt = runtime()
    kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
    cuda_call(rt.cudaMemcpyAsync(dst, host.ctypes.data, host.nbytes, kind, stream),
              "cudaMemcpyAsync host->device")


def copy_d2h_async(host: np.ndarray, src: int, stream: int) -> None:
    rt = runtime()
    kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
    cuda_call(rt.cudaMemcpyAsync(host.ctypes.data, src, host.nbytes, kind, stream),
              "cudaMemcpyAsync device->host")


def copy_d2d_async(dst: int, src: int, nbytes: int, stream: int) -> None:
    rt = runtime()
    kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
    cuda_call(rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "cudaMemcpyAsync device->device")
