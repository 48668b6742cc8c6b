"""cuda-python in one place: availability, error checking, the current device.

cuda-python (`cuda.bindings`) returns `(err, *results)` tuples instead of raising; `cuda_call`
turns those into a `CudaError` naming the call (as NVIDIA's TensorRT samples do), so no caller
forgets a status. Without a driver `cudaGetDeviceCount` reports `cudaErrorInsufficientDriver`
without raising, which is the clean "no GPU here" signal `gpu_missing` relies on.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Any


class CudaError(RuntimeError):
    """A CUDA runtime, driver or NVRTC call failed."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def runtime() -> ModuleType:
    """`cuda.bindings.runtime` (imported on first use; it loads libcudart)."""
    return _module("cuda.bindings.runtime")


def driver() -> ModuleType:
    return _module("cuda.bindings.driver")


def nvrtc() -> ModuleType:
    return _module("cuda.bindings.nvrtc")


def bindings_missing() -> str | None:
    """Why cuda-python cannot be used here, or None (checked without importing it)."""
    try:
        found = importlib.util.find_spec("cuda.bindings") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return "cuda-python is not installed (pip install 'upres[gpu]')"
    return None


def _error_name(err: Any) -> str:
    rt, dr, nv = runtime(), driver(), nvrtc()
    if isinstance(err, rt.cudaError_t):
        return str(rt.cudaGetErrorName(err)[1].decode())
    if isinstance(err, dr.CUresult):
        status, name = dr.cuGetErrorName(err)
        return name.decode() if status == dr.CUresult.CUDA_SUCCESS else f"CUresult {int(err)}"
    if isinstance(err, nv.nvrtcResult):
        return str(nv.nvrtcGetErrorString(err)[1].decode())
    return repr(err)


def cuda_call(result: Any, what: str = "CUDA call") -> Any:
    """Check a cuda-python result tuple: raise CudaError on failure, else return its values
    (None for none, the value for one, a tuple for several)."""
    err, values = result[0], result[1:]
    if int(err) != 0:
        raise CudaError(f"{what} failed: {_error_name(err)} ({int(err)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU a job runs on: what the engine cache key and the planner need to know."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory: int  # bytes

    @property
    def sm(self) -> str:
        """"sm_90" for compute capability 9.0 (the NVRTC/nvcc architecture name)."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


def gpu_missing() -> str | None:
    """Why no CUDA GPU can be used here, or None when device 0 is usable."""
    missing = bindings_missing()
    if missing:
        return missing
    rt = runtime()
    err, count = rt.cudaGetDeviceCount()
    if int(err) != 0:
        return f"no usable CUDA driver/GPU ({_error_name(err)})"
    if count < 1:
        return "no CUDA GPU found"
    return None


@functools.lru_cache(maxsize=8)
def device_info(index: int = 0) -> DeviceInfo:
    rt = runtime()
    prop = cuda_call(rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    return DeviceInfo(index, name.split("\x00")[0].strip(), (int(prop.major), int(prop.minor)),
                      int(prop.totalGlobalMem))


def init_device(index: int = 0) -> DeviceInfo:
    """Make `index` current and create its primary context (shared with PyTorch and TensorRT:
    all three use the runtime API's primary context, so pointers and streams pass between them)."""
    rt = runtime()
    cuda_call(rt.cudaSetDevice(index), "cudaSetDevice")
    cuda_call(rt.cudaFree(0), "cudaFree(0) (context creation)")
    return device_info(index)


def mem_get_info() -> tuple[int, int]:
    """(free, total) device memory in bytes, as the driver sees it (all processes included)."""
    free, total = cuda_call(runtime().cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free), int(total)
