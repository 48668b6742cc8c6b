"""Helpers for the GPU tests: skip reasons, and plain synchronous copies to check kernels with."""

from __future__ import annotations

import os

import numpy as np
import pytest

from upres.gpu.cuda import cuda_call, gpu_missing, runtime
from upres.gpu.kernel_compile import nvrtc_missing
from upres.gpu.memory import DevicePool


def cuda_skip_reason() -> str | None:
    return gpu_missing() or nvrtc_missing()


def skip_unless_ready(reason: str | None) -> pytest.MarkDecorator:
    """Skip when `reason` says the GPU stack is missing, except where UPRES_REQUIRE_GPU=1 (the GPU
    host check sets it): there a missing piece must fail loudly, not pass as skipped."""
    required = os.environ.get("UPRES_REQUIRE_GPU") == "1"
    return pytest.mark.skipif(reason is not None and not required, reason=str(reason))


def upload(pool: DevicePool, array: np.ndarray) -> int:
    rt = runtime()
    a = np.ascontiguousarray(array)
    buf = pool.alloc(a.nbytes, "test input")
    cuda_call(rt.cudaMemcpy(buf.ptr, a.ctypes.data, a.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice),
              "cudaMemcpy")
    return buf.ptr


def download(ptr: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    rt = runtime()
    out = np.empty(shape, dtype)
    cuda_call(rt.cudaDeviceSynchronize(), "cudaDeviceSynchronize")
    cuda_call(rt.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost),
              "cudaMemcpy")
    return out
