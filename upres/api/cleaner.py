"""`upres.Cleaner`: `upres clean` (text, stamp and blemish removal inside a mask) with its
networks loaded once, for arrays, files and folders (`upres clean` is built on it)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from upres.api.arrays import ArrayLayout
from upres.api.batch import Batch, Results, start_batch
from upres.api.errors import ArrayError, BackendUnavailable, ClosedError, InputError, SettingsError
from upres.api.guard import Guard
from upres.api.settings import Settings
from upres.api.upscaler import Upscaler, _file_format
from upres.batch import BatchReport, ImageResult, Progress, RunOptions
from upres.cleaning.auto_mask import DEFAULT_MAX_AREA
from upres.cleaning.mask_source import (
    DEFAULT_DETECT,
    DEFAULT_GROW,
    MaskOptionError,
    MaskSource,
    auto_grow,
    detect_option,
    detectors_run,
)
from upres.cleaning.masks import MAX_MASKED
from upres.cleaning.pipeline import Cleaner as CleanStages
from upres.cleaning.pipeline import CleanSettings, seed_of
from upres.cleaning.runner import CleanRunner, MaskOptions, saved_mask_clashes, unscaled_setup
from upres.core.choices import CleanBlend
from upres.imageio import Compression, display_path
from upres.kernels.masks import final_mask
from upres.runtime.backends import select
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job, collect_jobs, mark_stream_clashes

if TYPE_CHECKING:
    from upres.cleaning.learned_fill import LearnedFillStage

AUTO = "auto"


def lossless_same(jobs: list[Job]) -> list[Job]:
    """With --format same a JPEG input is written as PNG: re-encoding it as JPEG would change
    every pixel, and the promise of a clean is that pixels outside the mask do not change."""
    out = [replace(job, output=job.output.with_suffix(".png")) if job.output.suffix == ".jpg" else job
           for job in jobs]
    seen: dict[Path, Job] = {}
    for job in out:
        if job.output in seen:
            raise InputError(f"{seen[job.output].source} and {job.source} would both write "
                             f"{job.output}; run them into different output folders")
        seen[job.output] = job
    return mark_stream_clashes(out)


class Cleaner:
    """Removes what a mask marks (white = remove), filling it from around: ``Cleaner()``.

    The keywords are `upres clean`'s options; ``upscale``: an Upscaler to upscale each cleaned
    file with (``--then-upscale``; arrays are cleaned only: pass the result to its
    ``upscale``). Thread-safe as the Upscaler is: calls run one at a time.
    """

    def __init__(self, *, feather: int = 2, fill: str = "fsr", fill_model: str | Path | None = None,
                 texture: float = 0.5, grain: float = 0.0, blend: CleanBlend | str = CleanBlend.ALPHA,
                 grow: int | None = None, backend: str = "auto", threads: int = 0,
                 memory: int | str | None = None, upscale: Upscaler | None = None,
                 detect: str | tuple[str, ...] = DEFAULT_DETECT,
                 max_auto_area: float = DEFAULT_MAX_AREA) -> None:
        if fill_model is not None and fill != "learned":
            raise SettingsError("--fill-model applies with --fill learned")
        if grow is not None and grow < 0:
            raise SettingsError(f"--grow must be auto (None) or a number of pixels >= 0, got {grow}")
        try:
            self.settings = CleanSettings(feather=feather, fill=fill, texture=texture, grain=grain,
                                          blend=CleanBlend.parse(blend))
            choice = select.choose(backend)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self.grow = grow
        # mask "auto": which detectors run, and the most of an image they may fill before it is
        # left for review (`--detect`, `--max-auto-area`).
        try:
            self.detect = detect_option(",".join([detect] if isinstance(detect, str) else detect))
        except MaskOptionError as exc:
            raise SettingsError(str(exc)) from None
        if not 0.0 < max_auto_area <= 1.0:
            raise SettingsError(f"--max-auto-area must be within (0, 1], got {max_auto_area}")
        self.max_auto_area = max_auto_area
        # Images --mask auto left for a person to look at, (source, reasons), as batches finish.
        self.review: list[tuple[Path, list[str]]] = []
        self.upscaler = upscale
        # Only the memory target and threads of `upres run`'s settings apply to a clean.
        self._run_settings = Settings(memory=memory, threads=threads)
        self._memory = self._run_settings.memory_target()
        self._guard = Guard("Cleaner")
        texture_stage, refine_sha = None, None
        if self.settings.texture > 0:
            from upres.cleaning.texture import build_texture

            texture_stage, refine = build_texture(choice.name, threads)
            refine_sha = refine.sha256
        fill_stage, fill_sha = None, None
        if self.settings.fill == "learned":
            fill_stage, fill_sha = _learned_fill(choice.name, threads, fill_model)
        self._stages: CleanStages | None = CleanStages(self.settings, texture_stage, fill_stage,
                                                       workers=threads)
        self._hashes = {"refine_sha256": refine_sha, "fill_sha256": fill_sha}
        self._unscaled = unscaled_setup(choice.name, choice.reason)

    @property
    def stages(self) -> CleanStages:
        if self._stages is None:
            raise ClosedError("this Cleaner is closed; create a new one")
        return self._stages

    @property
    def setup(self) -> ChainSetup:
        """What follows the clean: the Upscaler's chain, or none (scale 1)."""
        return self.upscaler.setup if self.upscaler is not None else self._unscaled

    def run_options(self, fmt: str = "same", resume: bool = True, max_pixels: int | None = None,
                    wait: float = 0.0) -> RunOptions:
        return self._run_settings.run_options(fmt, Compression.DEFAULT, resume, max_pixels, wait,
                                              self._memory)

    # -- arrays -------------------------------------------------------------------------------
    def clean(self, image: np.ndarray, mask: np.ndarray | str, *, seed: int | None = None) -> np.ndarray:
        """``image`` (any layout and dtype `Upscaler.upscale` takes) with the pixels ``mask``
        marks replaced, same layout and dtype out; every pixel outside the grown mask is the
        input's, bit for bit. ``mask``: an HxW array (nonzero = remove) or "auto" (the overlay
        detector). ``seed``: the grain's (None: from the image's bytes, so the same array gets
        the same grain). Raises ArrayError (a mask of another size, or one that covers more than
        98% of the image once grown)."""
        layout = ArrayLayout.of(image)
        pixels = layout.pixels(image)
        rgb = np.ascontiguousarray(pixels[..., :3])
        with self._guard.using():
            raw, stroke = self._raw_mask(rgb, mask, layout)
            grow = self.grow if self.grow is not None else \
                DEFAULT_GROW if stroke is None else auto_grow(stroke)
            final = final_mask(raw, grow)
            masked = int(final.sum())
            if masked > MAX_MASKED * final.size:
                raise ArrayError(f"mask covers {math.floor(masked / final.size * 1000) / 10:g}% of "
                                 f"the image once grown: nothing left to fill from (at most "
                                 f"{MAX_MASKED:.0%} may be masked)")
            if seed is None:
                seed = seed_of(hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest())
            cleaned, _ = self.stages.clean(rgb, final, seed)
        if layout.has_alpha:
            cleaned = np.concatenate([cleaned, pixels[..., 3:]], axis=2)
        out = layout.output(1)
        layout.put(cleaned, out)
        return layout.returned(out)

    def _raw_mask(self, rgb: np.ndarray, mask: np.ndarray | str,
                  layout: ArrayLayout) -> tuple[np.ndarray, float | None]:
        """(the bool mask before growing, the detected stroke width or None)."""
        if isinstance(mask, str):
            if mask != AUTO:
                raise SettingsError(f"mask must be an array or {AUTO!r}, got {mask!r}")
            from upres.cleaning.auto_mask import detect_auto

            self._auto_source()  # says why when a detector is not installed
            auto = detect_auto(rgb, self.max_auto_area, **detectors_run(self.detect))
            return auto.mask, auto.stroke_width()
        if not isinstance(mask, np.ndarray) or mask.shape[:2] != (layout.height, layout.width) \
                or (mask.ndim == 3 and mask.shape[2] != 1) or mask.ndim not in (2, 3):
            shape = getattr(mask, "shape", type(mask).__name__)
            raise ArrayError(f"the mask must be an HxW array of the image's size "
                             f"{layout.height}x{layout.width}, got {shape}")
        return np.asarray(mask).reshape(layout.height, layout.width) != 0, None

    # -- files --------------------------------------------------------------------------------
    def _runner(self, masks: MaskOptions, opts: RunOptions,
                progress: Progress | None = None) -> CleanRunner:
        return CleanRunner(self.setup, self.stages, masks, opts, self._hashes, progress)

    def _auto_source(self) -> MaskSource:
        try:
            return MaskSource.parse(AUTO, self.detect, self.max_auto_area)
        except MaskOptionError as exc:
            raise SettingsError(str(exc)) from None

    def _masks(self, mask: str | Path, save: bool) -> MaskOptions:
        try:
            return MaskOptions(MaskSource.parse(str(mask), self.detect, self.max_auto_area),
                               self.grow, save)
        except MaskOptionError as exc:
            raise SettingsError(str(exc)) from None

    def clean_file(self, src: str | Path, dst: str | Path, mask: str | Path, *,
                   save_mask: bool = False, resume: bool = False,
                   max_pixels: int | None = None) -> ImageResult:
        """`upres clean SRC --mask MASK` into ``dst``, the same bytes and sidecar (and, with
        ``save_mask``, the final mask beside it as NAME.mask.png). ``mask``: a mask file or
        "auto". Raises ImageError (MaskError for a mask that does not fit), SettingsError."""
        source, output = Path(src), Path(dst)
        fmt = _file_format(source, output)
        if output.resolve() == source.resolve():
            raise InputError(f"{display_path(source)}: the output would overwrite its own input")
        masks = self._masks(mask, save_mask)
        if masks.source.kind == "folder":
            raise SettingsError("clean_file takes a mask file or 'auto'; map matches a folder")
        job = mark_stream_clashes([Job(source, output)])[0]
        with self._guard.using():
            return self._runner(masks, self.run_options(fmt, resume, max_pixels)).run_file(job)

    def map(self, inputs: str | Path | Iterable[str | Path], out_dir: str | Path,
            mask: str | Path, *, format: str = "same", save_mask: bool = False,
            resume: bool = True, max_pixels: int | None = None, wait: float = 0.0,
            report: str | Path | None = None, progress: Progress | None = None,
            on_error: Callable[[str], None] | None = None,
            on_wait: Callable[[Path, int | None], None] | None = None,
            signals: bool = False) -> Batch:
        """`upres clean INPUTS -o OUT_DIR --mask MASK` (a file for every input, a folder of
        masks matched by name, or "auto") as a batch of results, like `Upscaler.map`."""
        names = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        jobs = collect_jobs([str(name) for name in names], Path(out_dir), format)
        if format == "same":
            jobs = lossless_same(jobs)
        return self.map_jobs(jobs, mask, format=format, save_mask=save_mask, resume=resume,
                             max_pixels=max_pixels, wait=wait, report=report, progress=progress,
                             on_error=on_error, on_wait=on_wait, signals=signals)

    def map_jobs(self, jobs: list[Job], mask: str | Path, *, format: str = "same",
                 save_mask: bool = False, resume: bool = True, max_pixels: int | None = None,
                 wait: float = 0.0, report: str | Path | None = None,
                 progress: Progress | None = None, on_error: Callable[[str], None] | None = None,
                 on_wait: Callable[[Path, int | None], None] | None = None,
                 signals: bool = False) -> Batch:
        """:meth:`map` for jobs collected already (for ``format`` "same", through
        :func:`lossless_same`)."""
        masks = self._masks(mask, save_mask)
        if save_mask and (clash := saved_mask_clash(jobs)):
            raise InputError(clash)
        opts = self.run_options(format, resume, max_pixels, wait)

        def run(jobs: list[Job], progress: Progress, on_error: Callable[[str], None],
                report: BatchReport, signals: bool) -> Results:
            runner = self._runner(masks, opts, progress)
            try:
                yield from runner.iter_run(jobs, on_error, report, signals)
            finally:
                self.review.extend(runner.review)

        return start_batch(jobs, self.setup, opts, run,
                           report=None if report is None else Path(report), progress=progress,
                           on_error=on_error, on_wait=on_wait, signals=signals, guard=self._guard)

    # -- life ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the networks' sessions (not the Upscaler's: close that yourself)."""
        with self._guard.closing() as was_open:
            if was_open:
                self._stages = None

    def __enter__(self) -> Cleaner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def saved_mask_clash(jobs: list[Job]) -> str | None:
    """Why ``save_mask`` cannot be used for these jobs (an output is another image's saved
    mask), or None."""
    clash = saved_mask_clashes(jobs)
    if not clash:
        return None
    job, output = clash[0]
    return (f"{display_path(job.source)} would be written to {display_path(output)}, where "
            "--save-mask puts the mask of another image; run it into another output folder")




def _learned_fill(backend: str, threads: int,
                  fill_model: str | Path | None) -> tuple[LearnedFillStage, str]:
    """The learned fill stage and its network's hash; SettingsError says why it cannot be had."""
    from upres.cleaning.learned_fill import available as fill_network_shipped
    from upres.cleaning.learned_fill import build_learned_fill

    if fill_model is None and not fill_network_shipped():
        raise SettingsError("--fill learned: no fill network ships with this release (none has yet "
                            "beaten fsr); train one with `upres train fill`, export it and pass "
                            "--fill-model")
    try:
        stage, ref = build_learned_fill(backend, threads,
                                        None if fill_model is None else Path(fill_model))
    except (FileNotFoundError, BackendUnavailable, ValueError) as exc:
        raise SettingsError(f"--fill learned: {exc}") from None
    return stage, ref.sha256
