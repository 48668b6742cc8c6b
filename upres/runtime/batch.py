"""The batch job behind `upres run`: decode, plan, upscale, encode, sidecar — one image at a time,
with decoding of the next image and encoding of the last overlapping the current inference."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upres import __version__
from upres.export.onnx_meta import file_sha256
from upres.imageio import (
    DEFAULT_MAX_PIXELS,
    BigTiffStripWriter,
    DecodedImage,
    ImageError,
    ImageMeta,
    TiffRows,
    display_path,
    input_sha256,
    open_tiff_rows,
    probe_image,
    read_image,
    to_output_samples,
    write_image,
)
from upres.runtime.atomic import cleanup_stale_temps
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job, format_of
from upres.runtime.memory import MemoryModel, current_rss, measure_memory_model
from upres.runtime.planner import DEPTH, Plan, PlanError, plan_job
from upres.runtime.sidecar import is_finished, write_sidecar
from upres.runtime.tiling import Rect, Tile
from upres.runtime.upscale import iter_strips

_PLAN_RECORDS = 256  # distinct plan records shared between images (a bound for varied sizes)


@dataclass(frozen=True)
class RunOptions:
    memory: int
    tile: int | None = None  # None = auto
    halo: int | None = None  # None = auto
    blend: str = "auto"
    fmt: str = "same"
    resume: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int = 0
    lock_wait: float = 0.0  # seconds to wait for another run's OUTDIR lock (math.inf: no limit)


@dataclass
class ImageResult:
    source: str
    output: str
    status: str  # "done", "skipped" or "failed"
    error: str = ""
    seconds: float = 0.0
    megapixels_out: float = 0.0
    plan: dict[str, Any] = field(default_factory=dict)


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


def settings_record(setup: ChainSetup, opts: RunOptions) -> dict[str, Any]:
    """What must match for an existing output to count as finished (resume)."""
    chain = setup.chain
    return {
        "upres_version": __version__,
        "mode": setup.mode,
        "scale": setup.scale,
        "texture": getattr(chain, "texture", None),
        "backend": setup.backend,
        "precision": setup.precision,
        "models": {k: m.sha256 for k, m in setup.models.items()},
        "tile": opts.tile,
        "halo": opts.halo,
        "blend": opts.blend,
        "format": opts.fmt,
    }


def failure_message(job: Job, exc: BaseException) -> str:
    """One line naming the input and the reason, whatever went wrong with this image."""
    source = display_path(job.source)
    if isinstance(exc, ImageError):
        # Read errors name the input already; write errors name the output, worth keeping.
        reason = exc.reason if exc.path == job.source else str(exc)
    elif isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.filename is not None:
            reason = f"{display_path(exc.filename)}: {reason}"
    elif isinstance(exc, PlanError):
        reason = str(exc)  # the memory target cannot hold this image: the message says what would
    elif isinstance(exc, MemoryError):
        reason = f"out of memory ({exc})" if str(exc) else "out of memory"
    else:
        # Unexpected: still one image's failure, not the batch's; the type helps a bug report.
        reason = f"internal error ({type(exc).__name__}: {exc})"
    return f"{source}: {display_path(' '.join(reason.split()))}"


def _inside(root: Path, path: Path) -> bool:
    root, path = root.resolve(), path.resolve()
    return path == root or root in path.parents


class StopFlag:
    """SIGINT/SIGTERM finish the current image, then stop with a summary."""

    def __init__(self) -> None:
        self.stopped = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.stopped:  # second signal: stop now
            raise KeyboardInterrupt
        self.stopped = True

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _array_reader(image: DecodedImage) -> Callable[[Rect], np.ndarray]:
    data = image.rgb if image.alpha is None else np.concatenate(
        [image.rgb, image.alpha[..., None]], axis=2)

    def read(r: Rect) -> np.ndarray:
        return data[r.y0 : r.y1, r.x0 : r.x1]

    return read


def _band_reader(rows: TiffRows) -> Callable[[Rect], np.ndarray]:
    """Tiles of one grid row share their rows: each band is decoded once, the previous dropped."""
    band: dict[str, Any] = {"rows": None, "pixels": None}

    def read(r: Rect) -> np.ndarray:
        if band["rows"] != (r.y0, r.y1):
            band["pixels"] = None  # freed before the next band is decoded
            band["pixels"] = rows.read(r.y0, r.y1)
            band["rows"] = (r.y0, r.y1)
        return band["pixels"][:, r.x0 : r.x1]

    return read


class BatchRunner:
    def __init__(self, setup: ChainSetup, opts: RunOptions, progress: Progress | None = None):
        self.setup = setup
        self.opts = opts
        self.progress = progress or Progress()
        self.settings = settings_record(setup, opts)
        self._memory_models: list[tuple[MemoryModel, int]] | None = None
        self._plan_records: dict[str, dict[str, Any]] = {}
        # Measured once, before any image is decoded, so the planner does not count an image twice.
        self.baseline = current_rss()

    # -- planning -----------------------------------------------------------------------------
    def stage_models(self) -> list[tuple[MemoryModel, int]]:
        if self._memory_models is None:
            s = self.setup.scale
            if not self.setup.models:
                # No network: Lanczos + sharpening buffers, a handful of float32 output planes.
                self._memory_models = [(MemoryModel(0.0, 6 * 3 * 4 * s * s, ()), 1)]
            elif self.setup.device is not None:
                # GPU pipeline: activations live on the device (planned there); the host holds
                # each stream's pinned staging, an input tile and an output tile of float32 RGB.
                streams = int(self.setup.device["streams"])  # type: ignore[call-overload]
                self._memory_models = [(MemoryModel(0.0, streams * 3 * 4 * (1 + s * s), ()), 1)]
            else:
                models = []
                for role, ref in self.setup.models.items():
                    mm = measure_memory_model(ref.path, ref.sha256, "ort-cpu",
                                              self.setup.precision, threads=self.opts.threads or 1)
                    models.append((mm, 1 if role == "coarse" else s * s))
                self._memory_models = models
        return self._memory_models

    def _tile(self) -> int | None:
        """--tile, or for a GPU pipeline its planned core (its buffers take no larger tile)."""
        device = self.setup.device
        if device is None:
            return self.opts.tile
        core = int(device["core"])  # type: ignore[call-overload]
        # The device buffers take core + 2 x the chain's halo; a wider --halo eats into the core.
        core -= 2 * max(0, (self.opts.halo or 0) - self.setup.chain.halo)
        if self.opts.tile is None:
            return core
        if self.opts.tile == 0 or self.opts.tile > core:
            raise PlanError(f"--tile {self.opts.tile}: the device memory plan takes tiles of at most "
                            f"{core} px (+ halo); use --tile {core} or less, or raise --memory")
        return self.opts.tile

    def plan(self, height: int, width: int, bit_depth: int = 8, channels: int = 3,
             streamed_input: bool = False) -> Plan:
        return plan_job(
            height, width, scale=self.setup.scale, required_halo=self.setup.chain.halo,
            channels_out=channels, bytes_per_sample_out=2 if bit_depth == 16 else 1,
            memory_target=self.opts.memory, stage_models=self.stage_models(),
            tile=self._tile(), halo=self.opts.halo, blend=self.opts.blend,
            baseline=self.baseline, streamed_input=streamed_input,
        )

    def plan_meta(self, meta: ImageMeta, streamed_input: bool = False) -> Plan:
        return self.plan(meta.height, meta.width, meta.bit_depth, 4 if meta.has_alpha else 3,
                         streamed_input)

    def plan_for(self, loaded: Any) -> Plan:
        """The plan of what `_load` returned (its `meta`; read by rows when it is a TiffRows)."""
        return self.plan_meta(loaded.meta, isinstance(loaded, TiffRows))

    def _whole_fits(self, meta: ImageMeta) -> bool:
        try:
            self.plan_meta(meta)
        except PlanError:
            return False
        return True

    def _streams(self, rows: TiffRows) -> bool:
        """Read by rows only where decoding whole does not fit and reading by rows does (for a
        small image the bands can cost more than the image)."""
        if self._whole_fits(rows.meta):
            return False
        try:
            self.plan_for(rows)
        except PlanError:
            return False
        return True

    def open_input(self, path: Path) -> DecodedImage | TiffRows:
        """The image decoded whole, or, where that would not fit the memory target and the file
        is a TIFF whose rows read on their own, open for reading a band of rows at a time."""
        rows = open_tiff_rows(path, self.opts.max_pixels)
        if rows is not None:
            if self._streams(rows):
                return rows
            rows.close()
        return read_image(path, self.opts.max_pixels)

    def plan_file(self, path: Path) -> tuple[ImageMeta, Plan]:
        """What `upres run` would do with this file, from its header alone."""
        rows = open_tiff_rows(path, self.opts.max_pixels)
        if rows is not None:
            with rows:
                if self._streams(rows):
                    return rows.meta, self.plan_for(rows)
        meta = probe_image(path, self.opts.max_pixels)
        return meta, self.plan_meta(meta)

    # -- one image ----------------------------------------------------------------------------
    def _upscale(self, job: Job, image: DecodedImage | TiffRows, plan: Plan) -> Iterator[np.ndarray]:
        read = _band_reader(image) if isinstance(image, TiffRows) else _array_reader(image)

        self.progress.image_started(job, len(plan.grid.tiles))
        for strip in iter_strips(read, plan.grid, self.setup.chain, plan.blend,
                                 on_tile=self.progress.tile_done):
            yield strip.pixels

    def _plan_record(self, plan: Plan) -> dict[str, Any]:
        """``plan.to_dict()``, one shared object per distinct plan: the report keeps a record per
        image for the whole batch, and in an archive many images have the same size."""
        record = plan.to_dict()
        key = json.dumps(record, sort_keys=True, default=str)
        if key in self._plan_records or len(self._plan_records) >= _PLAN_RECORDS:
            return self._plan_records.get(key, record)
        self._plan_records[key] = record
        return record

    def _output_for(self, job: Job, plan: Plan) -> Path:
        # Outputs too large for memory are streamed, and only TIFF can be written in strips.
        return job.output.with_suffix(".tif") if plan.streaming else job.output

    def process(self, job: Job, image: DecodedImage | TiffRows, input_sha: str,
                writer: ThreadPoolExecutor, extra: dict[str, Any] | None = None,
                ) -> tuple[ImageResult, Future[None] | None]:
        """Upscale and write one image; ``extra`` entries are added to (or replace those of) its
        sidecar record, for a caller that did more to the image (`upres clean`)."""
        t0 = time.monotonic()
        meta = image.meta
        plan = self.plan_for(image)
        output = self._output_for(job, plan)
        # collect_jobs checked this; checked again because a folder inside OUTDIR may have been
        # replaced by a symlink since, and mkdir would follow it.
        if job.outdir is not None and not _inside(job.outdir, output.parent):
            raise ImageError(output, f"output would escape {display_path(job.outdir)}")
        output.parent.mkdir(parents=True, exist_ok=True)
        s = self.setup.scale
        result = ImageResult(str(job.source), str(output), "done", plan=self._plan_record(plan),
                             megapixels_out=meta.height * meta.width * s * s / 1e6)
        if plan.streaming:
            mode, depth = meta.mode, meta.bit_depth
            channels = (1 if mode == "gray" else 3) + (1 if meta.has_alpha else 0)
            with BigTiffStripWriter(output, meta.height * s, meta.width * s, channels,
                                    np.uint16 if depth == 16 else np.uint8, meta=meta,
                                    scale=s) as tiff:
                for pixels in self._upscale(job, image, plan):
                    alpha = pixels[..., 3] if pixels.shape[2] == 4 else None
                    tiff.write_strip(to_output_samples(pixels[..., :3], alpha, mode, depth))
            result.seconds = time.monotonic() - t0
            self._finish(job, output, input_sha, result, extra)
            return result, None
        out = np.concatenate(list(self._upscale(job, image, plan)), axis=0)
        infer_seconds = time.monotonic() - t0
        rgb, alpha = out[..., :3], (out[..., 3] if out.shape[2] == 4 else None)

        def encode() -> None:
            write_image(output, rgb, alpha, meta, s, format_of(output.suffix))
            result.seconds = infer_seconds
            self._finish(job, output, input_sha, result, extra)

        return result, writer.submit(encode)

    def _finish(self, job: Job, output: Path, input_sha: str, result: ImageResult,
                extra: dict[str, Any] | None = None) -> None:
        record = {
            "input": {"path": str(job.source), "sha256": input_sha},
            "output": {"path": output.name, "sha256": file_sha256(output)},
            "settings": self.settings,
            "backend_reason": self.setup.backend_reason,
            "plan": result.plan,
            "timings": {"seconds": round(result.seconds, 3)},
            **(extra or {}),
        }
        try:
            write_sidecar(output.with_name(output.name + ".json"), record)
        except BaseException:
            # An output without its sidecar is unverifiable: a failed image leaves no file behind
            # (and a rerun redoes it either way).
            output.unlink(missing_ok=True)
            raise

    # -- the batch ----------------------------------------------------------------------------
    def _load(self, job: Job) -> tuple[str, DecodedImage | None, str]:
        """(input sha256, decoded image or None when already finished, error)."""
        try:
            # Hashing refuses FIFOs, devices, folders and empty files before reading a byte.
            sha = input_sha256(job.source)
            if self.opts.resume:
                for out in (job.output, job.output.with_suffix(".tif")):
                    if is_finished(out, out.with_name(out.name + ".json"), sha, self.settings):
                        return sha, None, ""
            return sha, self.open_input(job.source), ""
        except Exception as exc:  # the reader thread must hand every failure back as one line
            return "", None, failure_message(job, exc)

    def _load_ahead(self, loaded: Any, following: Job) -> bool:
        """Whether the next image may decode while this one runs: only when this image's plan
        kept room for a second decoded input (depth 2) at least as large as the next one."""
        if loaded is None:
            return True  # skipped or failed to load: this image holds nothing
        meta = loaded.meta
        try:
            plan = self.plan_for(loaded)
        except Exception:
            return False  # it will fail and report why; nothing is gained by overlapping
        if plan.depth < DEPTH:
            return False
        try:
            upcoming = probe_image(following.source, self.opts.max_pixels)
        except Exception:
            return True  # its load fails on its own and holds nothing
        return upcoming.height * upcoming.width <= meta.height * meta.width

    def run(self, jobs: list[Job], on_error: Callable[[str], None]) -> BatchReport:
        """Process ``jobs`` in order; a failed image is reported through ``on_error`` and the batch
        goes on. SIGINT/SIGTERM (main thread only) stop it after the current image.

        Callers that share an output folder with other processes should hold its
        :class:`~upres.runtime.lock.OutdirLock` (``upres run`` does).
        """
        report = BatchReport()
        self.remove_stale_temps(jobs)
        pending: list[tuple[ImageResult, Future[None]]] = []
        with StopFlag() as stop, ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
            loading = reader.submit(self._load, jobs[0]) if jobs else None
            for i, job in enumerate(jobs):
                assert loading is not None
                sha, image, error = loading.result()
                following = jobs[i + 1] if i + 1 < len(jobs) else None
                # The next image decodes during this one only where this plan counted it (depth
                # 2); otherwise it waits until this image is written and freed.
                ahead = (following is not None and not stop.stopped
                         and self._load_ahead(image, following))
                if ahead:
                    loading = reader.submit(self._load, following)
                result, future = self._one(job, sha, image, error, writer, on_error)
                image = None
                report.results.append(result)
                if future is None:
                    self.progress.image_finished(result)
                else:
                    pending.append((result, future))
                # One encode may run behind the next inference (the overlap), never a queue of
                # them: when encoding is slower than inference (big PNGs, a slow disk, a loaded
                # machine) whole outputs would pile up in memory, beyond what the planner allowed.
                pending = self._drain(pending, on_error, keep=1 if ahead else 0)
                if stop.stopped:
                    report.interrupted = True
                    report.not_started = len(jobs) - i - 1
                    loading.cancel()  # the next image was being decoded ahead: not needed now
                    break
                if following is not None and not ahead:
                    loading = reader.submit(self._load, following)
            self._drain(pending, on_error, keep=0)
        return report

    def run_one(self, job: Job, on_error: Callable[[str], None]) -> ImageResult:
        """One image start to finish (hash, resume check, decode, upscale, encode, sidecar) in the
        calling thread: the unit of work of a fleet worker, with the same failure rules as
        :meth:`run`. The caller owns stale-temp cleanup and the OUTDIR lock."""
        sha, image, error = self._load(job)
        with ThreadPoolExecutor(1) as writer:
            result, future = self._one(job, sha, image, error, writer, on_error)
            if future is None:
                self.progress.image_finished(result)
            else:
                self._drain([(result, future)], on_error, keep=0)
        return result

    def _one(self, job: Job, sha: str, image: DecodedImage | None, error: str,
             writer: ThreadPoolExecutor, on_error: Callable[[str], None],
             ) -> tuple[ImageResult, Future[None] | None]:
        if error:
            on_error(error)
            return ImageResult(str(job.source), str(job.output), "failed", error), None
        if image is None:
            return ImageResult(str(job.source), str(job.output), "skipped"), None
        try:
            return self.process(job, image, sha, writer)
        except Exception as exc:  # one image's failure, whatever it is, must not end the batch
            message = failure_message(job, exc)
            on_error(message)
            return ImageResult(str(job.source), str(job.output), "failed", message), None
        finally:
            if isinstance(image, TiffRows):
                image.close()  # its rows are all read (a streamed output is written by now)

    def remove_stale_temps(self, jobs: list[Job]) -> None:
        """Temporary files of writers that were killed (SIGKILL, power loss) before renaming."""
        folders = {job.output.parent for job in jobs}
        for folder in sorted(folders):
            # A folder we cannot clean surfaces as a per-image write error instead.
            with contextlib.suppress(OSError):
                if folder.is_dir():
                    cleanup_stale_temps(folder)

    def _drain(self, pending: list[tuple[ImageResult, Future[None]]],
               on_error: Callable[[str], None], keep: int) -> list[tuple[ImageResult, Future[None]]]:
        """Finish encodes in order: wait until at most ``keep`` are left, then take any that are
        done already. Returns those still running."""
        left = list(pending)
        while left and (len(left) > keep or left[0][1].done()):
            result, future = left.pop(0)
            try:
                future.result()
            except Exception as exc:
                result.status = "failed"
                result.error = failure_message(Job(Path(result.source), Path(result.output)), exc)
                on_error(result.error)
            self.progress.image_finished(result)
        return left
