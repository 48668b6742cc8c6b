"""Memory sizes, measured memory models and the tile planner."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from upres.core.sizes import GIB, MIB, format_size, parse_size
from upres.runtime import memory
from upres.runtime.memory import (
    MemoryModel,
    current_rss,
    default_memory_target,
    measure_memory_model,
    peak_rss,
)
from upres.runtime.planner import Plan, PlanError, describe, plan_job

# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(("text", "expected"), [
    ("512MiB", 512 * MIB),
    ("2GiB", 2 * GIB),
    ("1.5GB", 1_500_000_000),
    ("800M", 800 * MIB),
    ("123456", 123456),
    ("64k", 64 * 1024),
    ("10 KB", 10_000),
    (" 2 gib ", 2 * GIB),
    ("1T", 1024**4),
    ("100B", 100),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["2 potatoes", "", "GiB", "-1GiB", "1.5XB", "1e9", "5 MiBs"])
def test_parse_size_unreadable(text: str) -> None:
    with pytest.raises(ValueError, match=r"--memory: cannot read .*use e\.g\. 512MiB or 2GiB"):
        parse_size(text)


@pytest.mark.parametrize("text", ["0", "0MiB", "0.0000001"])
def test_parse_size_refuses_nothing(text: str) -> None:
    with pytest.raises(ValueError, match="--memory"):
        parse_size(text)


def test_parse_size_error_message_is_exact() -> None:
    with pytest.raises(ValueError) as err:
        parse_size("2 potatoes")
    assert str(err.value) == "--memory: cannot read '2 potatoes'; use e.g. 512MiB or 2GiB"


def test_format_size() -> None:
    assert format_size(int(1.5 * GIB)) == "1.50 GiB"
    assert format_size(512 * MIB) == "512.00 MiB"
    assert format_size(100) == "100 B"
    assert format_size(parse_size("1.5GiB")) == "1.50 GiB"


def test_default_memory_target_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for avail, expected in [(100 * MIB, 256 * MIB), (4 * GIB, 2 * GIB), (64 * GIB, 8 * GIB)]:
        monkeypatch.setattr(memory, "available_memory", lambda a=avail: a)
        assert default_memory_target() == expected


def test_rss_readings() -> None:
    assert memory.available_memory() > 0
    rss = current_rss()
    assert 1 * MIB < rss <= peak_rss()


# ---------------------------------------------------------------- memory model fit


def test_fit_recovers_a_line() -> None:
    samples = [(p, 3_000_000 + 1200 * p) for p in (2304, 9216, 25600)]
    m = MemoryModel.fit(samples)
    assert m.base == pytest.approx(3_000_000)
    assert m.per_pixel == pytest.approx(1200)
    assert m.samples == tuple(samples)
    assert m.estimate(100_000) == pytest.approx(3_000_000 + 1200 * 100_000, abs=1)


def test_fit_least_squares_on_noisy_samples() -> None:
    pixels = np.array([1000, 2000, 4000, 8000])
    noise = np.array([5000, -3000, 2000, -4000])
    bytes_ = 1_000_000 + 500 * pixels + noise
    m = MemoryModel.fit(list(zip(pixels.tolist(), bytes_.tolist(), strict=True)))
    slope, intercept = np.polyfit(pixels, bytes_, 1)
    assert m.per_pixel == pytest.approx(slope)
    assert m.base == pytest.approx(intercept)


def test_fit_clamps_negative_slope() -> None:
    m = MemoryModel.fit([(1000, 9_000_000), (4000, 8_000_000), (9000, 7_000_000)])
    assert m.per_pixel == 0
    assert m.base == pytest.approx(8_000_000)
    assert m.estimate(10**9) == m.estimate(1)


def test_fit_single_sample_scales_with_pixels() -> None:
    m = MemoryModel.fit([(1000, 2_000_000)])
    assert m.estimate(1000) == 2_000_000
    assert m.estimate(2000) == 4_000_000


def test_fit_needs_samples() -> None:
    with pytest.raises(ValueError):
        MemoryModel.fit([])


def test_model_round_trips_through_dict() -> None:
    m = MemoryModel.fit([(2304, 9_000_000), (9216, 20_000_000)], session=123)
    assert MemoryModel.from_dict(json.loads(json.dumps(m.to_dict()))) == m


# ---------------------------------------------------------------- measurement


def _conv_model(path: Path) -> Path:
    """3 Conv 3x3 layers, 3 -> 32 -> 32 -> 3 channels, random weights, dynamic H/W."""
    rng = np.random.default_rng(1)
    chans = [3, 32, 32, 3]
    inits, nodes, prev = [], [], "x"
    for i, (cin, cout) in enumerate(itertools.pairwise(chans)):
        w = (rng.standard_normal((cout, cin, 3, 3)) * 0.1).astype(np.float32)
        b = np.zeros(cout, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == len(chans) - 2 else f"c{i}"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [out], pads=[1, 1, 1, 1]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    graph = helper.make_graph(
        nodes, "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_measure_memory_model_measures_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    model_path = _conv_model(tmp_path / "convs.onnx")
    m = measure_memory_model(model_path, "feedc0de")
    assert m.per_pixel > 0
    assert [p for p, _ in m.samples] == [48 * 48, 96 * 96, 160 * 160]
    # 32 float32 channels at least once per pixel: a real measurement, not a guess of zero.
    assert m.estimate(160 * 160) >= 160 * 160 * 32 * 4
    cached = tmp_path / "cache" / "memory" / "feedc0de-ort-cpu-fp32.json"
    assert cached.exists()

    def no_probe(*args: object, **kwargs: object) -> dict[str, int]:
        raise AssertionError("the second call must read the cache")

    monkeypatch.setattr(memory, "probe_once", no_probe)
    assert measure_memory_model(model_path, "feedc0de") == m


# ---------------------------------------------------------------- planner

# Shapes like the real coarse x4 and refine models (measured: ~1.3 KB and ~450 B per pixel).
COARSE = MemoryModel.fit([(p, 7_000_000 + 1300 * p) for p in (2304, 9216, 25600)])
REFINE = MemoryModel.fit([(p, 6_000_000 + 450 * p) for p in (2304, 9216, 25600)])
STAGES = [(COARSE, 1), (REFINE, 16)]
BASE = 64 * MIB


def _plan(h: int, w: int, target: int, **kw: object) -> Plan:
    args: dict[str, object] = {"scale": 4, "required_halo": 18, "memory_target": target,
                               "stage_models": STAGES, "baseline": BASE}
    args.update(kw)
    return plan_job(h, w, **args)  # type: ignore[arg-type]


def test_huge_target_small_image_runs_whole() -> None:
    p = _plan(200, 300, 64 * GIB)
    assert p.tile == 0 and p.exact and p.blend == "crop" and not p.streaming
    assert len(p.grid.tiles) == 1
    assert p.batch == 1 and p.depth == 2
    assert any("whole image" in n for n in p.notes)


def test_tiny_target_forces_small_tiles_and_feather() -> None:
    p = _plan(1000, 1000, 130 * MIB)
    assert 0 < p.tile <= 64
    assert 2 <= p.halo < 18 and not p.exact and p.blend == "feather"
    assert p.depth == 1 and p.streaming
    assert any("forces halo" in n and "not exact" in n for n in p.notes)
    assert p.estimate["total"] <= 130 * MIB
    exact = _plan(1000, 1000, 200 * MIB)
    assert exact.tile == 32 and exact.halo == 18 and exact.exact and exact.blend == "crop"


def test_stated_minimum_is_enough() -> None:
    with pytest.raises(PlanError) as err:
        _plan(1000, 1000, 100 * MIB)
    need = float(str(err.value).split("needs at least ")[1].split(" MiB")[0])
    p = _plan(1000, 1000, int((need + 0.01) * MIB))
    assert p.halo == 2 and p.tile == 32


def test_tighter_target_never_grows_the_tile() -> None:
    tiles = [_plan(2000, 3000, t * MIB).tile for t in (4096, 2048, 1024, 600)]
    assert tiles == sorted(tiles, reverse=True)
    assert any("largest that fits" in n for n in _plan(2000, 3000, 1024 * MIB).notes)


def test_big_output_streams() -> None:
    p = _plan(3000, 4000, 1 * GIB)  # 12000 x 16000 x 3 output: 2.7 GiB as float32
    assert p.streaming
    assert p.estimate["output"] == 0 and p.estimate["strip_buffers"] > 0
    assert any("streamed" in n for n in p.notes)
    small = _plan(300, 400, 4 * GIB)
    assert not small.streaming and small.estimate["strip_buffers"] == 0


def test_estimate_within_target_over_a_sweep() -> None:
    for h, w in [(64, 64), (480, 640), (1080, 1920), (3000, 4000), (50, 5000)]:
        for target in [150 * MIB, 300 * MIB, 600 * MIB, GIB, 3 * GIB, 16 * GIB]:
            try:
                p = _plan(h, w, target)
            except PlanError:
                continue
            e = p.estimate
            assert e["total"] <= target, (h, w, target, e)
            parts = ("baseline", "input", "output", "tile_activations", "strip_buffers")
            assert e["total"] == sum(e[k] for k in parts)
            assert p.grid.height == h and p.grid.width == w
            assert p.exact == (p.halo >= 18 or len(p.grid.tiles) == 1)
            json.dumps(p.to_dict())


def test_streamed_input_counts_bands_not_the_image() -> None:
    with pytest.raises(PlanError, match="read by rows instead"):
        _plan(6000, 8000, 600 * MIB)  # decoded whole the input alone is 732 MiB
    p = _plan(6000, 8000, 600 * MIB, streamed_input=True)
    assert p.streamed_input and p.depth == 1 and p.streaming and p.to_dict()["streamed_input"]
    assert p.estimate["total"] <= 600 * MIB
    band = p.tile + 2 * p.halo
    assert p.estimate["input"] == (4 * band + 256) * 8000 * 4 * 4
    assert any("band of rows" in n for n in p.notes) and "band of rows" in describe(p)
    whole = _plan(600, 800, 16 * GIB)
    assert not whole.streamed_input and whole.depth == 2
    # With room to spare a streamed input still never decodes the next image beside it.
    assert _plan(600, 800, 16 * GIB, streamed_input=True).depth == 1


def test_impossible_target_raises_with_minimum() -> None:
    with pytest.raises(PlanError, match=r"needs at least [\d.]+ MiB") as err:
        _plan(3000, 4000, 100 * MIB)
    assert "decoded input alone" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_fixed_tile_respected() -> None:
    p = _plan(1000, 1500, 4 * GIB, tile=128)
    assert p.tile == 128 and p.halo == 18 and p.exact
    assert p.grid.tile == 128 and max(p.grid.max_padded) <= 128 + 2 * 18
    whole = _plan(100, 100, 4 * GIB, tile=0)
    assert whole.tile == 0 and len(whole.grid.tiles) == 1
    with pytest.raises(PlanError, match="tile 1024"):
        _plan(3000, 4000, 1 * GIB, tile=1024, halo=18)


def test_fixed_small_halo_with_crop_is_noted() -> None:
    p = _plan(1000, 1000, 4 * GIB, tile=256, halo=4, blend="crop")
    assert p.halo == 4 and p.blend == "crop" and not p.exact
    assert any("not exact" in n for n in p.notes)
    auto = _plan(1000, 1000, 4 * GIB, tile=256, halo=4)
    assert auto.blend == "feather" and not auto.exact


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="blend"):
        _plan(100, 100, GIB, blend="smear")
    with pytest.raises(ValueError):
        _plan(0, 100, GIB)


def test_describe_mentions_tile_memory_and_notes() -> None:
    p = _plan(1000, 1000, 130 * MIB)
    text = describe(p)
    assert f"tile {p.tile}" in text and "130.00 MiB target" in text
    assert "not exact" in text and "feather" in text
    assert p.notes[0] in text


def test_a_command_s_baseline_is_steady_while_the_rss_moves_a_little() -> None:
    """The planner counts the first baseline measured for a command, so a RSS that moves by a
    MiB or two from run to run plans (and writes) the same; a process of another size keeps its own."""
    slack = memory.BASELINE_SLACK
    first = memory.steady_baseline("test-steady", 100 * MIB)
    assert first == 100 * MIB + slack
    for moved in (101 * MIB + 4096, 99 * MIB, 100 * MIB + slack):
        assert memory.steady_baseline("test-steady", moved) == first
    big = memory.steady_baseline("test-steady", 400 * MIB)
    assert big == 400 * MIB + slack
    assert memory.steady_baseline("test-steady", 398 * MIB) == big
    assert memory.steady_baseline("test-steady", 102 * MIB) == first  # the first is still kept
    assert memory.steady_baseline("test-steady-other", 102 * MIB) == 102 * MIB + slack
