"""The issue's numbers to reach, checked against a bench result (met / missed / not measured)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from upres.bench.stats import Spread, ratio

if TYPE_CHECKING:
    from upres.bench.rows import Row

UPRES_FP32 = "upres-fp32-auto"  # the run path as users get it: `--tile auto`
UPRES_INT8 = "upres-int8-auto"
FSRCNN = "fsrcnn"


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    value: str  # measured, as text with its spread ("" when not measured)
    met: bool | None  # None: not measured (a contender skipped) or reported without a threshold
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal, "value": self.value, "met": self.met,
                "note": self.note}


def _ok(rows: list[Row], key: str) -> Row | None:
    return next((r for r in rows if r.key == key and r.status == "ok" and r.mp_s), None)


def _fastest(rows: list[Row], group: str) -> Row | None:
    found = [r for r in rows if r.group == group and r.status == "ok" and r.mp_s]
    return max(found, key=lambda r: r.mp_s.median) if found else None  # type: ignore[union-attr]


def _speedup(name: str, rows: list[Row], key: str, goal: float) -> Target:
    ours, eager = _ok(rows, key), _fastest(rows, "eager")
    if ours is None or eager is None:
        missing = key if ours is None else "the PyTorch eager loop"
        return Target(name, f">= {goal:g}x", "", None, f"not measured: {missing} did not run")
    assert ours.mp_s is not None and eager.mp_s is not None
    r: Spread = ratio(ours.mp_s, eager.mp_s)
    return Target(name, f">= {goal:g}x", f"{r.median:.2f}x ({r.low:.2f}-{r.high:.2f})",
                  r.median >= goal, f"vs the faster eager row ({eager.name})")


def _same_tiles(rows: list[Row]) -> Target:
    """The like-for-like reading of "tiled": upres and the eager loop at the same tile size."""
    name = "upres FP32 vs eager loop, same tile size"
    for row in rows:
        if not row.key.startswith("upres-fp32-tile"):
            continue
        ours, eager = _ok(rows, row.key), _ok(rows, "eager-" + row.key.removeprefix("upres-fp32-"))
        if ours is None or eager is None:
            continue
        assert ours.mp_s is not None and eager.mp_s is not None
        r = ratio(ours.mp_s, eager.mp_s)
        return Target(name, ">= 1.5x", f"{r.median:.2f}x ({r.low:.2f}-{r.high:.2f})",
                      r.median >= 1.5, f"{ours.name} vs {eager.name}")
    return Target(name, ">= 1.5x", "", None, "not measured")


def _versus_fsrcnn(rows: list[Row], key: str, label: str, quality_set: str | None) -> Target:
    name = f"{label} >= dnn_superres FSRCNN_x4 (PSNR and MP/s)"
    ours, peer = _ok(rows, key), _ok(rows, FSRCNN)
    if ours is None or peer is None:
        missing = key if ours is None else "FSRCNN_x4 (dnn_superres)"
        return Target(name, "both >=", "", None, f"not measured: {missing} did not run")
    assert ours.mp_s is not None and peer.mp_s is not None
    speed = ratio(ours.mp_s, peer.mp_s)
    text = f"speed {speed.median:.2f}x ({speed.low:.2f}-{speed.high:.2f})"
    faster = speed.median >= 1.0
    if quality_set is None or quality_set not in ours.psnr or quality_set not in peer.psnr:
        return Target(name, "both >=", text, None, "PSNR not measured (no test set)")
    gain = ours.psnr[quality_set] - peer.psnr[quality_set]
    return Target(name, "both >=", f"{text}; {quality_set} PSNR {gain:+.2f} dB",
                  faster and gain >= 0)


def _fraction(rows: list[Row], key: str, label: str) -> Target:
    row = _ok(rows, key)
    if row is None or row.gflops is None or row.peak_fraction is None:
        return Target(f"{label} GFLOP/s as a fraction of peak", "reported", "", None,
                      "not measured")
    g = row.gflops
    return Target(f"{label} GFLOP/s as a fraction of peak", "reported",
                  f"{g.median:.1f} GFLOP/s ({g.low:.1f}-{g.high:.1f}) = "
                  f"{100 * row.peak_fraction:.0f}% of the {row.precision.upper()} GEMM peak", None)


def _int8_loss(rows: list[Row], quality_set: str | None) -> Target:
    name = "INT8 PSNR loss vs FP32 (DESIGN.md)"
    fp32, int8 = _ok(rows, UPRES_FP32), _ok(rows, UPRES_INT8)
    if fp32 is None or int8 is None or quality_set is None or quality_set not in fp32.psnr \
            or quality_set not in int8.psnr:
        return Target(name, "<= 0.3 dB", "", None, "not measured")
    loss = fp32.psnr[quality_set] - int8.psnr[quality_set]
    return Target(name, "<= 0.3 dB", f"{loss:.2f} dB on {quality_set}", loss <= 0.3)


def evaluate_targets(rows: list[Row], quality_set: str | None) -> list[Target]:
    return [
        _speedup("upres FP32 (tile auto) vs PyTorch eager loop", rows, UPRES_FP32, 1.5),
        _same_tiles(rows),
        _speedup("upres INT8 (tile auto) vs PyTorch eager loop", rows, UPRES_INT8, 2.5),
        _versus_fsrcnn(rows, UPRES_FP32, "upres FP32", quality_set),
        _versus_fsrcnn(rows, UPRES_INT8, "upres INT8", quality_set),
        _fraction(rows, UPRES_FP32, "upres FP32"),
        _fraction(rows, UPRES_INT8, "upres INT8"),
        _int8_loss(rows, quality_set),
    ]
