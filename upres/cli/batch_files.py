"""The options `upres run` and `upres clean` share about files, as one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from upres.cli.options import err, fail
from upres.core.choices import format_name

if TYPE_CHECKING:
    from upres.runtime.inputs import Job


@dataclass(frozen=True)
class BatchFiles:
    """The options `upres run` and `upres clean` share: what is read, where and how the outputs
    are written, how the batch reports. Checked where a command meets them, in one place."""

    inputs: tuple[str, ...]
    outdir: Path
    fmt: str = "same"
    resume: bool = True
    report: Path | None = None
    max_pixels: int | None = None
    lock_wait: float = 0.0  # seconds to wait for another run's OUTDIR lock (--wait: no limit)
    quiet: bool = False

    def __post_init__(self) -> None:
        # --format tif and jpeg name the formats as their files do: the same as tiff and jpg.
        object.__setattr__(self, "fmt", format_name(self.fmt))

    def jobs(self) -> list[Job]:
        """INPUTs expanded (a usage error, or none found, exits 2)."""
        from upres.cli.console import print_note  # the progress stack, loaded when a batch runs
        from upres.runtime.inputs import InputError, collect_jobs

        try:
            jobs = collect_jobs(list(self.inputs), self.outdir, self.fmt,
                                note=None if self.quiet else lambda text: print_note(err, text))
        except InputError as exc:
            raise fail(str(exc)) from None
        if not jobs:
            raise fail("no input images found")
        return jobs

    def check_report(self, jobs: list[Job], also: list[Path] | None = None) -> None:
        """--report must not name an input or a file the batch writes (exits 2 if it does)."""
        from upres.runtime.inputs import report_conflict

        if self.report is None:
            return
        if conflict := report_conflict(self.report, jobs, also or []):
            raise fail(conflict)
        # Found before the batch runs, not after it: the report is written once every image is done.
        folder = self.report.parent if str(self.report.parent) else Path(".")
        if self.report.is_dir():
            raise fail(f"--report {self.report}: is a folder")
        made = folder.resolve() == self.outdir.resolve()  # OUTDIR: made before the batch runs
        if not made and not folder.is_dir():
            raise fail(f"--report {self.report}: no folder {folder}")
        if not made and not os.access(folder, os.W_OK | os.X_OK):
            raise fail(f"--report {self.report}: cannot write in {folder}")

    def make_outdir(self) -> None:
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"--output {self.outdir}: {exc.strerror or exc}") from None
