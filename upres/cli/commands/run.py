"""`upres run` and `upres plan`: upscale a batch, or show the plan it would follow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

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
    blend_option,
    compression_option,
    err,
    fail,
    halo_option,
    max_pixels_option,
    memory_option,
    out,
    setup_chain,
    tile_option,
)


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
) -> None:
    """Upscale images (the main job). Exit code 1 if any image failed or a signal stopped the
    batch after its current image, 2 on usage errors, 130 when a Ctrl-C stopped it at once."""
    from upres.batch import RunOptions
    from upres.cli.console import print_note, run_batch_cli
    from upres.runtime.inputs import InputError, collect_jobs, report_conflict

    try:
        jobs = collect_jobs(inputs, outdir, fmt, note=None if quiet else lambda text: print_note(err, text))
    except InputError as exc:
        raise fail(str(exc)) from None
    if not jobs:
        raise fail("no input images found")
    if report is not None and (conflict := report_conflict(report, jobs)):
        raise fail(conflict)
    limit = max_pixels_option(max_pixels)
    blend = blend_option(blend)
    deflate = compression_option(compression)
    setup = setup_chain(mode, scale, model, texture, backend, precision, threads, memory, denoise)
    opts = RunOptions(memory=memory_option(memory), tile=tile_option(tile), halo=halo_option(halo),
                      blend=blend, fmt=fmt, resume=resume, compression=deflate,
                      max_pixels=limit, threads=threads,
                      lock_wait=float("inf") if wait else 0.0)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--output {outdir}: {exc.strerror or exc}") from None
    batch = None
    if ray is not None:
        from upres.fleet.ray_batch import RayBatchError, connect

        try:
            batch = connect(ray, setup, opts)
        except RayBatchError as exc:
            raise fail(str(exc)) from None
    code = run_batch_cli(jobs, setup, opts, report, quiet, out, err, batch)
    raise typer.Exit(code)


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
    from upres.batch import BatchRunner, RunOptions
    from upres.imageio import ImageError
    from upres.runtime.planner import PlanError, describe

    blend = blend_option(blend)
    setup = setup_chain(mode, scale, model, texture, backend, precision, threads, memory, denoise)
    runner = BatchRunner(setup, RunOptions(memory=memory_option(memory), tile=tile_option(tile),
                                           halo=halo_option(halo), blend=blend, threads=threads))
    try:
        meta, result = runner.plan_file(image)
        choice = runner.denoise_file(image) if setup.denoise.auto else runner.denoise_for(None)
    except (ImageError, PlanError) as exc:
        raise fail(str(exc), 1) from None
    if json_out:
        out.print_json(json.dumps({**setup.describe(), "plan": result.to_dict(),
                                   "denoise": choice.to_record()}))
    else:
        out.print(f"{image}: {meta.width}x{meta.height} -> {meta.width * setup.scale}x"
                  f"{meta.height * setup.scale}, {setup.mode}, backend {setup.backend} "
                  f"({setup.backend_reason})", highlight=False)
        out.print(f"denoise {choice.describe()}", highlight=False)
        out.print(describe(result), highlight=False)
