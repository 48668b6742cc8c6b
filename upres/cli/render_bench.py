"""`upres bench`'s terminal output: the bench's rows and targets, and the file bench's tables, as
rich tables (the cells come from `upres.bench.report` and `upres.bench.file_report`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from upres.bench.file_report import (
    HEAD,
    cells,
    contended_note,
    machine_lines,
    ordered,
    repeats_text,
    workload_line,
)
from upres.bench.files import FileBenchResult
from upres.bench.report import cells as bench_cells
from upres.bench.report import headers, peak_line
from upres.bench.runner import BenchResult

_MET = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}


def rich_table(result: BenchResult) -> Table:
    sets = tuple(result.config.get("sets", ()))
    cfg = result.config
    title = (f"upres bench ({cfg['profile']}): x4, {cfg['image_count']} x {cfg['image_size']}^2 "
             f"inputs, {cfg['passes']} passes, {result.threads} threads")
    table = Table(title=title, caption=peak_line(result))
    for h in headers(sets):
        table.add_column(h, overflow="fold")
    for row in result.rows:
        style = None if row.status == "ok" else "dim"
        table.add_row(*bench_cells(row, sets), style=style)
    return table


def targets_table(result: BenchResult) -> Table:
    table = Table(title="targets (issue 6)")
    for h in ("target", "goal", "measured", "met", "note"):
        table.add_column(h, overflow="fold")
    for t in result.targets:
        table.add_row(t.name, t.goal, t.value or "-", _MET[t.met], t.note)
    return table


def file_tables(result: FileBenchResult) -> list[Table]:
    head = Table(title=f"upres bench --files: {workload_line(result)}; {repeats_text(result)}, "
                 "each a fresh process")
    for h in HEAD:
        head.add_column(h, overflow="fold")
    for row in ordered(result):
        head.add_row(*(escape(c) for c in cells(result, row)),
                     style=None if row.status == "ok" else "dim")
    targets = Table(title="targets (file to file)")
    for h in ("target", "goal", "measured (median, min-max)", "met", "note"):
        targets.add_column(h, overflow="fold")
    for t in result.targets():
        targets.add_row(escape(t.name), t.goal, t.value or "-", _MET[t.met], escape(t.note))
    checks = Table(title="checks")
    for h in ("check", "ok", "detail"):
        checks.add_column(h, overflow="fold")
    for c in result.checks:
        checks.add_row(escape(c.name), _MET[c.ok], escape(c.detail))
    return [head, targets, checks]


def print_file_result(result: FileBenchResult, out: Console, err: Console) -> None:
    for table in file_tables(result):
        out.print(table)
    for line in machine_lines(result):
        out.print(escape(line), highlight=False)
    if result.contended:
        err.print(f"[yellow]note:[/yellow] {contended_note(result)}")
    for c in result.checks:
        if c.ok is False:
            err.print(f"[yellow]warning:[/yellow] check failed: {escape(c.name)}: {escape(c.detail)}")
