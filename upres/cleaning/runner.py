"""The batch behind `upres clean`: `upres run`'s batch loop with a cleaning step in front.

Each image is hashed, resume-checked, decoded and given its mask in the reader thread; the main
thread grows the mask, cleans the image and hands it to :meth:`BatchRunner.process`, which
upscales it (``--then-upscale``) or passes it through unscaled, then writes the output and its
sidecar exactly as `upres run` does (atomic writes, BigTIFF streaming, same errors).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upres.batch import BatchRunner, ImageResult, Loaded, Progress, RunOptions, failure_message
from upres.cleaning.auto_mask import AutoMask
from upres.cleaning.mask_source import DEFAULT_GROW, MaskSource, auto_grow
from upres.cleaning.masks import MAX_MASKED, mask_sha256, saved_mask_path, write_mask
from upres.cleaning.pipeline import Cleaner, seed_of
from upres.imageio import DecodedImage, ImageError, ImageMeta, decoded_sha256, input_sha256, read_image
from upres.kernels.masks import final_mask
from upres.runtime.chain import TileChain
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.denoise import DenoiseChoice
from upres.runtime.inputs import Job
from upres.runtime.memory import MemoryModel
from upres.runtime.planner import Plan
from upres.runtime.sidecar import is_finished


@dataclass(frozen=True)
class Unscaled(TileChain):
    """The upscale step of a clean without --then-upscale: none (scale 1, no context needed)."""

    scale: int = 1

    @property
    def halo(self) -> int:
        return 0

    def host_memory_model(self) -> list[tuple[MemoryModel, int]]:
        # No network: as the deterministic chain at x1, a handful of float32 planes per pixel.
        return [(MemoryModel(0.0, 6 * 3 * 4, ()), 1)]

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return tile


def unscaled_setup(backend: str, reason: str) -> ChainSetup:
    return ChainSetup(Unscaled(), None, 1, backend, reason, "fp32")


@dataclass(frozen=True)
class MaskOptions:
    source: MaskSource
    grow: int | None = None  # None: DEFAULT_GROW for user masks, from the stroke width for detected ones
    save: bool = False

    def record(self) -> dict[str, Any]:
        return {**self.source.record(), "grow": "auto" if self.grow is None else self.grow,
                "save": self.save}


@dataclass
class _Loaded:
    image: DecodedImage
    raw_mask: np.ndarray
    settings: dict[str, Any]  # this image's settings record: the run's plus its mask file's hash
    mask_record: dict[str, Any] = field(default_factory=dict)
    stroke_width: float | None = None
    auto: AutoMask | None = None
    mask_seconds: float = 0.0  # reading or detecting the mask (in the reader thread)

    @property
    def meta(self) -> ImageMeta:
        return self.image.meta


class CleanRunner(BatchRunner):
    def __init__(self, setup: ChainSetup, cleaner: Cleaner, masks: MaskOptions, opts: RunOptions,
                 model_hashes: dict[str, str | None] | None = None,
                 progress: Progress | None = None) -> None:
        """``model_hashes``: the networks' SHA-256 (``refine_sha256``, ``fill_sha256``), recorded
        with the settings, so resume redoes an image when a network changes."""
        super().__init__(setup, opts, progress)
        self.cleaner = cleaner
        self.masks = masks
        # Images whose automatic mask left something for a person to decide (the area cap).
        self.review: list[tuple[Path, list[str]]] = []
        self.settings = {**self.settings, "clean": {**cleaner.settings.record(), **(model_hashes or {})},
                         "mask": masks.record()}

    def _load(self, job: Job) -> Loaded:
        try:
            sha = input_sha256(job.source)
            located = self.masks.source.locate(job)
            mask_file = {"file": str(located), "file_sha256": input_sha256(located)} if located else {}
            # The mask file's content, not its name, decides whether an output is finished.
            settings = {**self.settings, "mask": {**self.settings["mask"],
                                                  "file_sha256": mask_file.get("file_sha256")}}
            if self.opts.resume and self._finished(job, sha, settings):
                return Loaded(sha, None)
            image = read_image(job.source, self.opts.max_pixels)
            sha = decoded_sha256(job.source, image, sha)  # fails a file rewritten since it was hashed
            t0 = time.monotonic()
            raw, stroke, auto = self.masks.source.load(located, image, self.opts.max_pixels)
            return Loaded(sha, _Loaded(image, raw, settings, mask_file, stroke, auto,
                                       time.monotonic() - t0))
        except Exception as exc:  # the reader thread hands every failure back as one line
            return Loaded("", None, failure_message(job, exc), exception=exc)

    def _finished(self, job: Job, sha: str, settings: dict[str, Any]) -> bool:
        if self.masks.save and not saved_mask_path(job.output).is_file():
            return False
        return any(is_finished(out, out.with_name(out.name + ".json"), sha, settings)
                   for out in job.own_outputs)

    def grow_for(self, loaded: _Loaded) -> int:
        if self.masks.grow is not None:
            return self.masks.grow
        return DEFAULT_GROW if loaded.stroke_width is None else auto_grow(loaded.stroke_width)

    def process(self, job: Job, loaded: _Loaded, input_sha: str,  # type: ignore[override]
                writer: ThreadPoolExecutor, extra: dict[str, Any] | None = None,
                plan: Plan | None = None, denoise: DenoiseChoice | None = None,
                ) -> tuple[ImageResult, Future[None] | None]:
        # ``denoise`` is left to the base class: the strength is measured on the cleaned pixels.
        started = time.monotonic()
        grow = self.grow_for(loaded)
        mask = final_mask(loaded.raw_mask, grow)
        pixels = int(mask.sum())
        if pixels > MAX_MASKED * mask.size:
            # The fill takes its colours from around the mask: with (almost) nothing left it
            # paints a flat guess over the whole photo.
            raise ImageError(job.source, f"mask covers {_percent(pixels / mask.size)} of the image: "
                                         f"nothing left to fill from (at most {MAX_MASKED:.0%} may "
                                         "be masked)")
        record: dict[str, Any] = {**loaded.mask_record, "grow": grow, "sha256": mask_sha256(mask),
                                  "pixels": pixels}
        if loaded.stroke_width is not None:
            record["stroke_width"] = round(loaded.stroke_width, 3)
        if loaded.auto is not None:
            # What was detected, by which detector, and what was refused and why.
            record["auto"] = loaded.auto.record()
            if loaded.auto.review:
                self.review.append((job.source, loaded.auto.review))
        saved = saved_mask_path(job.output)
        if self.masks.save:
            record["saved"] = saved.name
        image = loaded.image
        cleaned, stats = self.cleaner.clean(
            image.rgb, mask, seed_of(input_sha),
            on_plan=lambda plan: self.progress.regions_started(job, len(plan.regions)),
            on_region=self.progress.region_done)
        extra = {"settings": loaded.settings, "mask": record, "clean": stats.record(),
                 "timings": {"mask": round(loaded.mask_seconds, 3),
                             "clean": round(time.monotonic() - started, 3)}}
        # The image's seconds count its cleaning too (its mask's, read ahead, apart).
        result, encoding = super().process(job, DecodedImage(cleaned, image.alpha, image.meta),
                                           input_sha, writer, extra, plan, started=started)
        if not self.masks.save:
            return result, encoding

        def save() -> None:
            # Only once the output and its sidecar are written: a failed image leaves no mask.
            if encoding is not None:
                encoding.result()
            try:
                write_mask(saved, mask)
            except BaseException:
                # The image fails as a whole: no output without the mask it was asked for.
                output = Path(result.output)
                output.unlink(missing_ok=True)
                output.with_name(output.name + ".json").unlink(missing_ok=True)
                raise

        if encoding is None:
            save()
            return result, None
        # The writer runs its tasks in order, so this one finds the encoding done or under way.
        return result, writer.submit(save)


def _percent(fraction: float) -> str:
    # Rounded down: 99.96% masked is not "100%", which says nothing at all is left.
    return "100%" if fraction >= 1 else f"{math.floor(fraction * 1000) / 10:g}%"


def saved_mask_clashes(jobs: list[Job]) -> list[tuple[Job, Path]]:
    """Jobs whose output is another job's saved mask (an input named ``x.mask.png`` next to
    ``x.png``): --save-mask would overwrite one with the other."""
    outputs = {job.output: job for job in jobs}
    return [(outputs[saved_mask_path(job.output)], job.output) for job in jobs
            if saved_mask_path(job.output) in outputs]

