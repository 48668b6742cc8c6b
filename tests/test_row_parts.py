"""Host passes split in rows among the cores (upres.core.parallel): the same values on any
number of cores, failures raised once every part has stopped."""

from __future__ import annotations

import numpy as np
import pytest

from upres.core import parallel
from upres.kernels import edges
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.catalog import DEFAULT_REFINE, resolve
from upres.runtime.stages import add_texture


@pytest.fixture(params=[0, 1, 3], ids=["1 core", "2 cores", "4 cores"])
def cores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(parallel, "_helpers", parallel._Helpers())
    monkeypatch.setattr(parallel._helpers, "_size", request.param)
    return int(request.param) + 1


def test_rows_are_split_on_aligned_edges_and_each_done_once(cores: int) -> None:
    done = np.zeros(103, np.int64)
    starts: list[int] = []

    def work(a: int, b: int) -> None:
        starts.append(a)
        done[a:b] += 1

    parallel.in_row_parts(103, work, align=16)
    assert (done == 1).all()
    assert len(starts) == min(cores, 7) and all(a % 16 == 0 for a in starts)
    starts.clear()
    parallel.in_row_parts(100, work, min_rows=64)  # too few rows to share
    assert starts == [0]


def test_a_failing_part_fails_the_pass_after_the_others_ended(cores: int) -> None:
    ended: list[int] = []

    def work(a: int, b: int) -> None:
        if a == 0:
            raise ValueError("part 0")
        ended.append(a)

    with pytest.raises(ValueError, match="part 0"):
        parallel.in_row_parts(64, work)
    assert len(ended) == min(cores, 64) - 1


def test_the_texture_stage_is_the_reference_compose_on_any_number_of_cores(cores: int) -> None:
    rng = np.random.default_rng(3)
    h, w = 150, 97
    image = np.clip(rng.normal(0.5, 0.25, (h, w, 3)), 0, 1).astype(np.float32)
    refine = OrtBackend(resolve(DEFAULT_REFINE).path, threads=1)
    edge = edges.sobel_magnitude(image)
    x = np.concatenate([image.transpose(2, 0, 1), edge[None]])[None]
    residual = refine.run(np.ascontiguousarray(x))[0].transpose(1, 2, 0)
    expected = edges.compose(image, residual, edge, 0.7)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    add_texture(refine, planes, 0.7)
    assert np.array_equal(planes[0].transpose(1, 2, 0), expected)


def test_quantising_in_parts_is_the_reference_and_refuses_nan_in_any_part(cores: int) -> None:
    from upres.imageio.samples import NonFiniteError, quantize_into

    rng = np.random.default_rng(5)
    values = rng.random((2100, 200, 3), dtype=np.float32) * 1.4 - 0.2  # 5 blocks of rows
    for dtype, peak in ((np.uint8, 255.0), (np.uint16, 65535.0)):
        out = np.empty(values.shape, dtype)
        quantize_into(values, out)
        assert np.array_equal(out, np.rint(np.clip(values, 0, 1) * np.float32(peak)).astype(dtype))
    values[-1, -1, -1] = np.nan  # in the last part, whichever core has it
    with pytest.raises(NonFiniteError):
        quantize_into(values, np.empty(values.shape, np.uint8))
