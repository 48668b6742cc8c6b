"""A bench result as text: cells shared by the terminal table (`upres.cli.render_bench`) and the
markdown table, and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from upres.bench.rows import Row
from upres.bench.runner import BenchResult
from upres.bench.stats import Spread
from upres.core.atomic import atomic_write_text

# Quality columns (one per test set) go between the seam and GFLOP/s columns.
LEAD = ("contender", "MP/s out (min-max)", "p50 / p95 ms", "peak RSS MiB", "seam max / mean (tiles)")
TAIL = ("GFLOP/s (% peak)", "note")


def spread(s: Spread | None, digits: int = 2) -> str:
    if s is None:
        return "-"
    return f"{s.median:.{digits}f} ({s.low:.{digits}f}-{s.high:.{digits}f})"


def _num(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def seam_cell(row: Row) -> str:
    if row.seam_tiles is None:
        return "-"
    if row.seam_tiles == 0:
        return "n/a (no tiling)"
    if row.seam_max is None or row.seam_mean is None:
        return "n/a (1 tile)"  # the plan ran the check image in one piece: nothing to compare
    return f"{row.seam_max:.0f} / {row.seam_mean:.2g} ({row.seam_tiles})"  # mean is often tiny


def rss_cell(row: Row) -> str:
    if row.peak_rss_mib is not None:
        return f"{row.peak_rss_mib:.0f}"
    if row.load_rss_mib is not None:
        return f"+{row.load_rss_mib:.0f} (load, in-process)"
    return "-"


def gflops_cell(row: Row) -> str:
    if row.gflops is None:
        return "-"
    frac = f" ({100 * row.peak_fraction:.0f}%)" if row.peak_fraction is not None else ""
    return f"{row.gflops.median:.1f}{frac}"


def latency_cell(row: Row) -> str:
    if row.p50_ms is None or row.p95_ms is None:
        return "-"
    digits = 1 if row.p95_ms < 10 else 0
    return f"{row.p50_ms:.{digits}f} / {row.p95_ms:.{digits}f}"


def cells(row: Row, sets: tuple[str, ...]) -> list[str]:
    """One table row; skipped/failed contenders carry their reason in the note instead of numbers."""
    if row.status != "ok":
        blank = [""] * (len(LEAD) - 1 + len(sets) + len(TAIL) - 1)
        return [row.name, *blank, f"{row.status}: {row.reason}"]
    psnr = [_num(row.psnr.get(s), 2) for s in sets]
    return [row.name, spread(row.mp_s), latency_cell(row), rss_cell(row), seam_cell(row), *psnr,
            gflops_cell(row), ""]


def headers(sets: tuple[str, ...]) -> list[str]:
    return [*LEAD, *(f"{s} Y-PSNR" for s in sets), *TAIL]


def peak_line(result: BenchResult) -> str:
    parts = [f"{p.upper()} {spread(s, 1)} GFLOP/s" for p, s in result.peak.items()]
    size = result.config.get("gemm_size")
    return (f"GEMM peak through ONNX Runtime ({size}^3, {result.threads} threads): "
            + ("; ".join(parts) if parts else "not measured"))


def write_json(result: BenchResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result.to_json(), indent=2))
