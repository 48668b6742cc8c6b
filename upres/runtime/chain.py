"""The tile-chain contract: what the tiler, the planner, the batch and the reports may ask of a
chain, whichever backend runs it (CPU chains in upres.runtime.stages, the GPU pipeline's in
upres.gpu.chain).

A chain maps one padded (H, W, 3) float32 tile to its (H*s, W*s, 3) output; ``halo`` says how
much context it needs for the result to equal the whole-image one. Everything else has a default
here, so a chain overrides only what it does differently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from upres.runtime.memory import MemoryModel

if TYPE_CHECKING:
    from upres.runtime.tail import TailPlanes


@dataclass(frozen=True)
class DevicePlan:
    side: int  # largest padded tile the buffers take (LR px, halo included)
    core: int  # side - 2 * halo: the tiler's core size
    streams: int
    activation_per_stream: int
    io_per_stream: int
    canvas: int
    resident: int
    target: int
    notes: tuple[str, ...]

    @property
    def total(self) -> int:
        return (self.resident + self.streams * (self.activation_per_stream + self.io_per_stream)
                + self.canvas)

    def to_dict(self) -> dict[str, object]:
        return {"side": self.side, "core": self.core, "streams": self.streams,
                "activation_per_stream": self.activation_per_stream,
                "io_per_stream": self.io_per_stream, "canvas": self.canvas,
                "resident": self.resident, "total": self.total,
                "target": self.target, "notes": list(self.notes)}


class TileChain(ABC):
    """scale: output size / input size. halo (read-only): input pixels of context a tile needs for
    an exact result. texture: the hybrid refine strength, None for chains without a refine stage.
    """

    scale: int

    @property
    @abstractmethod
    def halo(self) -> int: ...

    @property
    def texture(self) -> float | None:
        return None

    @abstractmethod
    def __call__(self, tile: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 [0, 1] -> (H*s, W*s, 3) float32, possibly a strided view and
        possibly outside [0, 1]: `upscale.iter_strips` clips, or leaves the clip to the
        quantiser of the output (which clips), so a network's output is touched once."""

    def map_tiles(self, tiles: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Each tile's output, in order. One at a time here; the GPU pipeline keeps several in
        flight (across grid rows too), so the tiler always hands over the whole sequence."""
        for tile in tiles:
            yield self(tile)

    def map_tiles_deferred(self, tiles: Iterable[np.ndarray]) -> Iterator[np.ndarray | TailPlanes]:
        """:meth:`map_tiles` for a caller that quantises the outputs itself (the batch's output
        samples): a chain may hand a tile over before its network's last steps
        (upres.runtime.tail.TailPlanes), which that caller's pass then does."""
        yield from self.map_tiles(tiles)

    def host_memory_model(self) -> list[tuple[MemoryModel, int]] | None:
        """(memory model, tiles of that model's input size per output tile) for each stage whose
        host memory the planner must count, or None: measure each ONNX model of the chain (the
        CPU backends, where the models' activations live on the host)."""
        return None

    def device_plan(self) -> DevicePlan | None:
        """The device memory plan of a GPU chain (it fixes the tile size); None on the CPU."""
        return None

    def device_report(self) -> dict[str, int] | None:
        """Device memory measured so far beside the plan and the target; None on the CPU."""
        return None

    def close(self) -> None:
        """Free what the chain holds (device memory, streams); a CPU chain holds nothing."""
        return None
