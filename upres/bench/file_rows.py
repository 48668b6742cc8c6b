"""The file-to-file bench's measured rows (case, contender kind, precision, times) and its error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from upres.bench.stats import Spread

SCALE = 4  # every contender upscales x4
AGREE_LEVELS = 1  # tiles with exact halos vs one whole-image run: rounding may flip a level
FOLDER, LARGE, STARTUP = "folder", "large", "startup"  # the three cases
NAIVE, UPRES, COMPUTE, IMPORTS = "naive", "upres", "compute", "imports"  # contender kinds


class FileBenchError(RuntimeError):
    """The bench cannot run at all (unreadable dataset, bad configuration)."""


@dataclass
class FileRow:
    key: str
    name: str
    case: str
    kind: str
    precision: str
    output_mp: float
    seconds: list[float] = field(default_factory=list)
    status: str = "ok"  # ok | failed
    reason: str = ""
    command: str = ""
    outputs: int | None = None  # PNGs the last run left in its output folder

    @property
    def spread(self) -> Spread | None:
        return Spread.of(self.seconds) if self.status == "ok" and self.seconds else None

    @property
    def mp_s(self) -> Spread | None:
        if self.spread is None or self.output_mp <= 0:
            return None
        return Spread.of([self.output_mp / s for s in self.seconds])

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["spread"] = self.spread.to_json() if self.spread else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRow:
        return cls(**{k: v for k, v in data.items() if k != "spread"})
