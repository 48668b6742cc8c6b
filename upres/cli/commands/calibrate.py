"""`upres calibrate`: the command-line entry, typer-ready (`app.command("calibrate")(calibrate_command)`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from upres.calibration.images import CalibrationError
from upres.cli.render_calibration import calibration_table, progress_bar

PRECISIONS = ("int8", "fp16")
USAGE_ERROR = 2
TARGET_MISSED = 1


def _resolve_model(model: str) -> Path:
    """A path, or a built-in name ("coarse-x4") meaning its FP32 file."""
    path = Path(model)
    if path.suffix == ".onnx" or path.exists():
        return path
    from upres.runtime.catalog import builtin_names, builtin_path

    builtin = builtin_path(model, "fp32")
    if builtin.is_file():
        return builtin
    raise FileNotFoundError(f"no model file {model!r} (built-in models: {', '.join(builtin_names())})")


def _exclude_option(values: list[str] | None) -> str | list[str] | None:
    """None or ["auto"] -> "auto"; ["none"] -> None (quantize everything); else the node names."""
    if not values or values == ["auto"]:
        return "auto"
    if values == ["none"]:
        return None
    if "auto" in values or "none" in values:
        raise CalibrationError("--exclude: 'auto' and 'none' cannot be combined with node names")
    return list(values)


def run_calibrate(
    model: str, images: list[Path], output: Path, samples: int = 256, method: str = "minmax",
    exclude: list[str] | None = None, max_loss_db: float = 0.3, precision: str = "int8", seed: int = 0,
    console: Console | None = None,
) -> int:
    """The command's work; returns the exit code (0 ok, 1 accuracy budget missed, 2 bad input)."""
    err = console or Console(stderr=True)
    try:
        if precision not in PRECISIONS:
            raise CalibrationError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if samples < 1:
            raise CalibrationError(f"--samples must be >= 1, got {samples}")
        model_path = _resolve_model(model)
        if output.resolve() == model_path.resolve():
            raise CalibrationError(f"-o {output} would overwrite the FP32 model it is made from")
        if precision == "int8":
            from upres.calibration.int8 import calibrate_int8

            report = calibrate_int8(model_path, images, output, samples=samples, method=method,
                                    exclude=_exclude_option(exclude), max_loss_db=max_loss_db, seed=seed,
                                    progress=progress_bar)
        else:
            if exclude:
                raise CalibrationError("--exclude applies to int8; fp16 keeps out-of-range ops in FP32")
            from upres.calibration.fp16 import calibrate_fp16

            report = calibrate_fp16(model_path, images, output, samples=samples, seed=seed,
                                    max_loss_db=max_loss_db, progress=progress_bar)
    except (CalibrationError, FileNotFoundError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return USAGE_ERROR
    Console().print(calibration_table(report))
    err.print(f"wrote {output} and {report.json_path}", highlight=False)
    if not report.target_met:
        err.print(f"[yellow]warning:[/yellow] {precision} loses {report.accuracy.loss_db:.3f} dB on held-out "
                  f"crops, over the {max_loss_db} dB budget", highlight=False)
        return TARGET_MISSED
    return 0


def calibrate_command(
    model: Annotated[str, typer.Argument(help="FP32 model: path to .onnx or a built-in name (coarse-x4)")],
    images: Annotated[list[Path], typer.Option(
        "--images", help="folder of HR calibration photos (repeat for several); LR crops made from them")],
    output: Annotated[Path, typer.Option("--output", "-o", help="model to write (report: same name, .json)")],
    samples: Annotated[int, typer.Option(help="calibration crops drawn")] = 256,
    method: Annotated[str, typer.Option(help="int8 range method: minmax, entropy or percentile")] = "minmax",
    exclude: Annotated[list[str] | None, typer.Option(
        help="int8 nodes kept in float: auto (measured), none, or node names (repeat)")] = None,
    max_loss_db: Annotated[float, typer.Option(
        help="largest held-out Y-PSNR loss vs FP32 accepted (auto exclusion stops there)")] = 0.3,
    precision: Annotated[str, typer.Option(help="int8 (Q/DQ) or fp16 (mixed, float32 I/O)")] = "int8",
    seed: Annotated[int, typer.Option(help="seed of the crop draw and the held-out split")] = 0,
) -> int:
    """Calibrate a model to INT8 (Q/DQ) or FP16 on real photos and report what it costs."""
    code = run_calibrate(model, images, output, samples, method, exclude, max_loss_db, precision, seed)
    if code:
        # Click ignores a command's return value; the exit code has to travel as an exception.
        raise typer.Exit(code)
    return 0
