"""`upres triton export`: the command-line entry, typer-ready (`app.add_typer(triton_app, name="triton")`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from upres.cli.options import fail as _fail
from upres.cli.options import out as _out

triton_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Triton Inference Server: a model repository for the tile models.")


VERSION_COMPATIBLE_HINT = ("version-compatible TensorRT plans: Triton loads them only when started "
                           "with --backend-config=tensorrt,version-compatible=true")


def _plans(values: list[str], sha256: str, precision: str,
           max_batch: int) -> tuple[dict[str, Path], bool]:
    """--plan ENGINE (upres's engine cache, checked against the model) or --plan CC=FILE; and
    whether any cached engine among them is version-compatible."""
    from upres.serving.triton_repo import read_cached_plan

    plans: dict[str, Path] = {}
    version_compatible = False
    for value in values:
        cc, sep, path = value.partition("=")
        if sep and path:
            plan = Path(path)
        else:
            plan = Path(value)
            cached = read_cached_plan(plan)
            if cached is None:
                raise _fail(f"--plan {value}: no engine-cache manifest beside it; give the GPU as "
                            "COMPUTE_CAPABILITY=FILE, e.g. 8.9=engines/l4.plan")
            if (cached.onnx_sha256, cached.precision) != (sha256, precision):
                raise _fail(f"--plan {value}: built from another model or precision "
                            f"({cached.onnx_sha256[:12]} {cached.precision}, not {sha256[:12]} {precision})")
            if cached.batch < max_batch:
                raise _fail(f"--plan {value}: the engine takes batches up to {cached.batch}; "
                            f"use --max-batch {cached.batch} or rebuild with `upres build --batch`")
            cc = cached.compute_capability
            version_compatible |= cached.version_compatible
        if cc in plans:
            raise _fail(f"--plan: compute capability {cc} given twice")
        plans[cc] = plan
    return plans, version_compatible


@triton_app.command("export")
def export_command(
    model: Annotated[str, typer.Argument(help="built-in model name (coarse-x4, refine, ...) or PATH.onnx")],
    output: Annotated[Path, typer.Option("--output", "-o", help="model repository folder")],
    precision: Annotated[str, typer.Option(help="fp32 | fp16 | int8: which graph of a built-in "
                                           "model (fp16/int8 made by `upres calibrate`)")] = "fp32",
    max_batch: Annotated[int, typer.Option(help="largest batch of tiles Triton stacks")] = 8,
    instances: Annotated[int, typer.Option(help="model instances per device")] = 1,
    kind: Annotated[str, typer.Option(help="auto | gpu | cpu: where the instances run")] = "auto",
    queue_delay_us: Annotated[int, typer.Option(help="how long a tile may wait for others to batch "
                                                "with (microseconds)")] = 2000,
    plan: Annotated[list[str] | None, typer.Option(help="a TensorRT engine of `upres build`'s cache, or "
                                                   "CC=FILE for a plan built on a GPU of compute "
                                                   "capability CC (repeatable)")] = None,
    name: Annotated[str | None, typer.Option(help="served model name (default: from the file)")] = None,
) -> None:
    """Write a Triton model repository for one tile model (run it for coarse and refine alike)."""
    from upres.runtime.catalog import resolve
    from upres.serving.triton_repo import RepoError, RepoOptions, export_repo, validate_config

    try:
        ref = resolve(model, precision)
        plans, version_compatible = _plans(plan or [], ref.sha256, precision, max_batch)
        opts = RepoOptions(max_batch=max_batch, instances=instances, kind=kind,
                           max_queue_delay_us=queue_delay_us, plans=plans)
        written = export_repo(ref.path, output, precision, opts, name)
    except (FileNotFoundError, RepoError) as exc:
        raise _fail(str(exc)) from None
    for entry in written:
        checked = ("valid Triton ModelConfig" if validate_config(entry.config) is not None
                   else "not validated: tritonclient (Triton's config schema) is not installed")
        _out.print(f"{entry.folder}: {entry.name} (sha256 {entry.sha256[:12]}), {checked}",
                   highlight=False)
    if version_compatible:
        _out.print(f"note: {VERSION_COMPATIBLE_HINT}", highlight=False)


@triton_app.command("serve-cpu")
def serve_cpu_command(
    repo: Annotated[Path, typer.Argument(help="repository written by `upres triton export`")],
    port: Annotated[int, typer.Option(help="gRPC port on 127.0.0.1")] = 8001,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads per model instance")] = 1,
) -> None:
    """Serve REPO's ONNX models with Triton on this machine's CPU, on loopback, until Ctrl-C.

    Runs tritonserver from nvidia-pytriton (Python backend, ONNX Runtime inside) from the
    environment in $UPRES_TRITON_ENV (made by scripts/triton-env.sh). GPU fleets run NVIDIA's
    Triton container on the same repository instead."""
    import signal
    import tempfile
    import threading

    from upres.serving.cpu_server import CpuTritonServer, ServerUnavailable

    if not (repo.is_dir() and any(repo.glob("*/config.pbtxt"))):
        raise _fail(f"{repo}: not a model repository (no */config.pbtxt)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="upres-triton-") as work:
        try:
            with CpuTritonServer(repo, Path(work), grpc_port=port, threads=threads) as server:
                _out.print(f"serving {', '.join(server.models)} at triton://{server.address} "
                           "(Ctrl-C stops)", highlight=False)
                while not stop.wait(1.0):
                    if server.process is not None and server.process.poll() is not None:
                        raise _fail(f"tritonserver exited: {server.tail()}")
        except ServerUnavailable as exc:
            raise _fail(str(exc)) from None
