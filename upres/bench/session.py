"""One contender's life in a bench run: load, warm up, timed passes, then seams and quality.

The same class runs inside a worker process (isolated: its peak RSS is the contender's) or in
the caller's process (tests, `--in-process`: RSS can then only be given as a load delta).
Timed passes only time `upscale`; the seam and quality checks come after the peak RSS is read,
so their whole-image runs do not inflate the contender's memory figure.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2

from upres.bench.contender import SCALE, BaseContender, BenchContext, ContenderSpec
from upres.bench.contenders import build
from upres.bench.images import seam_image, timing_images
from upres.bench.quality import quality, seam_error
from upres.runtime.memory import current_rss, peak_rss


@dataclass(frozen=True)
class Workload:
    """The images every contender of a run gets (rebuilt identically in each worker)."""

    image_size: int
    image_count: int
    warmup: int
    seam_size: int  # 0 = no seam check
    datasets: str | None
    sets: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workload:
        return cls(**{**data, "sets": tuple(data["sets"])})


class Session:
    def __init__(self, spec: ContenderSpec, ctx: BenchContext, work: Workload,
                 isolated: bool) -> None:
        self.contender: BaseContender = build(spec, ctx)
        self.threads = ctx.threads
        self.work = work
        self.isolated = isolated
        self.images = timing_images(work.image_size, work.image_count)

    def start(self) -> dict[str, Any]:
        """Load and warm up; {"status": "skipped", "reason"} when a dependency is missing."""
        c = self.contender
        reason = c.available()
        if reason:
            return {"status": "skipped", "reason": reason}
        # OpenCV's pool serves upres too (resizes, Sobel in hybrid): same thread count for all.
        cv2.setNumThreads(self.threads)
        before = current_rss()
        t0 = time.perf_counter()
        c.load()
        for _ in range(self.work.warmup):
            for img in self.images:
                c.upscale(img)
        return {
            "status": "ready",
            "load_seconds": time.perf_counter() - t0,
            "load_rss_delta": current_rss() - before,
            "flops_per_pixel": c.flops_per_pixel(),
            "megapixels_out": sum(i.shape[0] * i.shape[1] for i in self.images) * SCALE**2 / 1e6,
            "describe": c.describe(),
        }

    def run_pass(self) -> list[float]:
        """Each timing image once; seconds per image."""
        times = []
        for img in self.images:
            t0 = time.perf_counter()
            self.contender.upscale(img)
            times.append(time.perf_counter() - t0)
        return times

    def finish(self) -> dict[str, Any]:
        # Read first: everything after this (whole-image references) is not the contender's job.
        peak = peak_rss() if self.isolated else None
        result: dict[str, Any] = {"peak_rss": peak}
        c = self.contender
        if self.work.seam_size:
            img = seam_image(self.work.seam_size)
            tiles = result["seam_tiles"] = c.tiles(*img.shape[:2])
            # One piece (or none) has no seams: skip two full-size runs that could only say 0.
            whole = c.upscale_whole(img) if tiles > 1 else None
            if whole is not None:
                result["seam_max"], result["seam_mean"] = seam_error(c.upscale(img), whole)
        folder = Path(self.work.datasets) if self.work.datasets else None
        result["psnr"] = quality(c.upscale, folder, self.work.sets, SCALE)
        return result
