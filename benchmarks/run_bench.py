"""Regenerate docs/BENCHMARKS.md and docs/bench_pareto.png in one process run.

    python benchmarks/run_bench.py                 # the full table (several minutes, quiet machine)
    python benchmarks/run_bench.py --quick         # the quick profile (what `upres bench` runs)
    python benchmarks/run_bench.py --from-json F   # re-render from `upres bench --json F`, no runs

Same code as `upres bench` (upres.bench); this script only adds the markdown and the plot files.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from upres.bench.doc_sections import keeping_files_section
from upres.bench.markdown import render
from upres.bench.plot import pareto_plot
from upres.bench.report import write_json
from upres.bench.runner import BenchConfig, BenchResult, run_bench
from upres.cli.render_bench import rich_table, targets_table

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="quick profile instead of --full")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--peers", type=Path, help="default: ../shared/peers")
    parser.add_argument("--datasets", type=Path, help="default: ../shared/datasets")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "bench_pareto.png")
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--from-json", type=Path, help="render this earlier result; measure nothing")
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    command = "python benchmarks/run_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))

    if args.from_json:
        result = BenchResult.from_json(json.loads(args.from_json.read_text()))
        command = result.command or command  # quote the run that measured, not this rendering
    else:
        cfg = BenchConfig.quick() if args.quick else BenchConfig.full()
        overrides: dict[str, object] = {"threads": args.threads}
        if args.peers:
            overrides["peers"] = args.peers
        if args.datasets:
            overrides["datasets"] = args.datasets
        cfg = replace(cfg, **overrides)
        with err.status("bench") as status:
            result = run_bench(cfg, progress=lambda msg: status.update(msg))
        result.command = command
    Console().print(rich_table(result))
    Console().print(targets_table(result))
    if args.json:
        write_json(result, args.json)

    sets = result.config.get("sets") or ["Set5"]
    why = pareto_plot(result, args.plot, sets[0])
    if why:
        err.print(why)
    try:
        plot_ref = args.plot.resolve().relative_to(args.out.resolve().parent).as_posix()
    except ValueError:
        plot_ref = args.plot.resolve().as_posix()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    page = render(result, command, None if why else plot_ref)
    old = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(keeping_files_section(old, page))  # file_bench.py's section stays
    err.print(f"wrote {args.out}" + ("" if why else f" and {args.plot}"))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
