"""The device and pinned buffers one pipeline lane owns, in bytes: one definition that both the
planner (to count them) and the pipeline (to allocate them) use, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

F32 = 4
RGB = 3
REFINE_IN = 4  # coarse RGB + edge plane


@dataclass(frozen=True)
class LaneLayout:
    """Largest tile a lane takes: padded LR side (halo included), scale and chain kind."""

    side: int
    scale: int
    hybrid: bool

    @property
    def lr_pixels(self) -> int:
        return self.side * self.side

    @property
    def hr_pixels(self) -> int:
        return self.lr_pixels * self.scale * self.scale

    def device_buffers(self) -> dict[str, int]:
        """Per lane, float32: the staged HWC tile, its CHW planes, the coarse output, for hybrid
        the refine input (coarse + edge) and the residual (composed in place), the HWC output."""
        lr, hr = self.lr_pixels, self.hr_pixels
        sizes = {"in_hwc": lr * RGB * F32, "in_chw": lr * RGB * F32, "coarse": hr * RGB * F32}
        if self.hybrid:
            sizes["refine_in"] = hr * REFINE_IN * F32
            sizes["residual"] = hr * RGB * F32
        sizes["out_hwc"] = hr * RGB * F32
        return sizes

    def pinned_buffers(self) -> dict[str, int]:
        """Host staging per lane: the tile going up and the output coming down."""
        return {"in": self.lr_pixels * RGB * F32, "out": self.hr_pixels * RGB * F32}

    def device_bytes(self) -> int:
        from upres.gpu.memory import align_up

        return sum(align_up(n) for n in self.device_buffers().values())

    def pinned_bytes(self) -> int:
        from upres.gpu.memory import align_up

        return sum(align_up(n) for n in self.pinned_buffers().values())


def canvas_bytes(band_rows: int, out_width: int, channels: int, strips: int = 3) -> int:
    """A device feather canvas: `strips` bands of fp32 sums (channels) plus their weight plane."""
    return strips * band_rows * out_width * (channels + 1) * F32
