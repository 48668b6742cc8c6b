"""The batch job behind `upres run`: decode, plan, upscale, encode, sidecar.

Three stages overlap: a reader thread decodes (and plans) image k+1 while this thread runs the
tiles of image k, quantising each strip into the output's samples as it comes out, and a writer
thread encodes image k-1, its strips compressed on the encoder pool. Outputs finish in order;
each image is planned once, when it is loaded.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from upres.batch.output import SampleCanvas, streamed_tiff, write_streamed_strip
from upres.batch.planning import BatchPlanner
from upres.batch.readers import reader_for
from upres.batch.records import failure_message, settings_record
from upres.batch.results import BatchReport, ImageResult, Progress, RunOptions
from upres.batch.signals import StopFlag
from upres.core.atomic import cleanup_stale_temps
from upres.core.hashing import file_sha256
from upres.imageio import (
    DecodedImage,
    Encoding,
    ImageError,
    ImageMeta,
    TiffRows,
    decoded_sha256,
    display_path,
    input_sha256,
    metadata_record,
    probe_image,
    write_samples,
)
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.denoise import DenoiseChoice, choose
from upres.runtime.inputs import Job, format_of, written_paths
from upres.runtime.planner import DEPTH, Plan
from upres.runtime.sidecar import is_finished, write_sidecar
from upres.runtime.tail import TailPlanes
from upres.runtime.upscale import iter_strips

_PLAN_RECORDS = 256  # distinct plan records shared between images (a bound for varied sizes)


class Loaded(NamedTuple):
    """What the reader thread hands over: the input's hash, the image (None when it is finished
    already or failed), the one-line error of a failure, the image's plan and denoise strength."""

    sha: str
    image: Any  # DecodedImage | TiffRows, or what a subclass's loader makes
    error: str = ""
    plan: Plan | None = None
    denoise: DenoiseChoice | None = None
    exception: BaseException | None = None  # what ``error`` says, for a caller that re-raises it


# auto denoise measures a streamed TIFF on this many rows from its middle (never all of it).
_MEASURE_ROWS = 512


def _inside(root: Path, path: Path) -> bool:
    root, path = root.resolve(), path.resolve()
    return path == root or root in path.parents


class BatchRunner(BatchPlanner):
    def __init__(self, setup: ChainSetup, opts: RunOptions, progress: Progress | None = None):
        super().__init__(setup, opts)
        self.progress = progress or Progress()
        self.settings = settings_record(setup, opts)
        self.encoding = Encoding(opts.compression, opts.encode_threads)
        self._plan_records: dict[str, dict[str, Any]] = {}

    # -- one image ----------------------------------------------------------------------------
    def denoise_for(self, image: DecodedImage | TiffRows | None) -> DenoiseChoice:
        """The denoise strength of this image (auto: measured on its pixels)."""
        setting = self.setup.denoise
        if not setting.auto or image is None:
            return choose(setting, None)
        if isinstance(image, TiffRows):
            h = image.meta.height
            y0 = max(0, h // 2 - _MEASURE_ROWS // 2)
            return choose(setting, image.read(y0, min(h, y0 + _MEASURE_ROWS)))
        return choose(setting, image.rgb)

    def denoise_file(self, path: Path) -> DenoiseChoice:
        """The strength `upres run` would pick for this file (decodes it)."""
        image, _ = self.open_planned(path)
        try:
            return self.denoise_for(image)
        finally:
            if isinstance(image, TiffRows):
                image.close()

    def _upscale(self, job: Job, image: DecodedImage | TiffRows, plan: Plan,
                 denoise: DenoiseChoice) -> Iterator[np.ndarray | TailPlanes]:
        read = reader_for(image)
        self.progress.image_started(job, len(plan.grid.tiles))
        chain = self.setup.chain_for(denoise.strength)
        # The strips go to the output's samples (upres.batch.output), which finish TailPlanes.
        for strip in iter_strips(read, plan.grid, chain, plan.blend,
                                 on_tile=self.progress.tile_done, deferred=True):
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
        if not plan.streaming:
            return job.output
        if job.stream_clash:
            # Refused by name, not by what is on disk: the same image fails in every run, and
            # the other image's output is never overwritten nor taken for this one's on resume.
            raise ImageError(job.source, f"its output is too large for --memory to hold, so it would "
                                         f"be streamed as {display_path(job.streamed)}, but "
                                         f"{job.stream_clash}; run it into another output folder, "
                                         "or raise --memory")
        return job.streamed

    def process(self, job: Job, image: DecodedImage | TiffRows, input_sha: str,
                writer: ThreadPoolExecutor, extra: dict[str, Any] | None = None,
                plan: Plan | None = None, denoise: DenoiseChoice | None = None,
                started: float | None = None) -> tuple[ImageResult, Future[None] | None]:
        """Upscale and write one image; ``extra`` entries are added to (or replace those of) its
        sidecar record, for a caller that did more to the image (`upres clean`; its "timings"
        join the sidecar's). ``plan`` and ``denoise``: those chosen when it was loaded (chosen here
        if not given); ``started``: the ``time.monotonic()`` the image's own time counts from,
        for a caller that worked on it first (now if not given)."""
        t0 = time.monotonic() if started is None else started
        meta = image.meta
        plan = plan or self.plan_for(image)
        denoise = denoise or self.denoise_for(image)
        extra = {"denoise": denoise.to_record(), **(extra or {})}
        output = self._output_for(job, plan)
        # collect_jobs checked this; checked again because a folder inside OUTDIR may have been
        # replaced by a symlink since, and mkdir would follow it.
        if job.outdir is not None and not _inside(job.outdir, output.parent):
            raise ImageError(output, f"output would escape {display_path(job.outdir)}")
        output.parent.mkdir(parents=True, exist_ok=True)
        s = self.setup.scale
        result = ImageResult(str(job.source), str(output), "done", plan=self._plan_record(plan),
                             megapixels_out=meta.height * meta.width * s * s / 1e6,
                             denoise=denoise.to_record())
        if plan.streaming:
            with streamed_tiff(output, meta, s, self.opts.compression) as tiff:
                for pixels in self._upscale(job, image, plan, denoise):
                    write_streamed_strip(tiff, pixels, meta)
            result.seconds = time.monotonic() - t0
            self._finish(job, output, input_sha, result, meta, extra)
            return result, None
        fmt = format_of(output.suffix)
        canvas = SampleCanvas(output, meta, s, fmt)
        for pixels in self._upscale(job, image, plan, denoise):
            canvas.add(pixels)
        samples = canvas.complete()
        infer_seconds = time.monotonic() - t0

        def encode() -> None:
            write_samples(output, samples, meta, s, fmt, self.encoding)
            result.seconds = infer_seconds
            self._finish(job, output, input_sha, result, meta, extra)

        return result, writer.submit(encode)

    def _finish(self, job: Job, output: Path, input_sha: str, result: ImageResult,
                meta: ImageMeta, extra: dict[str, Any] | None = None) -> None:
        """The sidecar: what made this output, what of the source's metadata it kept, how."""
        record = {
            "input": {"path": str(job.source), "sha256": input_sha},
            "output": {"path": output.name, "sha256": file_sha256(output),
                       "encoder": self.encoding.label(format_of(output.suffix))},
            "metadata": metadata_record(meta, format_of(output.suffix)),
            "settings": self.settings,
            "backend_reason": self.setup.backend_reason,
            "plan": result.plan,
            **(extra or {}),
            "timings": {"seconds": round(result.seconds, 3), **(extra or {}).get("timings", {})},
        }
        try:
            write_sidecar(output.with_name(output.name + ".json"), record)
        except BaseException:
            # An output without its sidecar is unverifiable: a failed image leaves no file behind
            # (and a rerun redoes it either way).
            output.unlink(missing_ok=True)
            raise

    # -- the batch ----------------------------------------------------------------------------
    def _load(self, job: Job) -> Loaded:
        """Hash, resume check, decode and plan (in the reader thread)."""
        try:
            # Hashing refuses FIFOs, devices, folders and empty files before reading a byte.
            sha = input_sha256(job.source)
            if self.opts.resume:
                for out in job.own_outputs:
                    if is_finished(out, out.with_name(out.name + ".json"), sha, self.settings):
                        return Loaded(sha, None)
            image, plan = self.open_planned(job.source)
            # The sidecar vouches for the bytes decoded: a file rewritten since it was hashed fails.
            return Loaded(decoded_sha256(job.source, image, sha), image, "", plan,
                          self.denoise_for(image))
        except Exception as exc:  # the reader thread must hand every failure back as one line
            return Loaded("", None, failure_message(job, exc), exception=exc)

    def _load_ahead(self, loaded: Any, following: Job, plan: Plan | None = None) -> bool:
        """Whether the next image may decode while this one runs: only when this image's plan
        kept room for a second decoded input (depth 2) at least as large as the next one."""
        if loaded is None:
            return True  # skipped or failed to load: this image holds nothing
        meta = loaded.meta
        try:
            plan = plan or self.plan_for(loaded)
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
        goes on. SIGINT/SIGTERM/SIGHUP (main thread only) stop it after the current image.

        Callers that share an output folder with other processes should hold its
        :class:`~upres.runtime.lock.OutdirLock` (``upres run`` does).
        """
        report = BatchReport()
        for _ in self.iter_run(jobs, on_error, report):
            pass
        return report

    def iter_run(self, jobs: list[Job], on_error: Callable[[str], None], report: BatchReport,
                 signals: bool = True) -> Generator[ImageResult, None, None]:
        """:meth:`run` as a generator: each image's result as it finishes (in input order), with
        ``report`` filled in as the batch goes. ``signals``: whether SIGINT/SIGTERM/SIGHUP stop
        the batch after the current image (main thread only); a library caller may keep its own
        handlers. Closing the generator early lets the images in flight finish, then stops."""
        self.remove_stale_temps(jobs)
        pending: list[tuple[ImageResult, Future[None]]] = []
        with StopFlag(signals) as stop, ThreadPoolExecutor(1) as reader, \
                ThreadPoolExecutor(1) as writer:
            loading = reader.submit(self._load, jobs[0]) if jobs else None
            for i, job in enumerate(jobs):
                assert loading is not None
                loaded: Loaded | None = loading.result()
                assert loaded is not None
                following = jobs[i + 1] if i + 1 < len(jobs) else None
                # The next image decodes during this one only where this plan counted it (depth
                # 2); otherwise it waits until this image is written and freed.
                ahead = (following is not None and not stop.stopped
                         and self._load_ahead(loaded.image, following, loaded.plan))
                if ahead and following is not None:
                    loading = reader.submit(self._load, following)
                result, future = self._one(job, loaded, writer, on_error)
                loaded = None  # this image's pixels are freed before the next is decoded
                report.results.append(result)
                if future is None:
                    self.progress.image_finished(result)
                    yield result
                else:
                    pending.append((result, future))
                # One encode may run behind the next inference (the overlap), never a queue of
                # them: when encoding is slower than inference (big PNGs, a slow disk, a loaded
                # machine) whole outputs would pile up in memory, beyond what the planner allowed.
                yield from self._drain(pending, on_error, keep=1 if ahead else 0)
                if stop.stopped:
                    report.interrupted = True
                    report.not_started = len(jobs) - i - 1
                    loading.cancel()  # the next image was being decoded ahead: not needed now
                    break
                if following is not None and not ahead:
                    loading = reader.submit(self._load, following)
            yield from self._drain(pending, on_error, keep=0)

    def run_one(self, job: Job, on_error: Callable[[str], None]) -> ImageResult:
        """One image start to finish (hash, resume check, decode, upscale, encode, sidecar) in the
        calling thread: the unit of work of a fleet worker, with the same failure rules as
        :meth:`run`. The caller owns stale-temp cleanup and the OUTDIR lock."""
        loaded = self._load(job)
        with ThreadPoolExecutor(1) as writer:
            result, future = self._one(job, loaded, writer, on_error)
            if future is None:
                self.progress.image_finished(result)
            else:
                for _ in self._drain([(result, future)], on_error, keep=0):
                    pass
        return result

    def run_file(self, job: Job) -> ImageResult:
        """One image in the calling thread, as :meth:`run_one`, but a failure raises the image's
        own exception (ImageError, PlanError, OSError, ...) instead of becoming a message: the
        unit of work of a library call (`upres.Upscaler.upscale_file`)."""
        loaded = self._load(job)
        if loaded.exception is not None:
            raise loaded.exception
        if loaded.error:
            raise ImageError(job.source, loaded.error)
        if loaded.image is None:
            result = ImageResult(str(job.source), str(job.output), "skipped")
        else:
            try:
                with ThreadPoolExecutor(1) as writer:
                    result, future = self.process(job, loaded.image, loaded.sha, writer,
                                                  plan=loaded.plan, denoise=loaded.denoise)
                    if future is not None:
                        future.result()
            finally:
                if isinstance(loaded.image, TiffRows):
                    loaded.image.close()
        self.progress.image_finished(result)
        return result

    def _one(self, job: Job, loaded: Loaded, writer: ThreadPoolExecutor,
             on_error: Callable[[str], None]) -> tuple[ImageResult, Future[None] | None]:
        image = loaded.image
        if loaded.error:
            on_error(loaded.error)
            return ImageResult(str(job.source), str(job.output), "failed", loaded.error), None
        if image is None:
            return ImageResult(str(job.source), str(job.output), "skipped"), None
        try:
            return self.process(job, image, loaded.sha, writer, plan=loaded.plan,
                                denoise=loaded.denoise)
        except Exception as exc:  # one image's failure, whatever it is, must not end the batch
            message = failure_message(job, exc)
            on_error(message)
            return ImageResult(str(job.source), str(job.output), "failed", message), None
        finally:
            if isinstance(image, TiffRows):
                image.close()  # its rows are all read (a streamed output is written by now)

    def remove_stale_temps(self, jobs: list[Job]) -> None:
        """Temporary files of writers that were killed (SIGKILL, power loss) before renaming: in
        the batch's output folders only, and never one of its inputs or outputs, whatever their
        names."""
        folders = {job.output.parent for job in jobs}
        keep = [job.source for job in jobs] + written_paths(jobs)
        for folder in sorted(folders):
            # A folder we cannot clean surfaces as a per-image write error instead.
            with contextlib.suppress(OSError):
                if folder.is_dir():
                    cleanup_stale_temps(folder, keep=keep)

    def _drain(self, pending: list[tuple[ImageResult, Future[None]]],
               on_error: Callable[[str], None], keep: int) -> Iterator[ImageResult]:
        """Finish encodes in order: wait until at most ``keep`` are left, then take any that are
        done already, yielding each finished result. ``pending`` keeps those still running."""
        while pending and (len(pending) > keep or pending[0][1].done()):
            result, future = pending.pop(0)
            try:
                future.result()
            except Exception as exc:
                result.status = "failed"
                result.error = failure_message(Job(Path(result.source), Path(result.output)), exc)
                on_error(result.error)
            self.progress.image_finished(result)
            yield result
