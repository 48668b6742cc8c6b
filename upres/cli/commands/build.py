"""`upres build`: ONNX -> TensorRT engine in the engine cache; `--list` shows the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from upres.cli.options import err as _err
from upres.cli.options import fail as _fail
from upres.cli.options import out as _out
from upres.core.sizes import format_size, parse_size
from upres.gpu.engine_cache import CachedEngine, EngineCache, Profile


def _profile(tile: int | None, profile: str | None) -> Profile:
    if tile is not None and profile is not None:
        raise ValueError("give --tile or --profile, not both")
    if profile is not None:
        return Profile.parse(profile)
    if tile is not None and tile < 1:
        raise ValueError(f"--tile must be a positive size in pixels, got {tile}")
    return Profile.for_tile(tile or 512)


def engine_table(cache: EngineCache, onnx_sha256: str | None = None) -> Table | None:
    """The cached engines (of one ONNX file if given) as a table; None if there are none."""
    entries = cache.entries()
    table = Table(title=f"TensorRT engines in {cache.root}")
    for col in ("engine", "precision", "profile", "batch", "GPU", "TensorRT", "activations", "state"):
        table.add_column(col)
    rows = 0
    for entry in entries:
        if not isinstance(entry, CachedEngine):
            table.add_row(entry[0].name, "", "", "", "", "", "", f"unreadable: {entry[1]}")
            rows += 1
            continue
        k = entry.key
        if onnx_sha256 is not None and k.onnx_sha256 != onnx_sha256:
            continue
        valid, why = cache.check(k, entry.model)
        trt_version = (f"{entry.tensorrt_built} (any later {k.tensorrt})" if k.version_compatible
                       else k.tensorrt)
        table.add_row(entry.engine_path.name, k.precision, str(k.profile), str(k.batch),
                      f"{k.gpu} (cc {k.compute_capability})", trt_version,
                      format_size(entry.activation_bytes), "valid" if valid else f"stale: {why}")
        rows += 1
    return table if rows else None


def build_command(
    model: Annotated[str | None, typer.Argument(help="built-in model name (coarse-x4, refine, ...; "
                                                "fp16/int8 graphs from `upres calibrate`) or "
                                                "PATH.onnx")] = None,
    precision: Annotated[str, typer.Option(help="fp32 | fp16 | int8 (must match the graph)")] = "fp16",
    tile: Annotated[int | None, typer.Option(help="largest model input side (halo included); "
                                             "profile 16:N:N")] = None,
    profile: Annotated[str | None, typer.Option(help="MIN:OPT:MAX input sides in pixels")] = None,
    batch: Annotated[int, typer.Option(help="largest batch the engine takes")] = 1,
    workspace: Annotated[str | None, typer.Option(help="builder workspace limit, e.g. 2GiB")] = None,
    optimization_level: Annotated[int, typer.Option(help="TensorRT builder optimization level 0-5")] = 3,
    hardware_compat: Annotated[bool, typer.Option(help="engine for any Ampere+ GPU (slower)")] = False,
    version_compatible: Annotated[bool, typer.Option(help="engine that later TensorRT versions of the "
                                                     "same major also load (slower)")] = False,
    cache: Annotated[Path | None, typer.Option(help="engine cache folder")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even if a valid engine is cached")] = False,
    list_engines: Annotated[bool, typer.Option("--list", help="list cached engines and exit")] = False,
) -> None:
    """Build a TensorRT engine for this GPU (cached; stale or foreign engines are rebuilt)."""
    engines = EngineCache(cache)
    if list_engines:
        table = engine_table(engines)
        if table is None:
            _out.print(f"no engines in {engines.root}")
        else:
            _out.print(table)
        return
    if model is None:
        raise _fail("give an ONNX MODEL to build, or --list")
    from upres.core.errors import BackendUnavailable
    from upres.gpu.trt_builder import BuildOptions, build_engine
    from upres.runtime.catalog import model_path

    try:
        onnx_path = model_path(model, precision)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    try:
        options = BuildOptions(precision, _profile(tile, profile), batch,
                               parse_size(workspace) if workspace else 0, optimization_level,
                               hardware_compat, version_compatible)
        if precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"--precision must be fp32, fp16 or int8, got {precision!r}")
        if batch < 1 or not 0 <= optimization_level <= 5:
            raise ValueError("--batch must be >= 1 and --optimization-level within 0..5")
        built = build_engine(onnx_path, options, engines, lambda m: _err.print(m, highlight=False), force)
    except (ValueError, BackendUnavailable) as exc:
        raise _fail(str(exc)) from None
    _out.print(f"{built.engine_path} ({format_size(built.engine_bytes)}, activations "
               f"{format_size(built.activation_bytes)} per context, built in "
               f"{built.build_seconds:.1f} s)", highlight=False)
