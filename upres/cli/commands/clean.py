"""`upres clean`: the command-line entry, typer-ready (`app.command("clean")(clean_command)`).

Usage errors exit with 2 before anything is written; a failed image (unreadable, no mask, a mask
of the wrong size) is reported on one line, the batch goes on and the exit code is 1, as in
`upres run`, whose option handling, lock, progress and report this command shares.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from upres.cli.options import InputsArg, MemoryOpt, OutdirOpt, QuietOpt, ReportOpt, ResumeOpt

if TYPE_CHECKING:
    from upres.api.batch import Batch

REVIEW = 3  # exit code: done, but --mask auto flagged images for review (sidecar: mask.auto.review)


def _grow_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise ValueError(f"--grow must be auto or a number of pixels, got {value!r}")
    return int(value)


def clean_command(
    inputs: InputsArg,
    outdir: OutdirOpt,
    mask: Annotated[str, typer.Option("--mask", help="mask image (white = remove; at most 98% of "
                                      "the image, once grown) for every input, a folder of masks "
                                      "matched by name, or auto (detect)")],
    detect: Annotated[str, typer.Option("--detect", help="with --mask auto: text, thin (scratches, "
                                        "hair; off by default: see docs/CLEAN_DETECT.md) or "
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
    from upres.api.cleaner import Cleaner, lossless_same, saved_mask_clash
    from upres.api.errors import SettingsError
    from upres.batch import Progress
    from upres.cleaning.mask_source import MaskOptionError, MaskSource, detect_option
    from upres.cleaning.masks import saved_mask_path
    from upres.cli.console import drive, print_note
    from upres.cli.options import err, fail, open_upscaler, out, upscaler_settings
    from upres.core.errors import BackendUnavailable
    from upres.imageio import display_path
    from upres.runtime.inputs import InputError, collect_jobs, report_conflict

    if fill_model is not None and fill != "learned":
        raise fail("--fill-model applies with --fill learned")
    if not then_upscale and (scale is not None or mode is not None or model is not None):
        raise fail("--scale, --mode and --model apply with --then-upscale")
    try:
        grow_px = _grow_option(grow)
        detectors = detect_option(detect)
        source = MaskSource.parse(mask, detectors, max_auto_area)
        jobs = collect_jobs(inputs, outdir, fmt, note=None if quiet else lambda text: print_note(err, text))
        if fmt == "same":
            jobs = lossless_same(jobs)
    except (MaskOptionError, InputError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not jobs:
        raise fail("no input images found")
    masks_written = [saved_mask_path(job.output) for job in jobs] if save_mask else []
    if report is not None and (conflict := report_conflict(report, jobs, masks_written)):
        raise fail(conflict)
    if report is not None and source.kind == "file" and source.path is not None \
            and report.resolve() == source.path.resolve():
        raise fail(f"--report {display_path(report)} is the --mask file; give another file name")
    if save_mask and (clash := saved_mask_clash(jobs)):
        raise fail(clash)
    lock_wait = float("inf") if wait else 0.0
    upscaler = None
    if then_upscale:
        # The upscale's device memory is not bound by --memory here, as before: it bounds the batch.
        upscaler = open_upscaler(upscaler_settings(scale or 4, mode, texture, model, backend,
                                                   precision, threads=threads, denoise=denoise))
    try:
        cleaner = Cleaner(feather=feather, fill=fill, fill_model=fill_model, texture=texture,
                          grain=grain, blend=blend, grow=grow_px, backend=backend, threads=threads,
                          memory=memory, upscale=upscaler, detect=detectors,
                          max_auto_area=max_auto_area)
        cleaner.run_options(fmt, resume, max_pixels, lock_wait)  # checked before anything is written
    except (SettingsError, FileNotFoundError, BackendUnavailable) as exc:
        raise fail(str(exc)) from None
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--output {outdir}: {exc.strerror or exc}") from None

    def start(progress: Progress, on_error: Callable[[str], None],
              on_wait: Callable[[Path, int | None], None]) -> Batch:
        try:
            return cleaner.map_jobs(jobs, mask, format=fmt, save_mask=save_mask, resume=resume,
                                    max_pixels=max_pixels, wait=lock_wait, report=report,
                                    progress=progress, on_error=on_error, on_wait=on_wait,
                                    signals=True)
        except (SettingsError, InputError) as exc:
            raise fail(str(exc)) from None

    with cleaner:
        code = drive(start, len(jobs), cleaner.setup, quiet, out, err)
    if upscaler is not None:
        upscaler.close()
    for source_path, reasons in cleaner.review:
        err.print(f"review: {display_path(source_path)}: {'; '.join(reasons)}", highlight=False,
                  soft_wrap=True)
    # 3: every image was written, but the automatic mask left some for a person to look at.
    raise typer.Exit(REVIEW if code == 0 and cleaner.review else code)
