"""Console side of `upres run`: progress bar, one-line errors, summary and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from upres import __version__
from upres.runtime.atomic import atomic_write_text
from upres.runtime.batch import BatchRunner, ImageResult, RunOptions
from upres.runtime.batch import Progress as BatchProgress
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job
from upres.runtime.tiling import Tile


class _Bar(BatchProgress):
    def __init__(self, bar: Progress, images: int) -> None:
        self.bar = bar
        self.images = bar.add_task("images", total=images, rate="")
        self.tiles = bar.add_task("tiles", total=1, rate="")
        self.mp = 0.0
        self.seconds = 0.0

    def image_started(self, job: Job, tiles: int) -> None:
        self.bar.reset(self.tiles, total=tiles, description=f"tiles {job.source.name}")

    def tile_done(self, tile: Tile) -> None:
        self.bar.advance(self.tiles)

    def image_finished(self, result: ImageResult) -> None:
        if result.status == "done" and result.seconds > 0:
            self.mp += result.megapixels_out
            self.seconds += result.seconds
        rate = f"{self.mp / self.seconds:.2f} MP/s" if self.seconds else ""
        self.bar.update(self.images, advance=1, rate=rate)


def run_batch_cli(jobs: list[Job], setup: ChainSetup, opts: RunOptions, report: Path | None,
                  quiet: bool, out: Console, err: Console) -> int:
    def on_error(message: str) -> None:
        err.print(f"[red]failed:[/red] {message}", highlight=False, soft_wrap=True)

    if quiet:
        result = BatchRunner(setup, opts).run(jobs, on_error)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            result = BatchRunner(setup, opts, _Bar(bar, len(jobs))).run(jobs, on_error)
    counts = result.counts()
    if not quiet:
        out.print(f"{counts['done']} done, {counts['skipped']} skipped (already finished), "
                  f"{counts['failed']} failed; backend {setup.backend} ({setup.backend_reason})"
                  + ("; interrupted" if result.interrupted else ""), highlight=False)
    if report:
        atomic_write_text(report, json.dumps({
            "upres_version": __version__, **setup.describe(), "counts": counts,
            "interrupted": result.interrupted, "memory_target": opts.memory,
            "images": [r.__dict__ for r in result.results],
        }, indent=2, default=str))
    return 1 if result.failed or result.interrupted else 0
