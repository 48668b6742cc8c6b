"""`upres bench`: the command function (registered in upres.cli) and its int-returning core.

Typer ignores a command function's return value, so `bench_command` ends with `typer.Exit(code)`;
scripts and tests that want the code as a value call `bench_main` with the same arguments.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

USAGE_ERROR = 2


def bench_main(full: bool = False, json_out: Path | None = None, threads: int = 0,
               peers: Path | None = None, datasets: Path | None = None, size: int | None = None,
               repeats: int | None = None, only: list[str] | None = None,
               plot: Path | None = None, peak_size: int | None = None,
               in_process: bool = False, console: Console | None = None,
               err: Console | None = None, files: bool = False, large: bool = True,
               denoise: str = "auto") -> int:
    """Run the bench, print the tables, write JSON/plot; 0 ok, 1 a contender failed, 2 usage."""
    out = console or Console()
    err = err or Console(stderr=True)
    if files:
        compute_only = [label for label, given in (
            ("--full", full), ("--peers", peers is not None), ("--size", size is not None),
            ("--only", bool(only)), ("--plot", plot is not None),
            ("--peak-size", peak_size is not None), ("--in-process", in_process)) if given]
        if compute_only:
            err.print(f"[red]error:[/red] --files does not take {', '.join(compute_only)} "
                      "(those are for the compute bench)")
            return USAGE_ERROR
        return files_main(json_out, threads, datasets, repeats, large, console=out, err=err)
    from upres.bench.plot import pareto_plot
    from upres.bench.report import write_json
    from upres.bench.runner import BenchConfig, run_bench
    from upres.cli.render_bench import rich_table, targets_table

    for label, value, least in (("--threads", threads, 0), ("--size", size, 16),
                                ("--repeats", repeats, 1), ("--peak-size", peak_size, 0)):
        if value is not None and value < least:
            err.print(f"[red]error:[/red] {label} must be >= {least}, got {value}")
            return USAGE_ERROR
    for label, folder in (("--peers", peers), ("--datasets", datasets)):
        if folder is not None and not folder.is_dir():
            # Not fatal: the contenders / quality columns that need it are skipped with a reason.
            err.print(f"[yellow]warning:[/yellow] {label} {folder}: not a folder")
    cfg = BenchConfig.full() if full else BenchConfig.quick()
    from upres.runtime.denoise import DenoiseSetting

    try:
        DenoiseSetting.parse(denoise)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return USAGE_ERROR
    overrides: dict[str, Any] = {"threads": threads, "isolate": not in_process,
                                    "only": tuple(only or ()), "denoise": denoise}
    if peers is not None:
        overrides["peers"] = peers
    if datasets is not None:
        overrides["datasets"] = datasets
    if size is not None:
        overrides["image_size"] = size
    if repeats is not None:
        overrides["passes"] = repeats
    if peak_size is not None:
        overrides["gemm_size"] = peak_size
    cfg = replace(cfg, **overrides)

    with err.status("upres bench: starting") as status:
        result = run_bench(cfg, progress=lambda msg: status.update(f"upres bench: {msg}"))
    result.command = shlex.join(["upres", *sys.argv[1:]])
    out.print(rich_table(result))
    out.print(targets_table(result))
    if result.contended:
        share = result.others_cpu_share
        used = f" ({100 * share:.0f}% of the CPU time)" if share is not None else ""
        err.print(f"[yellow]note:[/yellow] other processes shared the CPU during this run{used}: "
                  "these timings are contended, not results")
    if json_out is not None:
        write_json(result, json_out)
        err.print(f"wrote {json_out}")
    if plot is not None:
        why = pareto_plot(result, plot, cfg.sets[0] if cfg.sets else "Set5")
        err.print(why or f"wrote {plot}")
    return 1 if result.failed else 0


def files_main(json_out: Path | None = None, threads: int = 0, datasets: Path | None = None,
               repeats: int | None = None, large: bool = True, markdown: Path | None = None,
               command: str | None = None, console: Console | None = None,
               err: Console | None = None) -> int:
    """Run the file bench, print its tables, write JSON/markdown; 0 ok, 1 a contender or check
    failed, 2 usage."""
    from rich.markup import escape

    from upres.bench.file_report import render_markdown, write_json
    from upres.bench.file_rows import FileBenchError
    from upres.bench.files import FileBenchConfig, run_files
    from upres.cli.render_bench import print_file_result
    from upres.core.atomic import atomic_write_text

    out = console or Console()
    err = err or Console(stderr=True)
    for label, value, least in (("--threads", threads, 0), ("--repeats", repeats, 1)):
        if value is not None and value < least:
            err.print(f"[red]error:[/red] {label} must be >= {least}, got {value}")
            return USAGE_ERROR
    if datasets is not None and not (datasets / "BSD100").is_dir():
        err.print(f"[yellow]warning:[/yellow] --datasets {escape(str(datasets))}: no BSD100/ in it; "
                  "synthesized photos are used")
    overrides: dict[str, object] = {"threads": threads, "large": large}
    if datasets is not None:
        overrides["datasets"] = datasets
    if repeats is not None:
        overrides["repeats"] = repeats
    cfg = FileBenchConfig.quick(**overrides)
    try:
        with err.status("upres bench --files: starting") as status:
            result = run_files(cfg, progress=lambda msg: status.update(f"upres bench --files: {msg}"))
    except FileBenchError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    result.command = command or shlex.join(["upres", *sys.argv[1:]])
    print_file_result(result, out, err)
    if json_out is not None:
        write_json(result, json_out)
        err.print(f"wrote {escape(str(json_out))}")
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(markdown, render_markdown(result))
        err.print(f"wrote {escape(str(markdown))}")
    return 1 if result.failed or any(c.ok is False for c in result.checks) else 0


def bench_command(
    full: Annotated[bool, typer.Option("--full", help="the published table: >1 MP inputs, 5 "
                                       "passes, Set5 + Set14 (several minutes)")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write every number as JSON")] = None,
    threads: Annotated[int, typer.Option("--threads", help="threads for every contender "
                                         "(0 = all cores)")] = 0,
    peers: Annotated[Path | None, typer.Option("--peers", help="folder with FSRCNN_x4.pb / "
                                               "ESPCN_x4.pb (default: ../shared/peers)")] = None,
    datasets: Annotated[Path | None, typer.Option("--datasets", help="folder with Set5/ and "
                                                  "Set14/ (--files: BSD100/; default: "
                                                  "../shared/datasets)")] = None,
    size: Annotated[int | None, typer.Option("--size", help="side of the timed input images "
                                             "(quick 256, full 1200)")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", help="timed passes (quick 3, "
                                                "full 5)")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="run contenders whose name "
                                                   "contains this (repeatable)")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write the quality-vs-speed "
                                              "PNG (needs matplotlib)")] = None,
    peak_size: Annotated[int | None, typer.Option("--peak-size", help="GEMM side for the "
                                                  "peak probe (0 = skip; default 2048)")] = None,
    in_process: Annotated[bool, typer.Option("--in-process", help="no worker processes "
                                             "(faster start; RSS only as load deltas)")] = False,
    files: Annotated[bool, typer.Option("--files", help="file to file instead: a folder of "
                                        "photos in, PNGs out, each run a fresh process, beside "
                                        "the naive loop and bare compute (a few minutes)")] = False,
    large: Annotated[bool, typer.Option("--large/--no-large", help="--files: also one 48 MP "
                                        "output")] = True,
    denoise: Annotated[str, typer.Option("--denoise", help="upres contenders: auto | 0..1 (--files "
                                         "runs 0: the naive loop's model)")] = "auto",
) -> None:
    """Benchmark upres against the PyTorch eager loop, OpenCV dnn_superres and the GEMM peak
    (--files: file to file, against the naive loop a user would write)."""
    raise typer.Exit(bench_main(full, json_out, threads, peers, datasets, size, repeats, only,
                                plot, peak_size, in_process, files=files, large=large,
                                denoise=denoise))
