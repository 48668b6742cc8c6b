"""Quality (Set5 x4 Y-PSNR) against speed (output MP/s): one labelled point per contender.

matplotlib is optional (the `bench` extra); without it the plot is skipped with a message.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from upres.bench.rows import Row
from upres.bench.runner import BenchResult

COLOURS = {"upres": "tab:blue", "eager": "tab:orange", "peer": "tab:green",
           "reference": "tab:gray", "other": "tab:purple"}


def matplotlib_missing() -> str | None:
    if importlib.util.find_spec("matplotlib") is None:
        return "plot skipped: matplotlib is not installed (pip install 'upres[bench]')"
    return None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better on both),
    ordered by speed."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(points)
            if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def label_offsets(ys: list[float], same_db: float = 0.1, step: float = 11.0) -> list[float]:
    """Vertical label offsets (points): contenders of one model share a PSNR, so their labels
    would print on top of each other; stack them alternately above and below instead."""
    offsets = [0.0] * len(ys)
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    group: list[int] = []
    for i in [*order, -1]:
        if group and (i < 0 or ys[i] - ys[group[0]] > same_db):
            for k, j in enumerate(group):
                offsets[j] = (1 if k % 2 == 0 else -1) * (6 + step * (k // 2)) if len(group) > 1 \
                    else 6.0
            group = []
        if i >= 0:
            group.append(i)
    return offsets


def plottable(result: BenchResult, quality_set: str) -> list[Row]:
    return [r for r in result.rows
            if r.status == "ok" and r.mp_s is not None and quality_set in r.psnr]


def pareto_plot(result: BenchResult, path: Path, quality_set: str = "Set5") -> str | None:
    """Write the PNG; None when written, else why not (the caller prints it)."""
    missing = matplotlib_missing()
    if missing:
        return missing
    rows = plottable(result, quality_set)
    if not rows:
        return f"plot skipped: no contender has a {quality_set} PSNR (--datasets DIR with {quality_set}/)"
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    pts = [(r.mp_s.median, r.psnr[quality_set]) for r in rows]  # type: ignore[union-attr]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    front = pareto_front(pts)
    # "pre" steps trace the edge of the region the front dominates: down, then across.
    ax.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="pre", color="black",
            alpha=0.35, linewidth=1.5, zorder=1, label="Pareto front")
    offsets = label_offsets([y for _, y in pts])
    for r, (x, y), dy in zip(rows, pts, offsets, strict=True):
        assert r.mp_s is not None
        ax.errorbar(x, y, xerr=[[x - r.mp_s.low], [r.mp_s.high - x]], fmt="o", markersize=7,
                    color=COLOURS.get(r.group, "tab:purple"), ecolor="lightgray", zorder=2)
        arrow = {"arrowstyle": "-", "color": "gray", "lw": 0.5} if abs(dy) > 8 else None
        ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(6, dy), fontsize=7.5,
                    va="center", arrowprops=arrow)
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.22)  # room for the stacked labels above the top points
    ax.set_xlabel(f"speed: output megapixels per second (log; median, bars = min-max of "
                  f"{result.config['passes']} passes)")
    ax.set_ylabel(f"{quality_set} x4 Y-PSNR (dB)")
    cfg = result.config
    note = " - CONTENDED machine, not a result" if result.contended else ""
    ax.set_title(f"upres bench ({cfg['profile']}, {result.threads} threads){note}", fontsize=10)
    for group, colour in COLOURS.items():
        if any(r.group == group for r in rows):
            ax.scatter([], [], color=colour, label=group)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None
