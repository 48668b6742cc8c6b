"""`upres clean`: the command-line entry, typer-ready (`app.command("clean")(clean_command)`).

Usage errors exit with 2 before anything is written; a failed image (unreadable, no mask, a mask
of the wrong size) is reported on one line, the batch goes on and the exit code is 1, as in
`upres run`, whose option handling, lock, progress and report this command shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from upres.cli.options import InputsArg, MemoryOpt, OutdirOpt, QuietOpt, ReportOpt, ResumeOpt
from upres.runtime.inputs import Job

REVIEW = 3  # exit code: done, but --mask auto flagged images for review (sidecar: mask.auto.review)


def _grow_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise ValueError(f"--grow must be auto or a number of pixels, got {value!r}")
    return int(value)


def _lossless_same(jobs: list[Job]) -> list[Job]:
    """With --format same a JPEG input is written as PNG: re-encoding it as JPEG would change
    every pixel, and the promise of a clean is that pixels outside the mask do not change."""
    out = [replace(job, output=job.output.with_suffix(".png")) if job.output.suffix == ".jpg" else job
           for job in jobs]
    seen: dict[Path, Job] = {}
    for job in out:
        if job.output in seen:
            raise ValueError(f"{seen[job.output].source} and {job.source} would both write "
                             f"{job.output}; run them into different output folders")
        seen[job.output] = job
    return out


def clean_command(
    inputs: InputsArg,
    outdir: OutdirOpt,
    mask: Annotated[str, typer.Option("--mask", help="mask image (white = remove; at most 98% of "
                                      "the image, once grown) for every input, a folder of masks "
                                      "matched by name, or auto (detect)")],
    detect: Annotated[str, typer.Option("--detect", help="with --mask auto: text, thin (scratches "
                                        "and dust; off by default: see docs/CLEAN_DETECT.md) or "
                                        "text,thin")] = "text",
    max_auto_area: Annotated[float, typer.Option("--max-auto-area", help="with --mask auto: the most "
                                                 "of an image (0..1) filled; more is flagged for "
                                                 "review, exit code 3")] = 0.08,
    grow: Annotated[str, typer.Option("--grow", help="pixels to grow the mask by; auto: 2 for "
                                      "user masks, from the stroke width for detected ones")] = "auto",
    feather: Annotated[int, typer.Option("--feather", help="pixels of soft edge inside the mask")] = 2,
    fill: Annotated[str, typer.Option("--fill", help="fsr | telea | ns | learned (Telea corrected by "
                                      "a fill network)")] = "fsr",
    fill_model: Annotated[Path | None, typer.Option("--fill-model", help="fill network ONNX for "
                                                    "--fill learned (from `upres train fill`)")] = None,
    texture: Annotated[float, typer.Option("--texture", help="refine texture 0..1 inside the mask "
                                           "(and of the upscale, with --then-upscale)")] = 0.5,
    grain: Annotated[float, typer.Option("--grain", help="grain matched to the mask's surroundings "
                                         "0..1 (off: it costs PSNR; see docs/CLEAN.md)")] = 0.0,
    blend: Annotated[str, typer.Option("--blend", help="alpha | poisson")] = "alpha",
    save_mask: Annotated[bool, typer.Option("--save-mask", help="write the final mask next to "
                                            "each output as NAME.mask.png")] = False,
    then_upscale: Annotated[bool, typer.Option("--then-upscale", help="upscale the cleaned image "
                                               "as `upres run` would")] = False,
    scale: Annotated[int | None, typer.Option("--scale", help="with --then-upscale: 2 or 4")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="with --then-upscale: deterministic | "
                                             "faithful | hybrid")] = None,
    model: Annotated[str | None, typer.Option("--model", help="with --then-upscale: built-in "
                                              "name or PATH.onnx")] = None,
    denoise: Annotated[str, typer.Option("--denoise", help="with --then-upscale: auto | 0..1 (as "
                                         "`upres run`)")] = "auto",
    backend: Annotated[str, typer.Option("--backend", help="auto | ort-cpu | ort-cuda | ort-trt")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32 | fp16 | int8 (upscale)")] = "fp32",
    memory: MemoryOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="same (JPEG in: PNG out) | png | tiff | jpg")] = "same",
    threads: Annotated[int, typer.Option("--threads", help="inference threads, and regions cleaned at "
                                         "once (0 = all cores)")] = 0,
    resume: ResumeOpt = True,
    report: ReportOpt = None,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels", help="refuse larger inputs: a "
                                                   "positive number (default 178956970)")] = None,
    quiet: QuietOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for another run using OUTDIR")] = False,
) -> None:
    """Remove text, stamps and blemishes inside a mask; pixels outside it stay bit-identical.
    An image whose grown mask covers more than 98% of it fails (nothing left to fill from).
    Exit code 1 if any image failed, 2 on usage errors, 3 if --mask auto flagged an image for
    review (it hit --max-auto-area)."""
    # upres.cli imports this module at start-up, so its helpers are imported when the command runs.
    from upres.batch import BatchReport, Progress, RunOptions
    from upres.cleaning.mask_source import MaskOptionError, MaskSource, detect_option
    from upres.cleaning.masks import saved_mask_path
    from upres.cleaning.pipeline import Cleaner, CleanSettings
    from upres.cleaning.runner import CleanRunner, MaskOptions, saved_mask_clashes, unscaled_setup
    from upres.cli.console import print_note, run_batch_cli
    from upres.cli.options import err, fail, max_pixels_option, memory_option, out, setup_chain
    from upres.core.errors import BackendUnavailable
    from upres.imageio import display_path
    from upres.runtime.backends import select
    from upres.runtime.chain_factory import ChainSetup
    from upres.runtime.inputs import InputError, collect_jobs, mark_stream_clashes, report_conflict

    if fill_model is not None and fill != "learned":
        raise fail("--fill-model applies with --fill learned")
    if not then_upscale and (scale is not None or mode is not None or model is not None):
        raise fail("--scale, --mode and --model apply with --then-upscale")
    try:
        settings = CleanSettings(feather=feather, fill=fill, texture=texture, grain=grain, blend=blend)
        masks = MaskOptions(MaskSource.parse(mask, detect_option(detect), max_auto_area),
                            _grow_option(grow), save_mask)
        jobs = collect_jobs(inputs, outdir, fmt, note=None if quiet else lambda text: print_note(err, text))
        if fmt == "same":
            jobs = mark_stream_clashes(_lossless_same(jobs))
        choice = select.choose(backend)
    except (MaskOptionError, InputError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not jobs:
        raise fail("no input images found")
    masks_written = [saved_mask_path(job.output) for job in jobs] if save_mask else []
    if report is not None and (conflict := report_conflict(report, jobs, masks_written)):
        raise fail(conflict)
    if report is not None and masks.source.kind == "file" and masks.source.path is not None \
            and report.resolve() == masks.source.path.resolve():
        raise fail(f"--report {display_path(report)} is the --mask file; give another file name")
    limit = max_pixels_option(max_pixels)
    if save_mask and (clash := saved_mask_clashes(jobs)):
        job, output = clash[0]
        raise fail(f"{display_path(job.source)} would be written to {display_path(output)}, where "
                   "--save-mask puts the mask of another image; run it into another output folder")
    if then_upscale:
        setup = setup_chain(mode, scale or 4, model, texture, backend, precision, threads,
                            denoise=denoise)
    else:
        setup = unscaled_setup(choice.name, choice.reason)
    texture_stage, refine_sha = None, None
    if settings.texture > 0:
        from upres.cleaning.texture import build_texture

        try:
            texture_stage, refine = build_texture(choice.name, threads)
        except (FileNotFoundError, BackendUnavailable) as exc:
            raise fail(str(exc)) from None
        refine_sha = refine.sha256
    fill_stage, fill_sha = None, None
    if settings.fill == "learned":
        from upres.cleaning.learned_fill import available as fill_network_shipped
        from upres.cleaning.learned_fill import build_learned_fill

        if fill_model is None and not fill_network_shipped():
            raise fail("--fill learned: no fill network ships with this release (none has yet "
                       "beaten fsr); train one with `upres train fill`, export it and pass --fill-model")
        try:
            fill_stage, fill_ref = build_learned_fill(choice.name, threads, fill_model)
        except (FileNotFoundError, BackendUnavailable, ValueError) as exc:
            raise fail(f"--fill learned: {exc}") from None
        fill_sha = fill_ref.sha256
    opts = RunOptions(memory=memory_option(memory), fmt=fmt, resume=resume,
                      max_pixels=limit, threads=threads,
                      lock_wait=float("inf") if wait else 0.0)
    cleaner = Cleaner(settings, texture_stage, fill_stage, workers=threads)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--output {outdir}: {exc.strerror or exc}") from None

    review: list[tuple[Path, list[str]]] = []

    def batch(jobs: list[Job], setup: ChainSetup, opts: RunOptions, progress: Progress,
              on_error: Callable[[str], None]) -> BatchReport:
        hashes = {"refine_sha256": refine_sha, "fill_sha256": fill_sha}
        runner = CleanRunner(setup, cleaner, masks, opts, hashes, progress)
        try:
            return runner.run(jobs, on_error)
        finally:
            review.extend(runner.review)

    code = run_batch_cli(jobs, setup, opts, report, quiet, out, err, batch)
    for source, reasons in review:
        err.print(f"review: {display_path(source)}: {'; '.join(reasons)}", highlight=False, soft_wrap=True)
    # 3: every image was written, but the automatic mask left some for a person to look at.
    raise typer.Exit(REVIEW if code == 0 and review else code)
