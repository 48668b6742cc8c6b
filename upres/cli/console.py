"""Console side of `upres run`: progress bar, one-line errors, summary and the JSON report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from upres.api.batch import Batch, BatchFn, function_scheduler, local_scheduler, start_batch
from upres.api.errors import ReportError
from upres.batch import BatchReport, ImageResult, RunOptions
from upres.batch import Progress as BatchProgress
from upres.cli.options import USAGE_ERROR, real_console  # USAGE_ERROR: another run holds OUTDIR
from upres.core import pause_points
from upres.core.sizes import format_size
from upres.imageio import display_path
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job
from upres.runtime.lock import OutdirLocked
from upres.runtime.tiling import Tile

if TYPE_CHECKING:  # rich is imported when something is shown: a quiet run prints nothing
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.text import Text

# Starts the batch with the console's hooks: (progress, on_error, on_wait) -> the batch, locked.
Start = Callable[[BatchProgress, Callable[[str], None], Callable[[Path, int | None], None]], Batch]


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


def _line(label: str, style: str, message: str) -> Text:
    from rich.text import Text

    # A Text is printed as is: a file name holding "[b]" or ":smile:" is not markup or emoji.
    return Text.assemble((label, style), " ", message)


def print_note(err: Console, message: str) -> None:
    err.print(_line("note:", "yellow", message), highlight=False, soft_wrap=True)


def run_batch_cli(jobs: list[Job], setup: ChainSetup, opts: RunOptions, report: Path | None,
                  quiet: bool, out: Console, err: Console, batch: BatchFn | None = None,
                  json_lines: bool = False) -> int:
    """The batch of ``jobs`` on the console, run by ``batch`` (a Ray cluster, `upres clean`'s
    runner) or on this machine; see :func:`drive`."""
    if not jobs:
        return 0
    scheduler = local_scheduler(setup, opts) if batch is None else \
        function_scheduler(batch, setup, opts)

    def start(progress: BatchProgress, on_error: Callable[[str], None],
              on_wait: Callable[[Path, int | None], None]) -> Batch:
        return start_batch(jobs, setup, opts, scheduler, report=report, progress=progress,
                           on_error=on_error, on_wait=on_wait, signals=True)

    return drive(start, len(jobs), setup, quiet, out, err, json_lines)


def drive(start: Start, total: int, setup: ChainSetup, quiet: bool, out: Console, err: Console,
          json_lines: bool = False) -> int:
    """Run a batch of ``total`` images with a progress bar and one-line errors on stderr, then
    the summary; ``json_lines``: each image's record and a final summary as JSON lines on
    stdout (the human summary goes to stderr then). Exit code 0, 1 (an image failed, the run
    was interrupted or its report could not be written) or 2 (another run holds OUTDIR)."""
    def on_error(message: str) -> None:
        err.print(_line("failed:", "red", message), highlight=False, soft_wrap=True)

    def waiting(folder: Path, holder: int | None) -> None:
        who = f"pid {holder}" if holder else "another process"
        err.print(_line("waiting:", "yellow", f"{display_path(folder)} is in use by {who}"),
                  highlight=False, soft_wrap=True)

    def hooks(progress: BatchProgress) -> BatchProgress:
        return _pausable(_JsonLines(progress, out) if json_lines else progress)

    report_error = ""
    try:
        if quiet:
            result = _consume(start(hooks(BatchProgress()), on_error, waiting))
        else:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            columns = (TextColumn("{task.description}", markup=False), BarColumn(),
                       MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
            with Progress(*columns, console=real_console(err), transient=True) as bar:
                result = _consume(start(hooks(_Bar(bar, total)), on_error, waiting))
    except OutdirLocked as exc:
        err.print(_line("error:", "red", str(exc)), highlight=False, soft_wrap=True)
        return USAGE_ERROR
    except _Unreported as done:
        result, report_error = done.summary, done.message
    except OSError as exc:  # OUTDIR could not be made or locked
        err.print(_line("error:", "red", exc.strerror or str(exc)), highlight=False, soft_wrap=True)
        return USAGE_ERROR
    _summarise(result, total, setup, quiet, err if json_lines else out, err)
    if json_lines:
        _write_line(out, {"summary": summary_record(result, setup)})
    if report_error:
        err.print(_line("error:", "red", report_error), highlight=False, soft_wrap=True)
    return 1 if result.failed or result.interrupted or report_error else 0


class _Unreported(Exception):
    """The batch ran, but its report could not be written."""

    def __init__(self, summary: BatchReport, message: str) -> None:
        super().__init__(message)
        self.summary, self.message = summary, message


def _consume(batch: Batch) -> BatchReport:
    try:
        for _ in batch:
            pass
    except ReportError as exc:
        raise _Unreported(batch.summary, exc.strerror or str(exc)) from None
    return batch.summary


def image_record(result: ImageResult) -> dict[str, object]:
    """One image of `upres run --json` (and of the report's "images")."""
    return dict(result.__dict__)


def summary_record(result: BatchReport, setup: ChainSetup) -> dict[str, object]:
    return {"counts": result.counts(), "interrupted": result.interrupted,
            "not_started": result.not_started, "backend": setup.backend,
            "backend_reason": setup.backend_reason}


def _write_line(out: Console, record: dict[str, object]) -> None:
    # Straight to the stream, one line each: rich would wrap and highlight it.
    out.file.write(json.dumps(record, default=str) + "\n")
    out.file.flush()


class _JsonLines(BatchProgress):
    """``inner``'s hooks, and each finished image's record as a JSON line on stdout."""

    def __init__(self, inner: BatchProgress, out: Console) -> None:
        self.inner, self.out = inner, out

    def image_started(self, job: Job, tiles: int) -> None:
        self.inner.image_started(job, tiles)

    def tile_done(self, tile: Tile) -> None:
        self.inner.tile_done(tile)

    def regions_started(self, job: Job, regions: int) -> None:
        self.inner.regions_started(job, regions)

    def region_done(self) -> None:
        self.inner.region_done()

    def image_finished(self, result: ImageResult) -> None:
        self.inner.image_finished(result)
        _write_line(self.out, image_record(result))


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
