"""`upres.Upscaler`: models and sessions loaded once, then arrays, files and folders upscaled
through the same planner, tile chain and writer as `upres run` (which is built on it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from types import TracebackType

import numpy as np

from upres.api.arrays import ArrayLayout
from upres.api.batch import Batch, BatchFn, function_scheduler, local_scheduler, start_batch
from upres.api.errors import ClosedError, InputError, SettingsError
from upres.api.guard import Guard
from upres.api.plans import PlanReport
from upres.api.settings import Settings
from upres.batch import BatchRunner, ImageResult, Progress, RunOptions
from upres.core.choices import Blend, Mode
from upres.imageio import Compression, display_path
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.denoise import DenoiseChoice, choose
from upres.runtime.inputs import Job, collect_jobs, mark_stream_clashes, output_suffix
from upres.runtime.planner import PlanError
from upres.runtime.tiling import Rect
from upres.runtime.upscale import iter_strips

# An output file's suffix -> its format (`--format`'s names).
SUFFIX_FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpg", ".jpeg": "jpg"}
_RUNNERS = 16  # batch runners kept for distinct file options (each holds its plan records)


class Upscaler:
    """Upscales with one chain, built once: ``Upscaler(scale=4, mode="faithful")``.

    The keywords are `upres run`'s options (see :class:`~upres.api.settings.Settings`). Calls
    from several threads are safe and run one at a time (see ``upres.api.guard`` for why); use
    it as a context manager, or call :meth:`close`, to free its sessions.
    """

    def __init__(self, scale: int = 4, *, mode: Mode | str | None = None, texture: float = 0.5,
                 model: str | None = None, precision: str = "fp32", backend: str = "auto",
                 memory: int | str | None = None, tile: int | None = None,
                 halo: int | None = None, blend: Blend | str = Blend.AUTO, threads: int = 0,
                 denoise: str | float = "auto") -> None:
        self.settings = Settings(scale=scale, mode=mode, texture=texture, model=model,
                                 precision=precision, backend=backend, memory=memory, tile=tile,
                                 halo=halo, blend=blend, threads=threads, denoise=denoise)
        self._guard = Guard("Upscaler")
        # Resolved once: the default target reads the available memory, which moves.
        self._memory = self.settings.memory_target()
        self._setup: ChainSetup | None = self.settings.build()
        self._runners: dict[RunOptions, BatchRunner] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Upscaler:
        return cls(**asdict(settings))

    # -- what was chosen ----------------------------------------------------------------------
    @property
    def setup(self) -> ChainSetup:
        """The chain, its mode, scale, backend (and why) and models."""
        if self._setup is None:
            raise ClosedError("this Upscaler is closed; create a new one")
        return self._setup

    @property
    def scale(self) -> int:
        return self.setup.scale

    @property
    def mode(self) -> str:
        return self.setup.mode_name

    @property
    def backend(self) -> str:
        return self.setup.backend

    def describe(self) -> dict[str, object]:
        """Mode, scale, backend and why, precision, denoise, halo and models (as `upres plan
        --json`)."""
        return self.setup.describe()

    def denoise_for(self, image: np.ndarray) -> DenoiseChoice:
        """The denoise strength :meth:`upscale` uses for ``image`` (auto: measured on its
        pixels, as `upres run` measures a file's) and what it was chosen from."""
        layout = ArrayLayout.of(image)
        return choose(self.setup.denoise, layout.pixels(image)[..., :3])

    def run_options(self, fmt: str = "same", compression: str | Compression = Compression.DEFAULT,
                    resume: bool = True, max_pixels: int | None = None,
                    wait: float = 0.0) -> RunOptions:
        """The batch options of one call (raises SettingsError)."""
        return self.settings.run_options(fmt, compression, resume, max_pixels, wait, self._memory)

    def _runner(self, opts: RunOptions) -> BatchRunner:
        """The runner for these options, made once: it measures the process's baseline RSS when
        made, which the memory plan of every image counts."""
        runner = self._runners.get(opts)
        if runner is None:
            if len(self._runners) >= _RUNNERS:
                self._runners.pop(next(iter(self._runners)))
            runner = self._runners[opts] = BatchRunner(self.setup, opts)
        return runner

    # -- arrays -------------------------------------------------------------------------------
    def upscale(self, image: np.ndarray) -> np.ndarray:
        """``image`` x scale: HxW, HxWx1, HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA), uint8,
        uint16 or float32 in 0..1; the output has the same layout and dtype. Tiled within the
        memory target as `upres run` tiles a file of that size, bit depth and alpha, so the
        pixels are those `upres run` writes (for float32, unquantised), at the denoise strength
        it picks (auto: measured on this image, see :meth:`denoise_for`). Raises ArrayError,
        PlanError (no tiling fits, or the output itself does not fit: use upscale_file, which
        streams it to disk) and ClosedError."""
        layout = ArrayLayout.of(image)
        pixels = layout.pixels(image)

        def read(r: Rect) -> np.ndarray:
            return pixels[r.y0 : r.y1, r.x0 : r.x1]

        with self._guard.using():
            runner = self._runner(self.run_options())
            plan = runner.plan(layout.height, layout.width, layout.bit_depth,
                               4 if layout.has_alpha else 3)
            if plan.streaming:
                raise PlanError(f"the {layout.width * self.scale}x{layout.height * self.scale} "
                                "output does not fit in memory within the memory target; "
                                "upscale_file streams it to disk, or raise memory")
            # As `upres run`: the strength measured on the RGB pixels the decoder would give.
            chain = self.setup.chain_for(choose(self.setup.denoise, pixels[..., :3]).strength)
            out = layout.output(self.scale)
            for strip in iter_strips(read, plan.grid, chain, plan.blend, deferred=True):
                layout.put(strip.pixels, out[strip.y0 : strip.y0 + strip.pixels.shape[0]])
        return layout.returned(out)

    # -- files --------------------------------------------------------------------------------
    def upscale_file(self, src: str | Path, dst: str | Path, *,
                     compression: str | Compression = Compression.DEFAULT, resume: bool = False,
                     max_pixels: int | None = None) -> ImageResult:
        """Upscale the file ``src`` into ``dst`` (.png, .tif/.tiff or .jpg/.jpeg: its format),
        written atomically with its JSON sidecar (``dst`` + ``.json``): the bytes, sidecar and
        metadata `upres run` writes. An output too large for the memory target is streamed as
        BigTIFF under ``dst``'s .tif name (``result.output`` says where). ``resume``: skip an
        output whose sidecar matches. Raises ImageError, PlanError, InputError, SettingsError,
        OSError."""
        source, output = Path(src), Path(dst)
        fmt = _file_format(source, output)
        if output.resolve() == source.resolve():
            raise InputError(f"{display_path(source)}: the output would overwrite its own input")
        job = mark_stream_clashes([Job(source, output)])[0]
        opts = self.run_options(fmt, compression, resume, max_pixels)
        with self._guard.using():
            return self._runner(opts).run_file(job)

    def map(self, inputs: str | Path | Iterable[str | Path], out_dir: str | Path, *,
            format: str = "same", compression: str | Compression = Compression.DEFAULT,
            resume: bool = True, max_pixels: int | None = None, wait: float = 0.0,
            report: str | Path | None = None, progress: Progress | None = None,
            on_error: Callable[[str], None] | None = None,
            on_wait: Callable[[Path, int | None], None] | None = None,
            signals: bool = False) -> Batch:
        """Files, folders and globs into ``out_dir`` as `upres run INPUTS -o OUT_DIR` does it:
        the pipelined batch (the next image decodes while one runs, the last one encodes), with
        resume, OUTDIR's lock, stale temporaries swept, and a JSON report if ``report`` names a
        file. Returns the batch, not yet started: iterate it for each image's
        :class:`~upres.batch.ImageResult` (status done/skipped/failed, output, seconds, error)
        as it finishes. A failed image is a result, not an exception; the batch goes on.

        ``wait``: seconds to wait for another run holding ``out_dir`` (raises OutdirLocked
        after). ``progress``: hooks called as tiles and images finish. ``on_error``: each failed
        image's one-line message. ``signals``: let SIGINT/SIGTERM/SIGHUP stop the batch after
        the current image (as `upres run` does; off, a library keeps its own handlers).
        Raises InputError (bad inputs), SettingsError, OutdirLocked."""
        names = [inputs] if isinstance(inputs, str | Path) else list(inputs)
        jobs = collect_jobs([str(name) for name in names], Path(out_dir), format)
        return self.map_jobs(jobs, format=format, compression=compression, resume=resume,
                             max_pixels=max_pixels, wait=wait, report=report, progress=progress,
                             on_error=on_error, on_wait=on_wait, signals=signals)

    def map_jobs(self, jobs: list[Job], *, format: str = "same",
                 compression: str | Compression = Compression.DEFAULT, resume: bool = True,
                 max_pixels: int | None = None, wait: float = 0.0,
                 report: str | Path | None = None, progress: Progress | None = None,
                 on_error: Callable[[str], None] | None = None,
                 on_wait: Callable[[Path, int | None], None] | None = None,
                 signals: bool = False, scheduler: BatchFn | None = None) -> Batch:
        """:meth:`map` for jobs collected already (`upres.runtime.inputs.collect_jobs`; ``format``
        is the one they were collected with, recorded in each sidecar). ``scheduler``: another
        way to run the same jobs, e.g. the Ray batch of `upres run --ray`
        (`upres.fleet.ray_batch.connect`); its results come when it returns."""
        opts = self.run_options(format, compression, resume, max_pixels, wait)
        setup = self.setup
        run = local_scheduler(setup, opts) if scheduler is None else \
            function_scheduler(scheduler, setup, opts)
        return start_batch(jobs, setup, opts, run, report=None if report is None else Path(report),
                           progress=progress, on_error=on_error, on_wait=on_wait, signals=signals,
                           guard=self._guard)

    # -- plans --------------------------------------------------------------------------------
    def plan(self, source: str | Path | np.ndarray | tuple[int, int], *,
             max_pixels: int | None = None) -> PlanReport:
        """The tile plan, memory estimate and denoise strength `upres plan` prints, for a file
        (planned from its header; decoded only to measure it for auto denoise), an array, or a
        (height, width) 8-bit RGB image (no pixels: auto denoise says strength 0). Runs nothing."""
        setting = self.setup.denoise
        with self._guard.using():
            runner = self._runner(self.run_options(max_pixels=max_pixels))
            if isinstance(source, np.ndarray):
                layout = ArrayLayout.of(source)
                plan = runner.plan(layout.height, layout.width, layout.bit_depth,
                                   4 if layout.has_alpha else 3)
                choice = choose(setting, layout.pixels(source)[..., :3] if setting.auto else None)
                return PlanReport("array", layout.width, layout.height, plan, self.setup, choice)
            if isinstance(source, tuple):
                height, width = source
                return PlanReport("array", width, height, runner.plan(height, width), self.setup,
                                  choose(setting, None))
            meta, plan = runner.plan_file(Path(source))
            choice = runner.denoise_file(Path(source)) if setting.auto else choose(setting, None)
            return PlanReport(str(source), meta.width, meta.height, plan, self.setup, choice)

    # -- life ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the sessions (and a GPU chain's device memory). Waits for a call in progress;
        later calls, and the next step of an open batch, raise ClosedError."""
        with self._guard.closing() as was_open:
            if not was_open:
                return
            setup, self._setup = self._setup, None
            self._runners.clear()
            if setup is not None:
                setup.close()

    def __enter__(self) -> Upscaler:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._setup is None:
            return "Upscaler(closed)"
        s = self._setup
        return f"Upscaler(scale={s.scale}, mode={s.mode_name!r}, backend={s.backend!r})"


def _file_format(source: Path, output: Path) -> str:
    """``--format`` for an output named ``output``: "same" where that is what `upres run` would
    name it (so the sidecars match), else the format its suffix names."""
    fmt = SUFFIX_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise SettingsError(f"{display_path(output)}: the output must end in .png, .tif, .tiff, "
                            ".jpg or .jpeg")
    return "same" if output_suffix(source, "same") == output_suffix(source, fmt) else fmt
