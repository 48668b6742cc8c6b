"""One contender's measured row of the compute bench (what the runner writes and the targets,
tables and plots read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from upres.bench.stats import Spread


@dataclass
class Row:
    key: str
    name: str
    group: str
    status: str  # ok | skipped | failed
    reason: str = ""
    precision: str = "fp32"
    describe: str = ""
    mp_s: Spread | None = None  # output megapixels per second, per pass
    p50_ms: float | None = None  # per-image latency over every timed image of every pass
    p95_ms: float | None = None
    peak_rss_mib: float | None = None  # VmHWM of the contender's own process (isolated runs)
    load_rss_mib: float | None = None  # RSS growth while loading + warm-up
    seam_tiles: int | None = None
    seam_max: float | None = None
    seam_mean: float | None = None
    psnr: dict[str, float] = field(default_factory=dict)
    flops_per_pixel: float | None = None
    gflops: Spread | None = None
    peak_fraction: float | None = None  # median GFLOP/s over the median peak of its precision

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["mp_s"] = self.mp_s.to_json() if self.mp_s else None
        out["gflops"] = self.gflops.to_json() if self.gflops else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(**{**data, "mp_s": Spread.from_json(data.get("mp_s")),
                      "gflops": Spread.from_json(data.get("gflops"))})
