"""Load the compiled kernels into the current CUDA context and launch them on a stream.

Arguments travel the way `cuLaunchKernel` wants them: an array of pointers to each value. The
ctypes values are kept alive until the call returns (the driver copies them at launch).
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from upres.gpu.cuda import DeviceInfo, cuda_call, driver
from upres.gpu.kernel_compile import KERNELS, compile_kernel, target_arch
from upres.kernels.edges import GATE_KNEE

BLOCK_2D = (32, 8)  # 256 threads; 32 wide so a warp reads one row's consecutive pixels
BLOCK_1D = 256

_INT_TYPES: dict[np.dtype, str] = {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16",
                                   np.dtype(np.float32): "f32"}
_RANGES = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}


def device_ptr(value: int) -> ctypes.c_uint64:
    """A device pointer argument (64-bit on every CUDA platform)."""
    return ctypes.c_uint64(value)


def _suffix(dtype: np.dtype | type) -> str:
    dt = np.dtype(dtype)
    if dt not in _INT_TYPES:
        raise TypeError(f"CUDA kernels take uint8, uint16 or float32 samples, got {dt}")
    return _INT_TYPES[dt]


def sample_range(dtype: np.dtype | type) -> float:
    """What the kernels divide by (normalise) or multiply by (quantise): 255, 65535 or 1."""
    return _RANGES[_suffix(dtype)]


@dataclass(frozen=True)
class _Launch:
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


def _grid_2d(h: int, w: int) -> _Launch:
    bx, by = BLOCK_2D
    return _Launch((math.ceil(w / bx), math.ceil(h / by), 1), (bx, by, 1))


def _grid_1d(n: int) -> _Launch:
    return _Launch((math.ceil(n / BLOCK_1D), 1, 1), (BLOCK_1D, 1, 1))


class CudaKernels:
    """Every kernel of `KERNELS`, loaded once for one device (the current context's)."""

    def __init__(self, device: DeviceInfo) -> None:
        dr = driver()
        self.arch = target_arch(device.compute_capability)
        self._modules: list[Any] = []
        self._functions: dict[str, Any] = {}
        for name, entries in KERNELS.items():
            # By address: the image must stay put while the driver reads (and for PTX, JITs) it.
            image = np.frombuffer(compile_kernel(name, self.arch).image, np.uint8)
            module = cuda_call(dr.cuModuleLoadData(image.ctypes.data), f"cuModuleLoadData({name})")
            self._modules.append(module)
            for entry in entries:
                self._functions[entry] = cuda_call(dr.cuModuleGetFunction(module, entry.encode()),
                                                   f"cuModuleGetFunction({entry})")

    def _launch(self, entry: str, shape: _Launch, stream: int, *args: Any) -> None:
        if 0 in shape.grid:
            return  # an empty region: nothing to do (a zero grid is an error for the driver)
        values = list(args)
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        dr = driver()
        cuda_call(dr.cuLaunchKernel(self._functions[entry], *shape.grid, *shape.block, 0,
                                    dr.CUstream(stream), ctypes.addressof(pointers), 0),
                  f"cuLaunchKernel({entry})")

    # -- the kernels ---------------------------------------------------------------------------
    def normalize(self, src: int, dtype: np.dtype | type, src_h: int, src_w: int, src_c: int,
                  y0: int, x0: int, h: int, w: int, channels: int, dst: int, stream: int) -> None:
        """HWC samples -> CHW float32 / range, region (y0, x0, h, w), edges replicated."""
        kind = _suffix(dtype)
        c_int = ctypes.c_int
        self._launch(f"normalize_{kind}", _grid_2d(h, w), stream, device_ptr(src), c_int(src_h),
                     c_int(src_w), c_int(src_c), c_int(y0), c_int(x0), c_int(h), c_int(w),
                     c_int(channels), ctypes.c_float(_RANGES[kind]), device_ptr(dst))

    def sobel_refine_input(self, coarse: int, h: int, w: int, dst: int, stream: int) -> None:
        """(3, h, w) coarse -> (4, h, w): clipped RGB + Sobel magnitude of its luma."""
        self._launch("sobel_refine_input", _grid_2d(h, w), stream, device_ptr(coarse), ctypes.c_int(h),
                     ctypes.c_int(w), device_ptr(dst))

    def gated_compose(self, refine_in: int, residual: int, h: int, w: int, texture: float,
                      out: int, stream: int, knee: float = GATE_KNEE) -> None:
        self._launch("gated_compose", _grid_2d(h, w), stream, device_ptr(refine_in), device_ptr(residual),
                     ctypes.c_int(h), ctypes.c_int(w), ctypes.c_float(texture), ctypes.c_float(knee),
                     device_ptr(out))

    def feather_accumulate(self, tile: int, weights: int, tile_h: int, tile_w: int, channels: int,
                           sy: int, sx: int, h: int, w: int, acc: int, wsum: int, canvas_w: int,
                           dy: int, dx: int, stream: int) -> None:
        c_int = ctypes.c_int
        self._launch("feather_accumulate", _grid_2d(h, w), stream, device_ptr(tile), device_ptr(weights),
                     c_int(tile_h), c_int(tile_w), c_int(channels), c_int(sy), c_int(sx), c_int(h),
                     c_int(w), device_ptr(acc), device_ptr(wsum), c_int(canvas_w), c_int(dy), c_int(dx))

    def feather_normalize(self, acc: int, wsum: int, pixels: int, channels: int, out: int,
                          stream: int) -> None:
        self._launch("feather_normalize", _grid_1d(pixels), stream, device_ptr(acc), device_ptr(wsum),
                     ctypes.c_longlong(pixels), ctypes.c_int(channels), device_ptr(out))

    def quantize(self, src: int, tile_h: int, tile_w: int, channels: int, sy: int, sx: int, h: int,
                 w: int, dtype: np.dtype | type, dst: int, stream: int) -> None:
        """CHW float32 region -> HWC uint8/uint16 (clip, scale, round half to even) or float32
        (clip only)."""
        kind = _suffix(dtype)
        c_int = ctypes.c_int
        self._launch(f"quantize_{kind}", _grid_2d(h, w), stream, device_ptr(src), c_int(tile_h),
                     c_int(tile_w), c_int(channels), c_int(sy), c_int(sx), c_int(h), c_int(w),
                     ctypes.c_float(_RANGES[kind]), device_ptr(dst))

    def close(self) -> None:
        dr = driver()
        for module in self._modules:
            cuda_call(dr.cuModuleUnload(module), "cuModuleUnload")
        self._modules = []
        self._functions = {}
