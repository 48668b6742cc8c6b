"""CUDA kernels against their numpy references, on a GPU (skipped without CUDA + NVRTC)."""

from __future__ import annotations

from collections.abc import Iterator

import cuda_reference as ref
import numpy as np
import pytest
from gpu_support import cuda_skip_reason, download, skip_unless_ready, upload

from upres.runtime.blend import FeatherAccumulator, feather_weights
from upres.runtime.tiling import Rect, plan_grid

pytestmark = [pytest.mark.gpu, skip_unless_ready(cuda_skip_reason())]


class Gpu:
    def __init__(self) -> None:
        from upres.gpu.cuda import init_device
        from upres.gpu.kernel_launch import CudaKernels
        from upres.gpu.memory import DevicePool
        from upres.gpu.streams import Stream

        self.kernels = CudaKernels(init_device(0))
        self.pool = DevicePool(256 * 1024 * 1024)
        self.stream = Stream()

    def buffer(self, nbytes: int) -> int:
        return self.pool.alloc(nbytes).ptr

    def close(self) -> None:
        self.stream.close()
        self.pool.close()
        self.kernels.close()


@pytest.fixture
def gpu() -> Iterator[Gpu]:
    g = Gpu()
    yield g
    g.close()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("region", [(0, 0, 37, 53), (5, 7, 20, 31), (-3, -4, 45, 61)])
def test_normalize_is_bit_exact(gpu: Gpu, dtype: type, region: tuple[int, int, int, int]) -> None:
    rng = np.random.default_rng(0)
    if dtype is np.float32:
        src = rng.random((37, 53, 4), dtype=np.float32)
    else:
        src = rng.integers(0, np.iinfo(dtype).max + 1, (37, 53, 4)).astype(dtype)
    y0, x0, h, w = region
    dst = gpu.buffer(3 * h * w * 4)
    gpu.kernels.normalize(upload(gpu.pool, src), dtype, 37, 53, 4, y0, x0, h, w, 3, dst,
                          gpu.stream.handle)
    np.testing.assert_array_equal(download(dst, (3, h, w), np.float32),
                                  ref.normalize(src, y0, x0, h, w, 3))


def test_sobel_refine_input(gpu: Gpu, photo: np.ndarray) -> None:
    coarse = (photo[:67, :91].astype(np.float32) / 255.0).transpose(2, 0, 1)
    coarse = np.ascontiguousarray(coarse * 1.1 - 0.05)  # some values outside [0, 1]
    dst = gpu.buffer(4 * 67 * 91 * 4)
    gpu.kernels.sobel_refine_input(upload(gpu.pool, coarse), 67, 91, dst, gpu.stream.handle)
    got = download(dst, (4, 67, 91), np.float32)
    expect = ref.sobel_refine_input(coarse)
    np.testing.assert_array_equal(got[:3], expect[:3])
    # OpenCV sums the Sobel taps in another order: float rounding only.
    np.testing.assert_allclose(got[3], expect[3], atol=2e-6)


def test_gated_compose(gpu: Gpu) -> None:
    rng = np.random.default_rng(1)
    refine_in = rng.random((4, 50, 70), dtype=np.float32)
    residual = rng.normal(0, 0.2, (3, 50, 70)).astype(np.float32)
    out = gpu.buffer(3 * 50 * 70 * 4)
    res_ptr = upload(gpu.pool, residual)
    gpu.kernels.gated_compose(upload(gpu.pool, refine_in), res_ptr, 50, 70, 0.6, out, gpu.stream.handle)
    np.testing.assert_allclose(download(out, (3, 50, 70), np.float32),
                               ref.gated_compose(refine_in, residual, 0.6), atol=2e-6)
    # In place (as the pipeline runs it): the same result.
    gpu.kernels.gated_compose(upload(gpu.pool, refine_in), res_ptr, 50, 70, 0.6, res_ptr,
                              gpu.stream.handle)
    np.testing.assert_array_equal(download(res_ptr, (3, 50, 70), np.float32),
                                  download(out, (3, 50, 70), np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_quantize_is_bit_exact(gpu: Gpu, dtype: type) -> None:
    rng = np.random.default_rng(2)
    src = rng.normal(0.5, 0.4, (3, 40, 60)).astype(np.float32)
    src[0, 0, :6] = [0.5 / 255, 1.5 / 255, 2.5 / 255, -0.0, 1.0, 0.5]  # ties round to even
    dst = gpu.buffer(30 * 50 * 3 * 4)
    gpu.kernels.quantize(upload(gpu.pool, src), 40, 60, 3, 4, 6, 30, 50, dtype, dst, gpu.stream.handle)
    np.testing.assert_array_equal(download(dst, (30, 50, 3), dtype), ref.quantize(src, 4, 6, 30, 50, dtype))


def test_u8_round_trip_is_identity(gpu: Gpu) -> None:
    img = np.random.default_rng(3).integers(0, 256, (33, 47, 3)).astype(np.uint8)
    chw = gpu.buffer(3 * 33 * 47 * 4)
    out = gpu.buffer(33 * 47 * 3)
    gpu.kernels.normalize(upload(gpu.pool, img), np.uint8, 33, 47, 3, 0, 0, 33, 47, 3, chw,
                          gpu.stream.handle)
    gpu.kernels.quantize(chw, 33, 47, 3, 0, 0, 33, 47, np.uint8, out, gpu.stream.handle)
    np.testing.assert_array_equal(download(out, (33, 47, 3), np.uint8), img)


def test_feather_blend_on_device_equals_host(gpu: Gpu) -> None:
    scale, grid = 2, plan_grid(41, 57, 16, 4)
    band = Rect(0, 41 * scale, 0, 57 * scale)
    rng = np.random.default_rng(4)
    host = FeatherAccumulator(band, 3)
    acc = upload(gpu.pool, np.zeros((band.height, band.width, 3), np.float32))
    wsum = upload(gpu.pool, np.zeros((band.height, band.width), np.float32))
    for tile in grid.tiles:
        out_rect = tile.padded.scaled(scale)
        out = rng.random((3, out_rect.height, out_rect.width), dtype=np.float32)
        w = feather_weights(tile, grid, scale)
        ref.feather_accumulate(host, out_rect, out, w)
        span = ref.feather_span(band, out_rect)
        assert span is not None
        sy, sx, h, wd, dy, dx = span
        gpu.kernels.feather_accumulate(upload(gpu.pool, out), upload(gpu.pool, w), out_rect.height,
                                       out_rect.width, 3, sy, sx, h, wd, acc, wsum, band.width, dy, dx,
                                       gpu.stream.handle)
    result = gpu.buffer(band.height * band.width * 3 * 4)
    gpu.kernels.feather_normalize(acc, wsum, band.height * band.width, 3, result, gpu.stream.handle)
    np.testing.assert_array_equal(download(acc, host.acc.shape, np.float32), host.acc)
    np.testing.assert_array_equal(download(result, host.acc.shape, np.float32), host.result())
