"""`upres clean`: the command-line entry, typer-ready (`app.command("clean")(clean_command)`).

Usage errors exit with 2 before anything is written; a failed image (unreadable, no mask, a mask
of the wrong size) is reported on one line, the batch goes on and the exit code is 1, as in
`upres run`, whose option handling, lock, progress and report this command shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from upres.cli.batch_files import BatchFiles
from upres.cli.options import (
    InputsArg,
    MemoryOpt,
    OutdirOpt,
    QuietOpt,
    ReportOpt,
    ResumeOpt,
)
from upres.core.choices import CleanBlend

if TYPE_CHECKING:
    from upres.api.batch import Batch
    from upres.api.settings import Settings
    from upres.cleaning.mask_source import MaskSource

REVIEW = 3  # exit code: done, but --mask auto flagged images for review (sidecar: mask.auto.review)
# px: --grow and --feather beyond this are refused; a mask grown or softened further covers what
# it was meant to spare, and the disc it is grown with would take minutes and gigabytes
MAX_EDGE_PX = 256


def _grow_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise ValueError(f"--grow must be auto or a number of pixels, got {value!r}")
    if int(value) > MAX_EDGE_PX:
        raise ValueError(f"--grow {value}: at most {MAX_EDGE_PX} px")
    return int(value)


def clean_command(
    inputs: InputsArg,
    outdir: OutdirOpt,
    mask: Annotated[str, typer.Option("--mask", help="mask image (white = remove; at most 98% of "
                                      "the image, once grown) for every input, a folder of masks "
                                      "matched by name, or auto (detect)")],
    detect: Annotated[str, typer.Option("--detect", help="with --mask auto: some of text, scratch "
                                        "(sure scratches only), thin (scratches and hair by a "
                                        "looser rule, in place of scratch; it also takes some "
                                        "long thin lines of the scene: see docs/CLEAN_DETECT.md), "
                                        "dust (sure specks, on a photo with a crowd of them)")]
    = "text,scratch,dust",
    max_auto_area: Annotated[float, typer.Option("--max-auto-area", help="with --mask auto: the most "
                                                 "of an image (0..1) its detections may cover, "
                                                 "before the grow; more is flagged for review, "
                                                 "exit code 3")] = 0.12,
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
    from upres.cleaning.mask_source import MaskOptionError, MaskSource, detect_option
    from upres.cli.options import choice_option, fail, upscaler_settings

    if fill_model is not None and fill != "learned":
        raise fail("--fill-model applies with --fill learned")
    if not 0 <= feather <= MAX_EDGE_PX:
        raise fail(f"--feather {feather}: must be 0..{MAX_EDGE_PX} px")
    if not then_upscale and (scale is not None or mode is not None or model is not None):
        raise fail("--scale, --mode and --model apply with --then-upscale")
    try:
        grow_px = _grow_option(grow)
        detectors = detect_option(detect)
        source = MaskSource.parse(mask, detectors, max_auto_area)
    except (MaskOptionError, ValueError) as exc:
        raise fail(str(exc)) from None
    # The upscale's device memory is not bound by --memory here, as before: it bounds the batch.
    # Parsed either way, so a bad --precision or --denoise is refused, not ignored.
    parsed = upscaler_settings(scale or 4, mode, texture, model, backend, precision,
                               threads=threads, denoise=denoise)
    upscale = parsed if then_upscale else None
    request = CleanRequest(
        BatchFiles(tuple(inputs), outdir, fmt, resume, report, max_pixels,
                   float("inf") if wait else 0.0, quiet),
        mask, source, detectors, max_auto_area, grow_px, feather, fill, fill_model, texture, grain,
        choice_option(CleanBlend, blend), save_mask, upscale, backend, threads, memory)
    raise typer.Exit(clean_batch(request))


@dataclass(frozen=True)
class CleanRequest:
    """`upres clean`'s options, parsed: the files, the mask, the cleaning stages' settings and
    the upscale that follows (None without --then-upscale)."""

    files: BatchFiles
    mask: str  # as given: a file, a folder of masks or "auto"
    source: MaskSource  # `mask` parsed
    detect: tuple[str, ...]
    max_auto_area: float
    grow: int | None  # None: auto
    feather: int
    fill: str
    fill_model: Path | None
    texture: float
    grain: float
    blend: CleanBlend
    save_mask: bool
    upscale: Settings | None
    backend: str
    threads: int
    memory: str | None


def clean_batch(request: CleanRequest) -> int:
    """Clean the request's images; the exit code (usage errors exit 2 through `fail`)."""
    from upres.api.cleaner import Cleaner, lossless_same, saved_mask_clash
    from upres.api.errors import SettingsError
    from upres.batch import Progress
    from upres.cleaning.masks import saved_mask_path
    from upres.cli.console import drive
    from upres.cli.options import err, fail, open_upscaler, out
    from upres.core.errors import BackendUnavailable
    from upres.imageio import display_path
    from upres.runtime.inputs import InputError

    files, source = request.files, request.source
    jobs = files.jobs()
    if files.fmt == "same":
        try:
            jobs = lossless_same(jobs)
        except InputError as exc:
            raise fail(str(exc)) from None
    masks_written = [saved_mask_path(job.output) for job in jobs] if request.save_mask else []
    files.check_report(jobs, masks_written)
    if files.report is not None and source.kind == "file" and source.path is not None \
            and files.report.resolve() == source.path.resolve():
        raise fail(f"--report {display_path(files.report)} is the --mask file; give another file name")
    if request.save_mask and (clash := saved_mask_clash(jobs)):
        raise fail(clash)
    upscaler = open_upscaler(request.upscale) if request.upscale is not None else None
    try:
        cleaner = Cleaner(feather=request.feather, fill=request.fill, fill_model=request.fill_model,
                          texture=request.texture, grain=request.grain, blend=request.blend,
                          grow=request.grow, backend=request.backend, threads=request.threads,
                          memory=request.memory, upscale=upscaler, detect=request.detect,
                          max_auto_area=request.max_auto_area)
        # checked before anything is written
        cleaner.run_options(files.fmt, files.resume, files.max_pixels, files.lock_wait)
    except (SettingsError, FileNotFoundError, BackendUnavailable) as exc:
        raise fail(str(exc)) from None
    files.make_outdir()

    def start(progress: Progress, on_error: Callable[[str], None],
              on_wait: Callable[[Path, int | None], None]) -> Batch:
        try:
            return cleaner.map_jobs(jobs, request.mask, format=files.fmt, save_mask=request.save_mask,
                                    resume=files.resume, max_pixels=files.max_pixels,
                                    wait=files.lock_wait, report=files.report, progress=progress,
                                    on_error=on_error, on_wait=on_wait, signals=True)
        except (SettingsError, InputError) as exc:
            raise fail(str(exc)) from None

    with cleaner:
        code = drive(start, len(jobs), cleaner.setup, files.quiet, out, err)
    if upscaler is not None:
        upscaler.close()
    for source_path, reasons in cleaner.review:
        err.print(f"review: {display_path(source_path)}: {'; '.join(reasons)}", highlight=False,
                  soft_wrap=True)
    # 3: every image was written, but the automatic mask left some for a person to look at.
    return REVIEW if code == 0 and cleaner.review else code
