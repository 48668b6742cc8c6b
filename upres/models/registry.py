"""The shipped model family: names, configs and weight file names in one place."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from upres.models.coarse import CoarseConfig, CoarseSR
from upres.models.detector import DetectorConfig, OverlayDetector
from upres.models.fill_net import FillConfig, FillNet
from upres.models.refine import RefineConfig, RefineNet


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "coarse", "refine", "detect" (overlay mask logits) or "fill" (inpainting correction)
    scale: int  # 1 for refine (output space) and detect
    coarse: CoarseConfig | None = None
    refine: RefineConfig | None = None
    detect: DetectorConfig | None = None
    fill: FillConfig | None = None
    synth: str = "overlay"  # detect: what it is trained on, "overlay" (captions, stamps) or "damage"

    def same_network(self, other: ModelSpec) -> bool:
        """Whether `other`'s weights fit this network (a restoration model starts from a clean one)."""
        return (self.kind, self.coarse, self.refine, self.detect, self.fill) == (
            other.kind, other.coarse, other.refine, other.detect, other.fill)

    def build(self) -> nn.Module:
        if self.kind == "coarse":
            assert self.coarse is not None
            return CoarseSR(self.coarse)
        if self.kind == "detect":
            assert self.detect is not None
            return OverlayDetector(self.detect)
        if self.kind == "fill":
            assert self.fill is not None
            return FillNet(self.fill)
        assert self.refine is not None
        return RefineNet(self.refine)


SPECS: dict[str, ModelSpec] = {
    "coarse-x2": ModelSpec("coarse-x2", "coarse", 2, coarse=CoarseConfig(scale=2)),
    "coarse-x4": ModelSpec("coarse-x4", "coarse", 4, coarse=CoarseConfig(scale=4)),
    # Restoration models: the coarse networks fine-tuned on the scan recipe, so the two can be
    # interpolated weight by weight (`--denoise` between 0 and 1).
    "restore-x2": ModelSpec("restore-x2", "coarse", 2, coarse=CoarseConfig(scale=2)),
    "restore-x4": ModelSpec("restore-x4", "coarse", 4, coarse=CoarseConfig(scale=4)),
    # On 2x2 pixel blocks: a third of the full-resolution network's cost (see models/refine.py),
    # distilled from refine-full (`upres train refine --teacher`), which is not shipped.
    "refine": ModelSpec("refine", "refine", 1, refine=RefineConfig(unshuffle=2)),
    "refine-full": ModelSpec("refine-full", "refine", 1, refine=RefineConfig()),
    "overlay-detect": ModelSpec("overlay-detect", "detect", 1, detect=DetectorConfig()),
    # Scratches, hair, creases and dust: the overlay detector's network on other training data.
    "thin-detect": ModelSpec("thin-detect", "detect", 1, detect=DetectorConfig(), synth="damage"),
    "fill": ModelSpec("fill", "fill", 1, fill=FillConfig()),
}


def spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(SPECS)}") from None
