"""A batch as the API hands it out: an iterator of per-image results that holds OUTDIR's lock
while it runs and writes the JSON report (if asked) before letting go of it.

`Upscaler.map` and `upres run` both run through :func:`start_batch`; so do `upres clean` and
`upres run --ray`, whose schedulers are a :data:`BatchFn` (results come when they return).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from contextlib import nullcontext
from pathlib import Path
from types import TracebackType

from upres.api.errors import ReportError
from upres.api.guard import Guard
from upres.batch import BatchReport, BatchRunner, ImageResult, Progress, RunOptions
from upres.core.atomic import atomic_write_text
from upres.core.version import __version__
from upres.imageio import display_path
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job
from upres.runtime.lock import OutdirLock

# Runs the jobs and returns the report: (jobs, setup, opts, progress, on_error) -> report. The
# Ray scheduler (upres.fleet.ray_batch) and `upres clean`'s runner are of this kind.
BatchFn = Callable[[list[Job], ChainSetup, RunOptions, Progress, Callable[[str], None]], BatchReport]
# Yields each image's result as it finishes, filling in the report: the local pipelined batch.
# (jobs, progress, on_error, report, signals) -> results.
Results = Generator[ImageResult, None, None]
Scheduler = Callable[[list[Job], Progress, Callable[[str], None], BatchReport, bool], Results]


def local_scheduler(setup: ChainSetup, opts: RunOptions) -> Scheduler:
    """This machine's pipelined batch (`upres.batch.BatchRunner`), planned as it starts."""
    def run(jobs: list[Job], progress: Progress, on_error: Callable[[str], None],
            report: BatchReport, signals: bool) -> Results:
        return BatchRunner(setup, opts, progress).iter_run(jobs, on_error, report, signals)

    return run


def function_scheduler(batch: BatchFn, setup: ChainSetup, opts: RunOptions) -> Scheduler:
    """A scheduler that returns its report when done: its results are handed on then (progress
    hooks and ``on_error`` are called as the images finish). Such schedulers handle signals
    themselves."""
    def run(jobs: list[Job], progress: Progress, on_error: Callable[[str], None],
            report: BatchReport, signals: bool) -> Results:
        done = batch(jobs, setup, opts, progress, on_error)
        report.results, report.interrupted = done.results, done.interrupted
        report.not_started = done.not_started
        yield from done.results

    return run


def lock_folder(jobs: list[Job]) -> Path:
    """OUTDIR, which collect_jobs records in every job; for hand-made jobs, the common folder."""
    if jobs[0].outdir is not None:
        return jobs[0].outdir
    return Path(os.path.commonpath([job.output.parent for job in jobs]))


def write_report(path: Path, report: BatchReport, setup: ChainSetup, opts: RunOptions) -> None:
    atomic_write_text(path, json.dumps({
        "upres_version": __version__, **setup.describe(), "counts": report.counts(),
        "interrupted": report.interrupted, "not_started": report.not_started,
        "memory_target": opts.memory, "images": [r.__dict__ for r in report.results],
    }, indent=2, default=str))


class Batch:
    """The images of one batch, each result as it finishes (in input order for the local batch):
    iterate it once. Nothing runs until it is iterated; OUTDIR's lock is held from the start
    until the last result (or :meth:`close`), and the report is written just before it is let
    go. Breaking out of the loop early: call :meth:`close` (or use ``with``), which lets the
    images in flight finish and records the rest as not started."""

    def __init__(self, jobs: list[Job], results: Results, summary: BatchReport,
                 lock: OutdirLock | None, finish: Callable[[BatchReport], None] | None,
                 guard: Guard | None = None) -> None:
        self.jobs = jobs
        self.summary = summary  # filled in as it runs: results, interrupted, not_started
        self._results = results
        self._lock = lock
        self._finish = finish
        self._guard = guard
        self._open = True

    def __iter__(self) -> Batch:
        return self

    def __next__(self) -> ImageResult:
        if not self._open:
            raise StopIteration
        try:
            # The models run inside next(): one caller at a time, and not once closed.
            with self._guard.using() if self._guard is not None else nullcontext():
                return next(self._results)
        except StopIteration:
            self._end(finished=True)
            raise
        except BaseException:
            self._end(finished=False)
            raise

    def close(self) -> None:
        """Stop: the images in flight finish, the others are counted as not started."""
        if not self._open:
            return
        done = len(self.summary.results)
        with self._guard.held() if self._guard is not None else nullcontext():
            self._results.close()
        if done < len(self.jobs) and not self.summary.interrupted:
            self.summary.interrupted = True
            self.summary.not_started = len(self.jobs) - len(self.summary.results)
        self._end(finished=True)

    def _end(self, finished: bool) -> None:
        """Write the report (only for a batch that ran to its end or was stopped), then unlock."""
        self._open = False
        try:
            if finished and self._finish is not None:
                self._finish(self.summary)
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # A batch dropped half-way must not keep OUTDIR locked for the life of the process.
        if getattr(self, "_open", False) and self._lock is not None:
            self._lock.release()


def start_batch(jobs: list[Job], setup: ChainSetup, opts: RunOptions, scheduler: Scheduler, *,
                report: Path | None = None, progress: Progress | None = None,
                on_error: Callable[[str], None] | None = None,
                on_wait: Callable[[Path, int | None], None] | None = None, signals: bool = False,
                guard: Guard | None = None) -> Batch:
    """Lock OUTDIR (raises OutdirLocked after ``opts.lock_wait`` seconds, or OSError when the
    folder cannot be made or locked) and hand back the batch, not yet started. ``on_wait(folder,
    holder_pid)`` is called once if another run holds the lock and waiting starts."""
    summary = BatchReport()
    if not jobs:
        return Batch(jobs, _no_results(), summary, None, None, guard)
    folder = lock_folder(jobs)
    lock = OutdirLock(folder, opts.lock_wait,
                      on_wait=None if on_wait is None else lambda holder: on_wait(folder, holder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise OSError(exc.errno, f"cannot lock {display_path(folder)}: {exc.strerror or exc}") from None

    def finish(done: BatchReport) -> None:
        if report is None:
            return
        # Still under the lock: no other run's sweep of OUTDIR can meet its temporary file.
        try:
            write_report(report, done, setup, opts)
        except OSError as exc:
            raise ReportError(exc.errno, f"cannot write the report {display_path(report)}: "
                                         f"{exc.strerror or exc}") from None

    results = scheduler(jobs, progress or Progress(), on_error or _ignore, summary, signals)
    return Batch(jobs, results, summary, lock, finish, guard)


def _ignore(message: str) -> None:
    pass


def _no_results() -> Results:
    yield from ()
