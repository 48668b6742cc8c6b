"""Console side of `upres run`: progress bar, one-line errors, summary and the JSON report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from upres import __version__
from upres.batch import BatchReport, BatchRunner, ImageResult, RunOptions
from upres.batch import Progress as BatchProgress
from upres.cli.options import USAGE_ERROR  # another run holding OUTDIR is a usage problem
from upres.core import pause_points
from upres.core.atomic import atomic_write_text
from upres.core.sizes import format_size
from upres.imageio import display_path
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job
from upres.runtime.lock import OutdirLock, OutdirLocked
from upres.runtime.tiling import Tile

# Runs the jobs under OUTDIR's lock: (jobs, setup, opts, progress, on_error) -> report. The default is
# BatchRunner.run on this machine; upres.fleet.ray_batch spreads the jobs over a Ray cluster.
BatchFn = Callable[[list[Job], ChainSetup, RunOptions, BatchProgress, Callable[[str], None]], BatchReport]


class _Bar(BatchProgress):
    def __init__(self, bar: Progress, images: int) -> None:
        self.bar = bar
        self.images = bar.add_task("images", total=images, rate="")
        # Added by the first image_started: a fleet run reports whole images only.
        self.tiles: TaskID | None = None
        self.mp = 0.0
        self.seconds = 0.0

    def image_started(self, job: Job, tiles: int) -> None:
        self._restart(f"tiles {display_path(job.source.name)}", tiles)

    def regions_started(self, job: Job, regions: int) -> None:
        self._restart(f"regions {display_path(job.source.name)}", regions)

    def _restart(self, description: str, total: int) -> None:
        if self.tiles is None:
            self.tiles = self.bar.add_task(description, total=total, rate="")
        else:
            self.bar.reset(self.tiles, total=total, description=description)

    def tile_done(self, tile: Tile) -> None:
        self.region_done()

    def region_done(self) -> None:
        if self.tiles is not None:
            self.bar.advance(self.tiles)

    def image_finished(self, result: ImageResult) -> None:
        if result.status == "done" and result.seconds > 0:
            self.mp += result.megapixels_out
            self.seconds += result.seconds
        rate = f"{self.mp / self.seconds:.2f} MP/s" if self.seconds else ""
        self.bar.update(self.images, advance=1, rate=rate)


def _lock_folder(jobs: list[Job]) -> Path:
    """OUTDIR, which collect_jobs records in every job; for hand-made jobs, the common folder."""
    if jobs[0].outdir is not None:
        return jobs[0].outdir
    return Path(os.path.commonpath([job.output.parent for job in jobs]))


def _line(label: str, style: str, message: str) -> Text:
    # A Text is printed as is: a file name holding "[b]" or ":smile:" is not markup or emoji.
    return Text.assemble((label, style), " ", message)


def print_note(err: Console, message: str) -> None:
    err.print(_line("note:", "yellow", message), highlight=False, soft_wrap=True)


def run_batch_cli(jobs: list[Job], setup: ChainSetup, opts: RunOptions, report: Path | None,
                  quiet: bool, out: Console, err: Console, batch: BatchFn | None = None) -> int:
    """Run the batch under OUTDIR's lock; exit code 0, 1 (an image failed or the run was
    interrupted) or 2 (another run holds OUTDIR)."""
    if not jobs:
        return 0
    folder = _lock_folder(jobs)

    def waiting(holder: int | None) -> None:
        who = f"pid {holder}" if holder else "another process"
        err.print(_line("waiting:", "yellow", f"{display_path(folder)} is in use by {who}"),
                  highlight=False, soft_wrap=True)

    lock = OutdirLock(folder, opts.lock_wait, on_wait=waiting)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except (OutdirLocked, OSError) as exc:
        message = str(exc) if isinstance(exc, OutdirLocked) else \
            f"cannot lock {display_path(folder)}: {exc.strerror or exc}"
        err.print(_line("error:", "red", message), highlight=False, soft_wrap=True)
        return USAGE_ERROR
    report_error = ""
    try:
        result = _run(jobs, setup, opts, quiet, err, batch or _local_batch)
        if report:
            # Still under the lock: no other run's sweep of OUTDIR can meet its temporary file.
            try:
                _write_report(report, result, setup, opts)
            except OSError as exc:
                report_error = f"cannot write the report {display_path(report)}: {exc.strerror or exc}"
    finally:
        lock.release()
    _summarise(result, len(jobs), setup, quiet, out, err)
    if report_error:
        err.print(_line("error:", "red", report_error), highlight=False, soft_wrap=True)
    return 1 if result.failed or result.interrupted or report_error else 0


def _write_report(path: Path, result: BatchReport, setup: ChainSetup, opts: RunOptions) -> None:
    atomic_write_text(path, json.dumps({
        "upres_version": __version__, **setup.describe(), "counts": result.counts(),
        "interrupted": result.interrupted, "not_started": result.not_started,
        "memory_target": opts.memory, "images": [r.__dict__ for r in result.results],
    }, indent=2, default=str))


def _local_batch(jobs: list[Job], setup: ChainSetup, opts: RunOptions, progress: BatchProgress,
                 on_error: Callable[[str], None]) -> BatchReport:
    return BatchRunner(setup, opts, progress).run(jobs, on_error)


def _pausable(progress: BatchProgress) -> BatchProgress:
    """``progress``, with the test-only pause point "finished" after each image's result (see
    upres.core.pause_points): the one place both the local and the Ray batch pass through."""
    if not os.environ.get(pause_points.ENV):
        return progress
    finished = progress.image_finished

    def image_finished(result: ImageResult) -> None:
        finished(result)
        pause_points.reached("finished")

    progress.image_finished = image_finished  # type: ignore[method-assign]
    return progress


def _run(jobs: list[Job], setup: ChainSetup, opts: RunOptions, quiet: bool,
         err: Console, batch: BatchFn) -> BatchReport:
    def on_error(message: str) -> None:
        err.print(_line("failed:", "red", message), highlight=False, soft_wrap=True)

    if quiet:
        return batch(jobs, setup, opts, _pausable(BatchProgress()), on_error)
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        return batch(jobs, setup, opts, _pausable(_Bar(bar, len(jobs))), on_error)


def _summarise(result: BatchReport, total: int, setup: ChainSetup, quiet: bool, out: Console,
               err: Console) -> None:
    counts = result.counts()
    if result.interrupted:
        # Said even with --quiet: the user must know the batch is incomplete and how to finish it.
        err.print(_line("interrupted:", "yellow",
                        f"stopped after the current image; {counts['done']} done, "
                        f"{counts['skipped']} skipped, {counts['failed']} failed, "
                        f"{result.not_started} of {total} not started. Run the same command "
                        "again to resume."), highlight=False, soft_wrap=True)
    if not quiet:
        out.print(f"{counts['done']} done, {counts['skipped']} skipped (already finished), "
                  f"{counts['failed']} failed; backend {setup.backend} ({setup.backend_reason})"
                  + ("; interrupted" if result.interrupted else ""), highlight=False, soft_wrap=True)
        m = setup.device_memory()
        if m is not None:
            out.print(f"device memory: peak {format_size(m['peak_allocated'])} allocated by upres "
                      f"(plan {format_size(m['planned'])}, target {format_size(m['target'])}); "
                      f"{format_size(m['peak_driver'])} in use as the driver saw it", highlight=False,
                      soft_wrap=True)
