"""What `upres plan` prints, as a value: the tile plan of one image and its memory estimate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from upres.runtime.chain_factory import ChainSetup
from upres.runtime.denoise import DenoiseChoice
from upres.runtime.planner import Plan, describe


@dataclass(frozen=True)
class PlanReport:
    source: str  # the file as given, or "array"
    width: int  # input pixels (after EXIF orientation)
    height: int
    plan: Plan  # tile, halo, blend, exact, depth, streaming, the estimate in bytes, notes, grid
    setup: ChainSetup
    denoise: DenoiseChoice  # the strength it would be upscaled at, and (auto) what was measured

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the output."""
        return self.width * self.setup.scale, self.height * self.setup.scale

    def text(self) -> str:
        """`upres plan IMAGE`'s lines."""
        s = self.setup
        out_w, out_h = self.output_size
        return (f"{self.source}: {self.width}x{self.height} -> {out_w}x{out_h}, {s.mode_name}, backend "
                f"{s.backend} ({s.backend_reason})\ndenoise {self.denoise.describe()}\n"
                f"{describe(self.plan)}")

    def to_dict(self) -> dict[str, Any]:
        """`upres plan IMAGE --json`'s object: the chain's description, the plan and the denoise
        choice (its record replaces the setting's string)."""
        return {**self.setup.describe(), "plan": self.plan.to_dict(),
                "denoise": self.denoise.to_record()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
