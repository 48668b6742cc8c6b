"""What the commands share: the consoles, one `fail`, and one definition of each option that
several commands take (--scale, --mode, --backend, --memory, ...) with its parser."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # imported by the commands that use them, not at start-up
    from upres.imageio import Compression
    from upres.runtime.chain_factory import ChainSetup
    from upres.runtime.denoise import DenoiseSetting

err = Console(stderr=True)
out = Console()

USAGE_ERROR = 2


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    # soft_wrap: one line however long, so a log keeps it whole (a terminal wraps it itself).
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def tile_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise fail(f"--tile must be auto, 0 (whole image) or a size in pixels, got {value!r}")
    return int(value)


def halo_option(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit():
        raise fail(f"--halo must be auto or a size in pixels, got {value!r}")
    return int(value)


def blend_option(value: str) -> str:
    if value not in ("auto", "crop", "feather"):
        raise fail(f"--blend must be auto, crop or feather, got {value!r}")
    return value


InputsArg = Annotated[list[str], typer.Argument(help="image files, folders or globs")]
OutdirOpt = Annotated[Path, typer.Option("--output", "-o", help="output folder")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--overwrite", help="skip outputs whose sidecar matches")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="write a JSON run report")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q")]
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
DenoiseOpt = Annotated[str, typer.Option(
    "--denoise", help="auto (measured per image) | 0 (clean models) .. 1 (restoration models): "
    "how much noise, grain and JPEG damage to remove")]
CompressionOpt = Annotated[str, typer.Option(
    "--compression", help="PNG/TIFF: fast | default | small (same pixels; size vs speed)")]


def compression_option(value: str) -> Compression:
    from upres.imageio import Compression

    try:
        return Compression.parse(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


def default_mode(mode: str | None, model: str | None) -> str:
    """--mode as given; else a model of the user's own (--model) runs alone, upres's refine pass
    is not added to it (it would cost several times the model), and upres's models run hybrid."""
    if mode is not None:
        return mode
    return "faithful" if model is not None else "hybrid"


def denoise_option(value: str) -> DenoiseSetting:
    from upres.runtime.denoise import DenoiseSetting

    try:
        return DenoiseSetting.parse(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


def setup_chain(mode: str | None, scale: int, model: str | None, texture: float, backend: str,
                precision: str, threads: int, memory: str | None = None,
                denoise: str = "0") -> ChainSetup:
    from upres.core.errors import BackendUnavailable
    from upres.runtime.chain_factory import build_chain
    from upres.runtime.planner import PlanError

    if scale not in (2, 4) and model is None:
        raise fail(f"--scale must be 2 or 4, got {scale}")
    # GPU backends plan device memory when the chain is built: --memory bounds it too.
    device_memory = memory_option(memory) if memory else None
    try:
        return build_chain(default_mode(mode, model), scale, model, texture, backend, precision,
                           threads, device_memory, denoise=denoise_option(denoise))
    except (ValueError, FileNotFoundError, BackendUnavailable, PlanError) as exc:
        raise fail(str(exc)) from None


def memory_option(value: str | None) -> int:
    from upres.core.sizes import parse_size
    from upres.runtime.memory import default_memory_target

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
