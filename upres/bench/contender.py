"""The one interface every contender implements, and the specs that name them across processes.

A contender is anything that turns a uint8 RGB image into its x4 uint8 RGB upscale. Everything
else is optional and has a default here, so a new peer needs a name and `upscale` only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

SCALE = 4  # every contender is compared at x4: the scale the published peers ship


@runtime_checkable
class Contender(Protocol):
    name: str

    def upscale(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (4H, 4W, 3) uint8 RGB."""
        ...


class BaseContender:
    """Defaults for the optional parts of the interface."""

    name: str = "?"
    group: str = "other"  # upres | eager | peer | reference: colours the plot, picks baselines
    precision: str = "fp32"  # which measured peak its GFLOP/s is compared against

    def available(self) -> str | None:
        """None when it can run here, else why not (a missing library or model file)."""
        return None

    def load(self) -> None:
        """Build sessions / load weights; kept out of the timed passes."""

    def upscale(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def upscale_whole(self, img: np.ndarray) -> np.ndarray | None:
        """The same model on the whole image in one piece, for the seam error; None = no tiling."""
        return None

    def tiles(self, height: int, width: int) -> int:
        """How many pieces `upscale` cuts an image of this size into: 0 = it never tiles,
        1 = one piece at this size (no seams to show either way)."""
        return 0

    def flops_per_pixel(self) -> float | None:
        """Model FLOPs per output pixel (None = not a network / unknown); valid after load()."""
        return None

    def describe(self) -> str:
        return ""


@dataclass(frozen=True)
class BenchContext:
    """What every contender of one bench run shares (must survive JSON into a worker process)."""

    threads: int
    peers: str | None = None  # folder with FSRCNN_x4.pb / ESPCN_x4.pb, None = not given
    memory: int | None = None  # --tile auto memory target (None = upres's default)
    denoise: str = "auto"  # upres contenders' --denoise

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchContext:
        return cls(**data)


@dataclass(frozen=True)
class ContenderSpec:
    """A contender by kind and parameters: plain data, so a worker process can rebuild it."""

    kind: str  # upres | eager | dnn_superres | bicubic
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # stable id for targets and scripts ("upres-fp32-auto"); defaults to the kind

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "key": self.key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContenderSpec:
        return cls(data["kind"], dict(data.get("params", {})), data.get("key", ""))
