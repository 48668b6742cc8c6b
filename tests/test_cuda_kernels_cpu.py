"""CUDA kernels without a GPU: every source compiles with NVRTC, and the numpy references the
kernels are held to agree with the runtime's own definitions."""

from __future__ import annotations

import cuda_reference as ref
import numpy as np
import pytest
from gpu_support import skip_unless_ready

from upres.gpu.kernel_compile import KERNELS, compile_kernel, nvrtc_missing, source, supported_archs
from upres.imageio import quantize
from upres.imageio.samples import _unit_float
from upres.kernels import edges
from upres.runtime.blend import FeatherAccumulator, feather_weights
from upres.runtime.tiling import Rect, plan_grid

needs_nvrtc = skip_unless_ready(nvrtc_missing())


@needs_nvrtc
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_compiles_for_current_gpus(name: str) -> None:
    archs = supported_archs()
    for cc in (80, 90):
        if cc not in archs:
            continue
        cubin = compile_kernel(name, f"sm_{cc}", use_disk_cache=False)
        assert cubin.is_cubin and cubin.image[:4] == b"\x7fELF"  # a CUBIN is an ELF image
    ptx = compile_kernel(name, f"compute_{min(archs)}", use_disk_cache=False).image.decode()
    for entry in KERNELS[name]:
        assert f".entry {entry}(" in ptx  # extern "C": the unmangled name the launcher asks for


@needs_nvrtc
def test_compile_errors_carry_the_nvrtc_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.gpu import kernel_compile as comp
    from upres.gpu.cuda import CudaError

    monkeypatch.setattr(comp, "source", lambda name: "__global__ void broken( {")
    with pytest.raises(CudaError, match=r"(?s)could not compile sobel\.cu.*error"):
        comp._nvrtc_compile("sobel", "compute_80")


def test_sources_are_there() -> None:
    for name, entries in KERNELS.items():
        text = source(name)
        for entry in entries:
            assert f'extern "C" __global__ void {entry}(' in text


def test_normalize_reference_is_the_readers_scaling() -> None:
    rng = np.random.default_rng(0)
    for dtype, maxval in ((np.uint8, 255.0), (np.uint16, 65535.0)):
        img = rng.integers(0, int(maxval) + 1, (37, 41, 4)).astype(dtype)
        chw = ref.normalize(img, 3, 5, 20, 30, 3)
        expect = _unit_float(img, maxval)[3:23, 5:35, :3].transpose(2, 0, 1)
        np.testing.assert_array_equal(chw, expect)
    f = rng.random((9, 7, 3), dtype=np.float32)
    np.testing.assert_array_equal(ref.normalize(f, 0, 0, 9, 7, 3), f.transpose(2, 0, 1))


def test_normalize_reference_replicates_past_the_edges() -> None:
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = ref.normalize(img, -2, -1, 8, 8, 3)
    padded = np.pad(img, ((2, 2), (1, 2), (0, 0)), mode="edge")
    np.testing.assert_array_equal(out, _unit_float(padded, 255.0).transpose(2, 0, 1))


def test_sobel_and_compose_references(photo: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    coarse = rng.normal(0.5, 0.4, (3, 31, 29)).astype(np.float32)  # outside [0, 1] too
    refine_in = ref.sobel_refine_input(coarse)
    clipped = np.clip(coarse.transpose(1, 2, 0), 0, 1)
    np.testing.assert_array_equal(refine_in[:3].transpose(1, 2, 0), clipped)
    np.testing.assert_array_equal(refine_in[3], edges.sobel_magnitude(clipped))
    residual = rng.normal(0, 0.1, (3, 31, 29)).astype(np.float32)
    out = ref.gated_compose(refine_in, residual, 0.7)
    expect = edges.compose(clipped, residual.transpose(1, 2, 0), refine_in[3], 0.7)
    np.testing.assert_array_equal(out.transpose(1, 2, 0), expect)


def test_quantize_reference_rounds_half_to_even() -> None:
    src = np.array([[[0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 1.2, -0.3]]], np.float32)
    out = ref.quantize(src, 0, 0, 1, 6, np.uint8)
    np.testing.assert_array_equal(out[..., 0], quantize(src[0], 8))
    assert ref.quantize(src, 0, 1, 1, 2, np.float32).shape == (1, 2, 1)
    assert ref.quantize(src, 0, 0, 1, 6, np.uint16).dtype == np.uint16


def test_feather_span_reproduces_the_host_blend() -> None:
    """Blending a grid's tiles through feather_span's clipping (what the device canvas does) gives
    exactly FeatherAccumulator's result."""
    scale, grid = 2, plan_grid(37, 45, 16, 4)
    rng = np.random.default_rng(3)
    band = Rect(0, 37 * scale, 0, 45 * scale)
    host = FeatherAccumulator(band, 3)
    acc = np.zeros((band.height, band.width, 3), np.float32)
    wsum = np.zeros((band.height, band.width), np.float32)
    for tile in grid.tiles:
        out_rect = tile.padded.scaled(scale)
        out = rng.random((3, out_rect.height, out_rect.width), dtype=np.float32)
        w = feather_weights(tile, grid, scale)
        ref.feather_accumulate(host, out_rect, out, w)
        span = ref.feather_span(band, out_rect)
        assert span is not None
        sy, sx, h, wd, dy, dx = span
        acc[dy : dy + h, dx : dx + wd] += out[:, sy : sy + h, sx : sx + wd].transpose(1, 2, 0) * \
            w[sy : sy + h, sx : sx + wd][..., None]
        wsum[dy : dy + h, dx : dx + wd] += w[sy : sy + h, sx : sx + wd]
    np.testing.assert_array_equal(acc, host.acc)
    np.testing.assert_array_equal(wsum, host.weight[..., 0])
    assert ref.feather_span(Rect(0, 10, 0, 10), Rect(10, 20, 0, 10)) is None
