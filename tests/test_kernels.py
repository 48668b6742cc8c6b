import numpy as np
import pytest
import torch

from upres.kernels import edges
from upres.kernels.deterministic import upscale
from upres.models import edge_ops


def test_sobel_gate_compose_match_torch_twin(photo: np.ndarray) -> None:
    rgb = photo[:67, :91].astype(np.float32) / 255.0
    rng = np.random.default_rng(1)
    residual = rng.normal(0, 0.1, rgb.shape).astype(np.float32)
    t = torch.from_numpy(rgb.transpose(2, 0, 1)[None])
    tr = torch.from_numpy(residual.transpose(2, 0, 1)[None])
    edge_np = edges.sobel_magnitude(rgb)
    edge_t = edge_ops.sobel_magnitude(t)[0, 0].numpy()
    np.testing.assert_allclose(edge_np, edge_t, atol=1e-5)
    gate_t = edge_ops.edge_gate(torch.from_numpy(edge_np)).numpy()
    np.testing.assert_allclose(edges.edge_gate(edge_np), gate_t, atol=1e-6)
    out_np = edges.compose(rgb, residual, edge_np, 0.7)
    out_t = edge_ops.compose(t, tr, edge_ops.sobel_magnitude(t), 0.7)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(out_np, out_t, atol=1e-5)


def test_gate_shrinks_residual_on_strong_edges() -> None:
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = 1.0  # a hard vertical edge
    edge = edges.sobel_magnitude(img)
    gate = edges.edge_gate(edge)
    assert gate[10, 2] == pytest.approx(1.0)
    assert gate[10, 15] < 0.01 and gate[10, 16] < 0.01
    out = edges.compose(img, np.full_like(img, 0.2), edge, 1.0)
    assert np.abs(out[10, 15] - img[10, 15]).max() < 0.01  # the edge stays put


def test_texture_zero_is_coarse() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((20, 20, 3), dtype=np.float32)
    out = edges.compose(img, rng.normal(size=img.shape).astype(np.float32),
                        edges.sobel_magnitude(img), 0.0)
    np.testing.assert_array_equal(out, img)


def test_deterministic_upscale_does_not_overshoot(photo: np.ndarray) -> None:
    rgb = photo[:40, :50].astype(np.float32) / 255.0
    up = upscale(rgb, 4)
    assert up.shape == (160, 200, 3)
    step = np.zeros((16, 16, 3), np.float32)
    step[:, 8:] = 1.0
    sharp = upscale(step, 2)
    assert sharp.min() >= 0.0 and sharp.max() <= 1.0


def test_refine_stage_on_planes_equals_the_compose_reference() -> None:
    """The runtime's in-place refine stage (planes, one input fill, compose in place) gives the
    bits of the reference definition: compose(coarse, refine([coarse, sobel]), sobel)."""
    from upres.kernels.edges import compose, sobel_magnitude
    from upres.runtime.chain_factory import build_chain
    from upres.runtime.stages import refine_texture, run_hwc

    chain = build_chain("hybrid", 4, threads=1, texture=0.7).chain
    image = np.random.default_rng(0).random((37, 45, 3), dtype=np.float32)
    coarse = run_hwc(chain.coarse, image, clip=True)
    edge = sobel_magnitude(coarse)
    residual = run_hwc(chain.refine, np.concatenate([coarse, edge[..., None]], axis=2))
    reference = compose(coarse, residual, edge, 0.7)
    assert not np.array_equal(reference, coarse)
    assert np.array_equal(refine_texture(chain.refine, coarse, 0.7), reference)
    assert np.array_equal(chain(image), reference)
