"""`upres calibrate`'s terminal output: the progress bars of its long steps and the report table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from upres.calibration.report import CalibrationReport


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (a `calibration.reader.ProgressFactory`); yields the function
    that advances it by one."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def calibration_table(report: CalibrationReport) -> Table:
    """The report as `upres calibrate` prints it."""
    a = report.accuracy
    label = report.precision.upper()
    t = Table(title=f"{label} calibration: {Path(report.output).name}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("model", f"{report.model} (sha256 {report.model_sha256[:12]})")
    t.add_row("calibration set", f"{report.calibration_images} images, sha256 "
              f"{report.calibration_sha256[:12]}, {report.samples} crops, seed {report.seed}")
    t.add_row("method", report.method)
    t.add_row("held-out set", f"{report.heldout_images} images, {a.crops} crops, "
                              f"sha256 {report.heldout_sha256[:12]}")
    kept = ", ".join(report.excluded_nodes) or "none"
    t.add_row("kept in float", f"{kept} ({report.exclude_mode})")
    t.add_row("PSNR FP32 vs HR", f"{a.psnr_fp32_hr:.3f} dB")
    t.add_row(f"PSNR {label} vs HR", f"{a.psnr_hr:.3f} dB (loss {a.loss_db:+.3f} dB"
              + (f", budget {report.max_loss_db} dB" if report.max_loss_db is not None else "") + ")")
    t.add_row(f"PSNR {label} vs FP32", f"{a.psnr_vs_fp32:.2f} dB (max abs {a.max_abs:.2e}, "
                                       f"mean abs {a.mean_abs:.2e})")
    if report.speed is not None:
        s = report.speed
        shape = "x".join(str(v) for v in s.input_shape)
        for name, sp in s.models.items():
            t.add_row(f"speed {name}", f"{sp.median_ms:.1f} ms median ({sp.min_ms:.1f}-{sp.max_ms:.1f}, "
                                       f"{sp.runs} runs), {sp.mp_per_s:.2f} MP/s")
        if report.precision in s.models:
            note = " [yellow](CPU shared with other jobs: noisy)[/yellow]" if s.contended else ""
            t.add_row("speed-up", f"x{s.speedup(report.precision):.2f} on {shape}, {s.threads} threads, "
                                  f"load {s.load_before:.1f}{note}")
    t.add_row("target", "[green]met[/green]" if report.target_met else "[red]missed[/red]")
    for note in report.notes:
        t.add_row("note", note)
    return t
