"""What the commands share: the consoles, one `fail`, and one definition of each option that
several commands take (--scale, --mode, --backend, --memory, ...) with its parser."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from upres.core.choices import Choice

if TYPE_CHECKING:  # imported by the commands that use them, not at start-up
    from rich.console import Console

    from upres.api import Settings, Upscaler
    from upres.runtime.chain_factory import ChainSetup
    from upres.runtime.denoise import DenoiseSetting



class _ConsoleOnFirstUse:
    """A rich Console made when first used: a quiet `upres run` that prints nothing never
    imports rich (a tenth of its start-up)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console(), name)

    # Dunder methods are looked up on the type, not through __getattr__ (rich's Live enters
    # the console it is given).
    def __enter__(self) -> Console:
        return self.console().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.console().__exit__(*exc)


def real_console(console: Console) -> Console:
    """``console`` itself, for rich's own classes (Progress) that hold a Console."""
    return console.console() if isinstance(console, _ConsoleOnFirstUse) else console


err = cast("Console", _ConsoleOnFirstUse(stderr=True))
out = cast("Console", _ConsoleOnFirstUse(stderr=False))

USAGE_ERROR = 2


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    from rich.markup import escape

    # soft_wrap: one line however long, so a log keeps it whole (a terminal wraps it itself).
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


C = TypeVar("C", bound=Choice)


def choice_option(kind: type[C], value: str) -> C:
    """A name option (--mode, --blend) as its member; a bad one exits 2 with the one-line error."""
    try:
        return kind.parse(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


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


def denoise_option(value: str) -> DenoiseSetting:
    from upres.runtime.denoise import DenoiseSetting

    try:
        return DenoiseSetting.parse(value)
    except ValueError as exc:
        raise fail(str(exc)) from None


def upscaler_settings(scale: int = 4, mode: str | None = None, texture: float = 0.5,
                      model: str | None = None, backend: str = "auto", precision: str = "fp32",
                      memory: str | None = None, tile: str = "auto", halo: str = "auto",
                      blend: str = "auto", threads: int = 0, denoise: str = "auto") -> Settings:
    """The Upscaler settings of `upres run`'s options (usage errors exit 2)."""
    from upres.api.errors import SettingsError
    from upres.api.settings import Settings

    try:
        return Settings(scale=scale, mode=mode, texture=texture, model=model, precision=precision,
                        backend=backend, memory=memory, tile=tile_option(tile),
                        halo=halo_option(halo), blend=blend, threads=threads, denoise=denoise)
    except SettingsError as exc:
        raise fail(str(exc)) from None


def open_upscaler(settings: Settings) -> Upscaler:
    """Models resolved, sessions created; a setting, model or backend that cannot be used exits 2."""
    from upres.api import Upscaler
    from upres.core.errors import BackendUnavailable
    from upres.runtime.planner import PlanError

    try:
        return Upscaler.from_settings(settings)
    except (ValueError, FileNotFoundError, BackendUnavailable, PlanError) as exc:  # ModelError, SettingsError
        raise fail(str(exc)) from None


def setup_chain(mode: str | None, scale: int, model: str | None, texture: float, backend: str,
                precision: str, threads: int, memory: str | None = None,
                denoise: str = "0") -> ChainSetup:
    """The chain alone, as an Upscaler with these settings builds it."""
    return open_upscaler(upscaler_settings(scale, mode, texture, model, backend, precision, memory,
                                           threads=threads, denoise=denoise)).setup
