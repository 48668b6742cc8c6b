"""`upres run` and `upres plan`: upscale a batch, or show the plan it would follow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from upres.cli.batch_files import BatchFiles
from upres.cli.options import (
    BackendOpt,
    BlendOpt,
    CompressionOpt,
    DenoiseOpt,
    HaloOpt,
    InputsArg,
    MemoryOpt,
    ModelOpt,
    ModeOpt,
    OutdirOpt,
    PrecisionOpt,
    QuietOpt,
    ReportOpt,
    ResumeOpt,
    ScaleOpt,
    TextureOpt,
    ThreadsOpt,
    TileOpt,
    err,
    fail,
    open_upscaler,
    out,
    upscaler_settings,
)

if TYPE_CHECKING:  # the API is imported when the command runs
    from upres.api import Batch, Settings
    from upres.batch import Progress


def run(
    inputs: InputsArg,
    outdir: OutdirOpt,
    scale: ScaleOpt = 4,
    mode: ModeOpt = None,
    texture: TextureOpt = 0.5,
    model: ModelOpt = None,
    denoise: DenoiseOpt = "auto",
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "fp32",
    memory: MemoryOpt = None,
    tile: TileOpt = "auto",
    halo: HaloOpt = "auto",
    blend: BlendOpt = "auto",
    fmt: Annotated[str, typer.Option("--format", help="same | png | tiff | jpg")] = "same",
    compression: CompressionOpt = "default",
    threads: ThreadsOpt = 0,
    resume: ResumeOpt = True,
    report: ReportOpt = None,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels",
                                                   help="refuse inputs with more pixels, read from the "
                                                   "header before decoding: a positive number "
                                                   "(default 178956970)")] = None,
    quiet: QuietOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="if another upres run is using OUTDIR, "
                                       "wait for it instead of exiting with code 2")] = False,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS",
        help="run the batch as Ray workers: 'local' starts Ray on this machine; 'auto' or "
        "HOST:PORT joins a running cluster (needs the ray extra)")] = None,
    json_lines: Annotated[bool, typer.Option(
        "--json", help="print one JSON object per image on stdout as it finishes, then a summary "
        "(progress stays on stderr)")] = False,
) -> None:
    """Upscale images (the main job). Exit code 1 if any image failed or a signal stopped the
    batch after its current image, 2 on usage errors, 130 when a Ctrl-C stopped it at once."""
    request = RunRequest(
        BatchFiles(tuple(inputs), outdir, fmt, resume, report, max_pixels,
                   float("inf") if wait else 0.0, quiet),
        upscaler_settings(scale, mode, texture, model, backend, precision, memory, tile, halo,
                          blend, threads, denoise),
        compression, ray, json_lines)
    raise typer.Exit(run_batch(request))


@dataclass(frozen=True)
class RunRequest:
    """`upres run`'s options, parsed: the files, the Upscaler's settings, how the batch runs."""

    files: BatchFiles
    settings: Settings
    compression: str = "default"
    ray: str | None = None  # "local", "auto" or HOST:PORT: Ray workers instead of this process
    json_lines: bool = False  # --json: one JSON object per image on stdout


def run_batch(request: RunRequest) -> int:
    """Upscale the request's images; the exit code (usage errors exit 2 through `fail`)."""
    from upres.api.errors import SettingsError
    from upres.cli.console import drive

    files = request.files
    jobs = files.jobs()
    files.check_report(jobs)
    file_options = (files.fmt, request.compression, files.resume, files.max_pixels, files.lock_wait)
    try:  # the file options are checked before any model loads
        request.settings.run_options(*file_options)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    with open_upscaler(request.settings) as upscaler:
        files.make_outdir()
        scheduler = None
        if request.ray is not None:
            from upres.fleet.ray_batch import RayBatchError, connect

            try:
                scheduler = connect(request.ray, upscaler.setup, upscaler.run_options(*file_options))
            except RayBatchError as exc:
                raise fail(str(exc)) from None

        def start(progress: Progress, on_error: Callable[[str], None],
                  on_wait: Callable[[Path, int | None], None]) -> Batch:
            return upscaler.map_jobs(jobs, format=files.fmt, compression=request.compression,
                                     resume=files.resume, max_pixels=files.max_pixels,
                                     wait=files.lock_wait, report=files.report, progress=progress,
                                     on_error=on_error, on_wait=on_wait, signals=True,
                                     scheduler=scheduler)

        return drive(start, len(jobs), upscaler.setup, files.quiet, out, err, request.json_lines)


def plan(
    image: Annotated[Path, typer.Argument(help="image to plan for")],
    scale: ScaleOpt = 4,
    mode: ModeOpt = None,
    texture: TextureOpt = 0.5,
    model: ModelOpt = None,
    denoise: DenoiseOpt = "auto",
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "fp32",
    memory: MemoryOpt = None,
    tile: TileOpt = "auto",
    halo: HaloOpt = "auto",
    blend: BlendOpt = "auto",
    threads: ThreadsOpt = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Print the tile plan and its memory estimate for IMAGE; runs nothing."""
    from upres.imageio import ImageError
    from upres.runtime.planner import PlanError

    settings = upscaler_settings(scale, mode, texture, model, backend, precision, memory, tile, halo,
                                 blend, threads, denoise)
    with open_upscaler(settings) as upscaler:
        try:
            planned = upscaler.plan(image)
        except (ImageError, PlanError) as exc:
            raise fail(str(exc), 1) from None
    if json_out:
        out.print_json(planned.to_json())
    else:
        out.print(planned.text(), highlight=False)
