"""Summaries of repeated timings: medians with their spread, never a single run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def scaled(self, factor: float) -> Spread:
        lo, hi = sorted((self.low * factor, self.high * factor))
        return Spread(self.median * factor, lo, hi, self.n)

    def to_json(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}

    @classmethod
    def from_json(cls, data: dict[str, float] | None) -> Spread | None:
        if data is None:
            return None
        return cls(data["median"], data["min"], data["max"], int(data["n"]))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in 0..100."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio(a: Spread, b: Spread) -> Spread:
    """a / b: ratio of medians, and the widest range the two spreads allow."""
    return Spread(a.median / b.median, a.low / b.high, a.high / b.low, min(a.n, b.n))


def throughput(pass_seconds: list[float], megapixels: float) -> Spread:
    """Output MP/s of each timed pass over the same images -> median and min..max."""
    return Spread.of([megapixels / s for s in pass_seconds])
