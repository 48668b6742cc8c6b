"""The `upres` command line. Heavy imports stay inside commands: `upres run` never imports torch."""

from __future__ import annotations

import importlib
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any


def _interrupted() -> SystemExit:
    """Ctrl-C: one line and exit code 130 (128 + SIGINT, as shells report it), no traceback."""
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone with its terminal
        pass
    return SystemExit(130)


try:  # the heaviest part of start-up: the likeliest moment for a Ctrl-C to land
    import typer
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
except KeyboardInterrupt:
    raise _interrupted() from None

if TYPE_CHECKING:  # upres.imageio and the API are imported by the commands that use them
    from upres.api import Batch, Settings, Upscaler
    from upres.batch import Progress
    from upres.runtime.chain_factory import ChainSetup

HELP = "Reproducible, tiled super-resolution for archival photos."
err = Console(stderr=True)
out = Console()

USAGE_ERROR = 2


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    # soft_wrap: one line however long, so a log keeps it whole (a terminal wraps it itself).
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


# Commands are registered on an app built per invocation: typer evaluates every registered
# command's signature when it starts, and `upres run` should not pay for the other eleven.
_COMMANDS: dict[str, Callable[..., Any]] = {}
# The commands that live beside their subsystems: (module, attribute), imported only when used.
_TOOL_COMMANDS = {
    "calibrate": ("upres.calibration.command", "calibrate_command"),
    "bench": ("upres.bench.command", "bench_command"),
    "build": ("upres.gpu.build_command", "build_command"),
    "clean": ("upres.cleaning.command", "clean_command"),
}
_TOOL_APPS = {"triton": ("upres.serving.command", "triton_app")}


def command(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        _COMMANDS[name or function.__name__] = function
        return function

    return register


def _tool(entry: tuple[str, str]) -> Any:
    module, attribute = entry
    return getattr(importlib.import_module(module), attribute)


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI with every command, or with ``only`` that one (same options, same help)."""
    cli = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)

    @cli.callback()
    def root() -> None:  # keeps the commands subcommands when only one is registered
        pass

    root.__doc__ = HELP
    for name, function in _COMMANDS.items():
        if only in (None, name):
            cli.command(name)(function)
    for name, entry in _TOOL_COMMANDS.items():
        if only in (None, name):
            cli.command(name)(_tool(entry))
    for name, entry in _TOOL_APPS.items():
        if only in (None, name):
            cli.add_typer(_tool(entry), name=name)
    return cli


@command()
def train(
    model: Annotated[str, typer.Argument(help="coarse-x2, coarse-x4, refine, overlay-detect or fill")],
    data: Annotated[list[Path], typer.Option("--data", help="folder of HR training images")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="checkpoint/output folder")],
    steps: int = 10000,
    batch: int = 16,
    patch: Annotated[int, typer.Option(help="LR patch (refine: output/4; overlay-detect, fill: crop)")] = 32,
    learning_rate: float = 2e-3,
    seed: int = 0,
    threads: int = 0,
    stop_after: Annotated[int, typer.Option(help="checkpoint and stop at this step")] = 0,
    coarse: Annotated[list[Path] | None, typer.Option(help="refine: coarse weights")] = None,
    degrade: Annotated[bool, typer.Option(help="archival degradations (noise, blur, JPEG)")] = False,
    texture_weight: Annotated[float, typer.Option(help="refine: texture terms vs fidelity")] = 0.1,
    freq_weight: Annotated[float, typer.Option(help="refine: FFT-magnitude term")] = 1.0,
    grad_weight: Annotated[float, typer.Option(help="refine: gradient L1 term")] = 1.0,
    freq_warmup: Annotated[float, typer.Option(help="refine: ramp of the FFT term")] = 0.3,
    cond_noise: Annotated[float, typer.Option(help="refine: noise on its input")] = 0.0,
    spectrum_window: Annotated[int, typer.Option(help="refine: local FFT window, 0 = patch")] = 0,
    fidelity_sigma: Annotated[float, typer.Option(help="refine: L1 on low-passes, 0 = off")] = 0.0,
    init: Annotated[Path | None, typer.Option(help="start from these weights (fine-tune)")] = None,
) -> None:
    """Train a network from folders of HR training images (resumes from --out)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from upres.models.data import Degradations
    from upres.models.losses import RefineLossSchedule
    from upres.models.registry import SPECS
    from upres.models.train import TrainConfig
    from upres.models.train import train as run_training

    if model not in SPECS:
        raise fail(f"unknown model {model!r}; choose from {', '.join(SPECS)}")
    for folder in data:
        if not folder.is_dir():
            raise fail(f"--data {folder}: not a folder")
    if init is not None and not init.is_file():
        raise fail(f"--init {init}: no such file")
    cfg = TrainConfig(
        model=model, data=tuple(data), out=out_dir, steps=steps, batch=batch, lr_patch=patch,
        learning_rate=learning_rate, seed=seed, threads=threads, stop_after=stop_after,
        degradations=Degradations(8.0, 1.5, 40) if degrade else Degradations(),
        refine_schedule=RefineLossSchedule(
            texture_weight=texture_weight, freq_weight=freq_weight, grad_weight=grad_weight,
            freq_warmup=freq_warmup, cond_noise=cond_noise, spectrum_window=spectrum_window,
            fidelity_sigma=fidelity_sigma),
        coarse_weights=tuple(coarse or ()),
        init_weights=init,
    )
    if not err.is_terminal:
        # A log file gets a line every 50 steps instead of a bar it cannot show.
        def log_line(step: int, loss: float) -> None:
            if step % 50 == 0 or step == steps:
                err.print(f"train {model} {step}/{steps} loss {loss:.5f}", highlight=False)

        final = run_training(cfg, log_line)
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                      "{task.total}"), TextColumn("loss {task.fields[loss]:.5f}"),
                      TimeRemainingColumn(), console=err) as bar:
            task = bar.add_task(f"train {model}", total=steps, loss=0.0)
            final = run_training(cfg, lambda step, loss: bar.update(task, completed=step, loss=loss))
    out.print(f"weights: {final}")


@command()
def export(
    weights: Annotated[Path, typer.Argument(help="weights .pt written by `upres train`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write")],
) -> None:
    """Export trained weights to ONNX (parity-checked, receptive field in the metadata)."""
    if not weights.is_file():
        raise fail(f"{weights}: no such weights file")
    from upres.export.onnx_export import export_weights

    report = export_weights(weights, output)
    out.print(f"{report.path}: parity max abs error {report.parity_max_abs:.2e}, "
              f"receptive field {report.info.receptive_field} px")


@command()
def inspect(model: Annotated[str, typer.Argument(help="model name or path to .onnx")]) -> None:
    """Show a model's scale, receptive field, size and cost (probing foreign models once)."""
    from dataclasses import asdict

    from upres.runtime.backends.base import BackendUnavailable
    from upres.runtime.catalog import resolve

    try:
        ref = resolve(model)
    except (FileNotFoundError, ValueError, BackendUnavailable) as exc:  # ModelError is a ValueError
        raise fail(str(exc)) from None
    table = Table(title=str(ref.path), show_header=False)
    for key, value in asdict(ref.info).items():
        table.add_row(key, str(value))
    table.add_row("file_sha256", ref.sha256)
    table.add_row("source", "probed (no upres metadata)" if ref.probed else "upres metadata")
    out.print(table)
    from upres.gpu.build_command import engine_table
    from upres.gpu.engine_cache import EngineCache

    engines = engine_table(EngineCache(), ref.sha256)
    if engines is not None:
        out.print(engines)


@command("eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="folder of HR test images")],
    scale: int = 4,
    mode: str = "faithful",
    texture: float = 0.5,
    model: Annotated[str | None, typer.Option(help="model name or .onnx path")] = None,
    precision: str = "fp32",
    threads: int = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """PSNR/SSIM (Y, BT.601, shave=scale) against bicubic on a test folder."""
    from upres.evaluate import evaluate_folder, summary
    from upres.runtime.chain_factory import build_chain

    if not data.is_dir():
        raise fail(f"--data {data}: not a folder")
    try:
        setup = build_chain(mode, scale, model, texture, "ort-cpu", precision, threads)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    scores = evaluate_folder(data, scale, setup.chain)
    table = Table(title=f"{data.name} x{scale} {mode}")
    for col in ("image", "PSNR", "SSIM", "bicubic PSNR", "bicubic SSIM"):
        table.add_column(col)
    for s in scores:
        table.add_row(s.name, f"{s.psnr:.2f}", f"{s.ssim:.4f}", f"{s.bicubic_psnr:.2f}",
                      f"{s.bicubic_ssim:.4f}")
    total = summary(scores)
    table.add_row("mean", f"{total['psnr']:.2f}", f"{total['ssim']:.4f}",
                  f"{total['bicubic_psnr']:.2f}", f"{total['bicubic_ssim']:.4f}")
    out.print(table)
    if json_out:
        json_out.write_text(json.dumps({"data": str(data), "scale": scale, "mode": mode,
                                        "texture": texture, "summary": total,
                                        "images": [s.__dict__ for s in scores]}, indent=2))


def _tile_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise fail(f"--tile must be auto, 0 (whole image) or a size in pixels, got {value!r}")
    return int(value)


def _halo_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise fail(f"--halo must be auto or a size in pixels, got {value!r}")
    return int(value)


ScaleOpt = Annotated[int, typer.Option("--scale", help="2 or 4")]
ModeOpt = Annotated[str | None, typer.Option(
    "--mode", help="deterministic | faithful | hybrid (default: hybrid; faithful with --model)")]
TextureOpt = Annotated[float, typer.Option("--texture", help="refine strength 0..1 (hybrid)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="built-in name or PATH.onnx")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="auto | ort-cpu | ort-cuda | ort-trt | trt | torch-cuda | "
    "triton://HOST:PORT or triton://HOST:PORT/MODEL")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="fp32 | fp16 | int8")]
MemoryOpt = Annotated[str | None, typer.Option("--memory", help="e.g. 512MiB, 2GiB")]
TileOpt = Annotated[str, typer.Option("--tile", help="auto | N | 0 (whole image)")]
HaloOpt = Annotated[str, typer.Option("--halo", help="auto | N (input pixels)")]
BlendOpt = Annotated[str, typer.Option("--blend", help="auto | crop | feather")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="inference threads (0 = all cores)")]
CompressionOpt = Annotated[str, typer.Option(
    "--compression", help="PNG/TIFF: fast | default | small (same pixels; size vs speed)")]


def upscaler_settings(scale: int = 4, mode: str | None = None, texture: float = 0.5,
                      model: str | None = None, backend: str = "auto", precision: str = "fp32",
                      memory: str | None = None, tile: str = "auto", halo: str = "auto",
                      blend: str = "auto", threads: int = 0) -> Settings:
    """The Upscaler settings of `upres run`'s options (usage errors exit 2)."""
    from upres.api.errors import SettingsError
    from upres.api.settings import Settings

    try:
        return Settings(scale=scale, mode=mode, texture=texture, model=model, precision=precision,
                        backend=backend, memory=memory, tile=_tile_option(tile),
                        halo=_halo_option(halo), blend=blend, threads=threads)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def open_upscaler(settings: Settings) -> Upscaler:
    """Models resolved, sessions created; a setting, model or backend that cannot be used exits 2."""
    from upres.api import Upscaler
    from upres.runtime.backends.base import BackendUnavailable
    from upres.runtime.planner import PlanError

    try:
        return Upscaler.from_settings(settings)
    except (ValueError, FileNotFoundError, BackendUnavailable, PlanError) as exc:  # ModelError, SettingsError
        raise fail(str(exc)) from None


def setup_chain(mode: str | None, scale: int, model: str | None, texture: float, backend: str,
                precision: str, threads: int, memory: str | None = None) -> ChainSetup:
    """The chain alone, as an Upscaler with these settings builds it."""
    return open_upscaler(upscaler_settings(scale, mode, texture, model, backend, precision, memory,
                                           threads=threads)).setup


def memory_option(value: str | None) -> int:
    from upres.runtime.memory import default_memory_target, parse_size

    try:
        return parse_size(value) if value else default_memory_target()
    except ValueError as exc:
        raise fail(str(exc)) from None


def max_pixels_option(value: int | None) -> int:
    from upres.imageio import DEFAULT_MAX_PIXELS

    if value is None:
        return DEFAULT_MAX_PIXELS
    # 0 or less would refuse every image (or, as 0 once did, silently mean the default).
    if value < 1:
        raise fail(f"--max-pixels must be a positive number of pixels, got {value}")
    return value


@command()
def run(
    inputs: Annotated[list[str], typer.Argument(help="image files, folders or globs")],
    outdir: Annotated[Path, typer.Option("--output", "-o", help="output folder")],
    scale: ScaleOpt = 4,
    mode: ModeOpt = None,
    texture: TextureOpt = 0.5,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    precision: PrecisionOpt = "fp32",
    memory: MemoryOpt = None,
    tile: TileOpt = "auto",
    halo: HaloOpt = "auto",
    blend: BlendOpt = "auto",
    fmt: Annotated[str, typer.Option("--format", help="same | png | tiff | jpg")] = "same",
    compression: CompressionOpt = "default",
    threads: ThreadsOpt = 0,
    resume: Annotated[bool, typer.Option("--resume/--overwrite",
                                         help="skip outputs whose sidecar matches")] = True,
    report: Annotated[Path | None, typer.Option("--report", help="write a JSON run report")] = None,
    max_pixels: Annotated[int | None, typer.Option("--max-pixels",
                                                   help="refuse inputs with more pixels, read from the "
                                                   "header before decoding: a positive number "
                                                   "(default 178956970)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
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
    from upres.api.errors import SettingsError
    from upres.runtime.inputs import InputError, collect_jobs, report_conflict
    from upres.runtime.run_report import drive, print_note

    try:
        jobs = collect_jobs(inputs, outdir, fmt, note=None if quiet else lambda text: print_note(err, text))
    except InputError as exc:
        raise fail(str(exc)) from None
    if not jobs:
        raise fail("no input images found")
    if report is not None and (conflict := report_conflict(report, jobs)):
        raise fail(conflict)
    settings = upscaler_settings(scale, mode, texture, model, backend, precision, memory, tile, halo,
                                 blend, threads)
    lock_wait = float("inf") if wait else 0.0
    try:  # the file options are checked before any model loads
        settings.run_options(fmt, compression, resume, max_pixels, lock_wait)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    with open_upscaler(settings) as upscaler:
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(f"--output {outdir}: {exc.strerror or exc}") from None
        scheduler = None
        if ray is not None:
            from upres.runtime.ray_batch import RayBatchError, connect

            try:
                scheduler = connect(ray, upscaler.setup, upscaler.run_options(
                    fmt, compression, resume, max_pixels, lock_wait))
            except RayBatchError as exc:
                raise fail(str(exc)) from None

        def start(progress: Progress, on_error: Callable[[str], None],
                  on_wait: Callable[[Path, int | None], None]) -> Batch:
            return upscaler.map_jobs(jobs, format=fmt, compression=compression, resume=resume,
                                     max_pixels=max_pixels, wait=lock_wait, report=report,
                                     progress=progress, on_error=on_error, on_wait=on_wait,
                                     signals=True, scheduler=scheduler)

        code = drive(start, len(jobs), upscaler.setup, quiet, out, err, json_lines)
    raise typer.Exit(code)


@command()
def plan(
    image: Annotated[Path, typer.Argument(help="image to plan for")],
    scale: ScaleOpt = 4,
    mode: ModeOpt = None,
    texture: TextureOpt = 0.5,
    model: ModelOpt = None,
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
                                 blend, threads)
    with open_upscaler(settings) as upscaler:
        try:
            planned = upscaler.plan(image)
        except (ImageError, PlanError) as exc:
            raise fail(str(exc), 1) from None
    if json_out:
        out.print_json(planned.to_json())
    else:
        out.print(planned.text(), highlight=False)


_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # `from upres.cli import app`: the whole CLI, built on first use (the tests drive it).
    global _APP
    if name == "app":
        if _APP is None:
            _APP = build_app()
        return _APP
    raise AttributeError(f"module 'upres.cli' has no attribute {name!r}")


_SIGINT_SEEN = False


def _on_sigint(signum: int, frame: object) -> None:
    # Python's own behaviour, remembered: a C extension interrupted while it initialises turns
    # the KeyboardInterrupt into an ImportError ("initialization failed"), which is no less a
    # Ctrl-C. A batch replaces this handler with its StopFlag while it runs.
    global _SIGINT_SEEN
    _SIGINT_SEEN = True
    raise KeyboardInterrupt


def main() -> None:
    """The `upres` entry point: with a command name first, only that command is built. A Ctrl-C
    anywhere ends it with the one line "interrupted" and exit code 130, never a traceback."""
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        first = sys.argv[1] if len(sys.argv) > 1 else None
        known = {*_COMMANDS, *_TOOL_COMMANDS, *_TOOL_APPS}
        cli = build_app(first if first in known else None)
        sys.exit(cli(prog_name="upres"))
    except KeyboardInterrupt:  # outside a command: while building the app (its imports)
        raise _interrupted() from None
    except SystemExit as exc:
        # 130: typer's silent exit for a KeyboardInterrupt inside a command.
        if exc.code == 130 or (_SIGINT_SEEN and exc.code not in (0, None)):
            raise _interrupted() from None
        raise
    except BaseException:
        if _SIGINT_SEEN:
            raise _interrupted() from None
        raise
