"""Device memory arithmetic of the GPU backends (pure: no GPU needed)."""

from __future__ import annotations

import pytest

from upres.core.sizes import GIB, MIB
from upres.gpu.buffers import LaneLayout, canvas_bytes
from upres.gpu.memory import align_up
from upres.gpu.planning import USEFUL_CORE, describe, plan_device
from upres.runtime.planner import PlanError


def test_lane_buffers_are_exact() -> None:
    faithful = LaneLayout(side=100, scale=4, hybrid=False)
    lr, hr = 100 * 100, 400 * 400
    assert faithful.device_buffers() == {"in_hwc": lr * 12, "in_chw": lr * 12, "coarse": hr * 12,
                                         "out_hwc": hr * 12}
    hybrid = LaneLayout(side=100, scale=4, hybrid=True)
    assert hybrid.device_buffers()["refine_in"] == hr * 16
    assert hybrid.device_buffers()["residual"] == hr * 12
    assert hybrid.device_bytes() == sum(align_up(v) for v in hybrid.device_buffers().values())
    assert faithful.pinned_buffers() == {"in": lr * 12, "out": hr * 12}
    assert canvas_bytes(64, 1000, 3) == 3 * 64 * 1000 * 4 * 4


def test_total_is_resident_plus_streams_times_lane_plus_canvas() -> None:
    plan = plan_device(4 * GIB, scale=4, halo=17, hybrid=True, activation=lambda side: 300 * MIB,
                       streams=3, canvas=10 * MIB, resident=50 * MIB)
    lane = LaneLayout(plan.side, 4, True).device_bytes()
    assert plan.io_per_stream == lane and plan.activation_per_stream == 300 * MIB
    assert plan.total == 50 * MIB + 3 * (300 * MIB + lane) + 10 * MIB
    assert plan.total <= 4 * GIB and plan.streams == 3 and plan.core == plan.side - 34
    # The next larger tile would not have fitted: the plan takes the largest one.
    bigger = LaneLayout(plan.side + 16, 4, True).device_bytes()
    assert 50 * MIB + 3 * (300 * MIB + bigger) + 10 * MIB > 4 * GIB
    assert "3 stream(s)" in describe(plan) and plan.to_dict()["total"] == plan.total


def test_activations_that_grow_with_the_tile() -> None:
    per_px = 2000  # bytes of activations per LR input pixel
    plan = plan_device(1 * GIB, scale=2, halo=15, hybrid=False,
                       activation=lambda side: per_px * side * side, streams=2)
    lane = LaneLayout(plan.side, 2, False).device_bytes()
    assert plan.total == 2 * (per_px * plan.side**2 + lane) <= 1 * GIB


def test_fewer_streams_before_tiny_tiles() -> None:
    # Room for one useful tile per stream for two streams, not three.
    side = USEFUL_CORE + 2 * 8  # a multiple of the 16 px step
    one = 100 * MIB + LaneLayout(side, 4, False).device_bytes()
    plan = plan_device(2 * one + MIB, scale=4, halo=8, hybrid=False,
                       activation=lambda s: 100 * MIB, streams=3)
    assert plan.streams == 2 and plan.core >= USEFUL_CORE
    assert any("3 streams would not fit" in n for n in plan.notes)


def test_engine_profile_bounds_the_tile() -> None:
    plan = plan_device(8 * GIB, scale=4, halo=15, hybrid=False,
                       activation=lambda side: 200 * MIB if side <= 256 else None)
    assert plan.side == 256


def test_target_too_small_says_what_one_stream_needs() -> None:
    with pytest.raises(PlanError, match=r"too small: one stream with the smallest tile \(side 64\) "
                                        r"needs .*raise --memory"):
        plan_device(64 * MIB, scale=4, halo=17, hybrid=True, activation=lambda s: 100 * MIB)
    with pytest.raises(ValueError, match="bad device plan"):
        plan_device(0, scale=4, halo=1, hybrid=False, activation=lambda s: 0)


def test_activations_are_counted_as_the_pool_hands_them_out() -> None:
    plan = plan_device(GIB, scale=2, halo=4, hybrid=False, activation=lambda side: 1000, streams=2)
    assert plan.activation_per_stream == align_up(1000) == 1024
