"""The file-to-file bench's derived numbers (x bare compute, x the naive loop) and its goals."""

from __future__ import annotations

from upres.bench.file_rows import COMPUTE, NAIVE, UPRES, FileRow
from upres.bench.stats import Spread, ratio
from upres.bench.targets import Target


def _find(rows: list[FileRow], case: str, kind: str, precision: str) -> FileRow | None:
    return next((r for r in rows if r.case == case and r.kind == kind and r.precision == precision
                 and r.spread is not None), None)


def compute_fraction(rows: list[FileRow], row: FileRow) -> Spread | None:
    """Bare compute seconds / this row's seconds (same case and precision): 1.0 = no overhead."""
    if row.kind not in (UPRES, NAIVE) or row.spread is None:
        return None
    compute = _find(rows, row.case, COMPUTE, row.precision)
    return ratio(compute.spread, row.spread) if compute and compute.spread else None


def naive_speedup(rows: list[FileRow], row: FileRow) -> Spread | None:
    """Naive loop seconds / this upres row's seconds (same case and precision): > 1 = faster."""
    if row.kind != UPRES or row.spread is None:
        return None
    naive = _find(rows, row.case, NAIVE, row.precision)
    return ratio(naive.spread, row.spread) if naive and naive.spread else None


def _times(s: Spread) -> str:
    return f"{s.median:.2f}x ({s.low:.2f}-{s.high:.2f})"


def _target(name: str, goal: float, measured: Spread | None, missing: str, note: str = "",
            at_most: bool = False) -> Target:
    text = f"{'<=' if at_most else '>='} {goal:g}x"
    if measured is None:
        return Target(name, text, "", None, f"not measured: {missing}")
    met = measured.median <= goal if at_most else measured.median >= goal
    return Target(name, text, _times(measured), met, note)


def _by_key(rows: list[FileRow], key: str) -> FileRow | None:
    return next((r for r in rows if r.key == key and r.spread is not None), None)


def evaluate_targets(rows: list[FileRow], large_mp: float | None = None) -> list[Target]:
    """The issue's goals, each a ratio of medians (its range pairs the extremes of the spreads)."""
    def frac(key: str) -> Spread | None:
        row = _by_key(rows, key)
        return compute_fraction(rows, row) if row else None

    def faster(key: str) -> Spread | None:
        row = _by_key(rows, key)
        return naive_speedup(rows, row) if row else None

    fp32, int8 = _by_key(rows, "upres-fp32"), _by_key(rows, "upres-int8")
    int8_gain = ratio(fp32.spread, int8.spread) if fp32 and int8 and fp32.spread and int8.spread \
        else None
    tiny, imports = _by_key(rows, "startup-upres"), _by_key(rows, "startup-imports")
    start = ratio(tiny.spread, imports.spread) if tiny and imports and tiny.spread and imports.spread \
        else None
    large = f"one {large_mp:.0f} MP output" if large_mp else "one large output"
    return [
        _target("upres FP32 end to end vs bare compute", 0.75, frac("upres-fp32"),
                "upres run FP32 or bare compute FP32 did not run", "bare compute s / upres s"),
        _target("upres INT8 end to end vs bare compute", 0.6, frac("upres-int8"),
                "upres run INT8 or bare compute INT8 did not run", "bare compute s / upres s"),
        _target("upres FP32 vs the naive loop", 1.5, faster("upres-fp32"),
                "upres run FP32 or the naive loop FP32 did not run", "naive loop s / upres s"),
        _target("upres INT8 vs the naive loop", 1.8, faster("upres-int8"),
                "upres run INT8 or the naive loop INT8 did not run", "naive loop s / upres s"),
        _target("upres INT8 vs upres FP32, end to end", 1.6, int8_gain,
                "an upres run did not run", "FP32 s / INT8 s"),
        _target(f"{large} vs bare compute (FP32)", 0.6, frac("large-upres-fp32"),
                "no large image (--no-large) or a contender failed", "bare compute s / upres s"),
        _target("start-up: upres run on a tiny image vs bare imports", 2.0, start,
                "a start-up contender failed", "upres s / `import numpy, cv2, onnxruntime` s",
                at_most=True),
    ]
