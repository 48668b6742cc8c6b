"""The file-to-file bench's derived numbers (x bare compute, x the naive loop) and its goals."""

from __future__ import annotations

from upres.bench.file_rows import COMPUTE, NAIVE, UPRES, FileRow
from upres.bench.stats import Spread, ratio
from upres.bench.targets import Target


def _find(rows: list[FileRow], case: str, kind: str, precision: str) -> FileRow | None:
    return next((r for r in rows if r.case == case and r.kind == kind and r.precision == precision
                 and r.spread is not None), None)


def paired(a: FileRow | None, b: FileRow | None) -> Spread | None:
    """a's seconds / b's, run by run: the k-th runs of two rows were made in the same repeat (the
    start-up pair's, one after the other), so a machine whose speed drifts during the bench moves
    both alike. The median of those ratios and their range; the ratio of the medians (its range
    pairing the spreads' extremes) where the rows have different numbers of runs."""
    if a is None or b is None or a.spread is None or b.spread is None:
        return None
    if len(a.seconds) != len(b.seconds):
        return ratio(a.spread, b.spread)
    return Spread.of([x / y for x, y in zip(a.seconds, b.seconds, strict=True)])


def compute_fraction(rows: list[FileRow], row: FileRow) -> Spread | None:
    """Bare compute seconds / this row's seconds (same case and precision): 1.0 = no overhead."""
    if row.kind not in (UPRES, NAIVE):
        return None
    return paired(_find(rows, row.case, COMPUTE, row.precision), row)


def naive_speedup(rows: list[FileRow], row: FileRow) -> Spread | None:
    """Naive loop seconds / this upres row's seconds (same case and precision): > 1 = faster."""
    if row.kind != UPRES:
        return None
    return paired(_find(rows, row.case, NAIVE, row.precision), row)


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
    """The issue's goals, each the median of run-by-run ratios (:func:`paired`)."""
    def frac(key: str) -> Spread | None:
        row = _by_key(rows, key)
        return compute_fraction(rows, row) if row else None

    def faster(key: str) -> Spread | None:
        row = _by_key(rows, key)
        return naive_speedup(rows, row) if row else None

    int8_gain = paired(_by_key(rows, "upres-fp32"), _by_key(rows, "upres-int8"))
    start = paired(_by_key(rows, "startup-upres"), _by_key(rows, "startup-imports"))
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
