"""Export: parity with PyTorch, receptive-field probe, metadata, and shipped ONNX files current."""


import numpy as np
import onnx
import pytest

from upres.core.model import read_info
from upres.export.onnx_export import export_weights
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import WEIGHTS_DIR

SHIPPED = ["coarse-x2", "coarse-x4", "refine"]


@pytest.fixture(scope="module", params=SHIPPED)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             photo: np.ndarray):
    name = request.param
    out = tmp_path_factory.mktemp("export") / f"{name}.onnx"
    report = export_weights(WEIGHTS_DIR / f"{name}.pt", out, real_images=[photo[:61, :77]])
    return name, report


def test_parity_and_checker(exported) -> None:
    _, report = exported
    assert report.parity_max_abs < 1e-4
    onnx.checker.check_model(onnx.load(str(report.path)), full_check=True)
    model = onnx.load(str(report.path))
    assert model.opset_import[0].version >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]


def test_metadata(exported) -> None:
    name, report = exported
    info = read_info(report.path)
    assert info is not None and info.name == name
    assert info.scale == {"coarse-x2": 2, "coarse-x4": 4, "refine": 1}[name]
    assert info.receptive_field > 0 and info.parameters > 0 and info.flops_per_pixel > 0
    assert len(info.weights_sha256) == 64
    if name == "coarse-x4":
        assert info.parameters < 250_000
    if name == "refine":
        # On 2x2 pixel blocks: a third of the 34k FLOPs of the full-resolution network it replaced.
        assert info.alignment == 2 and info.flops_per_pixel < 12_000


def test_shipped_onnx_is_current(exported) -> None:
    name, report = exported
    fresh, stored = onnx.load(str(report.path)), onnx.load(str(WEIGHTS_DIR / f"{name}.onnx"))
    assert fresh.graph == stored.graph, f"{name}.onnx is stale: run `upres export` again"
    assert {p.key: p.value for p in fresh.metadata_props} == \
        {p.key: p.value for p in stored.metadata_props}


@pytest.mark.parametrize("name", SHIPPED)
def test_probed_receptive_field_is_exact_and_minimal(name: str) -> None:
    """A change r input px outside a block alters the block's output iff r <= receptive field."""
    path = WEIGHTS_DIR / f"{name}.onnx"
    info = read_info(path)
    assert info is not None
    backend = OrtBackend(path, threads=1)
    rng = np.random.default_rng(7)
    c, s, rf = info.input_channels, max(1, info.scale), info.receptive_field
    x = rng.random((1, c, 80, 80), dtype=np.float32)
    base = backend.run(x)
    for dist, should_change in ((rf, True), (rf + 1, False)):
        # A network on pixel blocks reaches further from some phases than from others: the field
        # is the furthest reach over the block's placements.
        changed = False
        for phase in range(info.alignment):
            y0, y1, x0, x1 = 30 + phase, 40 + phase, 30 + phase, 40 + phase  # the "core" block
            core = (slice(None), slice(None), slice(y0 * s, y1 * s), slice(x0 * s, x1 * s))
            poked = x.copy()
            poked[0, :, y0 - dist, 35] = 1.0 - poked[0, :, y0 - dist, 35]  # above the block
            poked[0, :, 35, x1 - 1 + dist] = 1.0 - poked[0, :, 35, x1 - 1 + dist]  # right of it
            changed |= not np.array_equal(backend.run(poked)[core], base[core])
        assert changed == should_change, f"{name}: pixel {dist} px away, changed={changed}"
