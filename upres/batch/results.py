"""What a batch is asked to do and what it reports: options, per-image results, progress hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from upres.core.choices import Blend
from upres.imageio import DEFAULT_MAX_PIXELS, Compression
from upres.runtime.inputs import Job
from upres.runtime.tiling import Tile


@dataclass(frozen=True)
class RunOptions:
    memory: int
    tile: int | None = None  # None = auto
    halo: int | None = None  # None = auto
    blend: Blend = Blend.AUTO
    fmt: str = "same"
    resume: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int = 0
    lock_wait: float = 0.0  # seconds to wait for another run's OUTDIR lock (math.inf: no limit)
    compression: Compression = Compression.DEFAULT
    encode_threads: int = 0  # threads compressing an output's strips (0 = every core)


@dataclass
class ImageResult:
    source: str
    output: str
    status: str  # "done", "skipped" or "failed"
    error: str = ""
    seconds: float = 0.0
    megapixels_out: float = 0.0
    plan: dict[str, Any] = field(default_factory=dict)
    denoise: dict[str, Any] | None = None  # the strength used and (auto) what it was chosen from


@dataclass
class BatchReport:
    results: list[ImageResult] = field(default_factory=list)
    interrupted: bool = False
    not_started: int = 0  # jobs left when a signal stopped the batch

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("done", "skipped", "failed")}


class Progress:
    """Callbacks the CLI's progress bar implements; the default does nothing."""

    def image_started(self, job: Job, tiles: int) -> None: ...
    def tile_done(self, tile: Tile) -> None: ...
    def image_finished(self, result: ImageResult) -> None: ...
    # `upres clean` reports its regions before the image's tiles.
    def regions_started(self, job: Job, regions: int) -> None: ...
    def region_done(self) -> None: ...
