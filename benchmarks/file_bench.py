"""The file-to-file bench on its own: a folder of photos in, x4 PNGs out, each run a fresh process.

    python benchmarks/file_bench.py --json files.json --markdown files.md
    python benchmarks/file_bench.py --from-json files.json --markdown files.md   # re-render only

Same code as `upres bench --files` (upres.bench.files); the markdown is the section that heads
docs/BENCHMARKS.md. Run it on a quiet machine: it times whole processes, so other work shows.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from upres.bench.doc_sections import with_files_section
from upres.bench.file_report import render_markdown, write_json
from upres.bench.files import FileBenchResult
from upres.cli.commands.bench import files_main
from upres.cli.render_bench import print_file_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--markdown", type=Path, help="write the docs/BENCHMARKS.md headline section here")
    parser.add_argument("--into", type=Path, help="replace the file-to-file section of this page "
                        "(docs/BENCHMARKS.md), keeping the rest")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--datasets", type=Path, help="folder holding BSD100/ (default: ../shared/datasets)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-large", action="store_true", help="skip the one 48 MP output case")
    parser.add_argument("--from-json", type=Path, help="render this earlier result; measure nothing")
    args = parser.parse_args(argv)
    command = "python benchmarks/file_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))
    if args.from_json is None:
        json_out = args.json or (Path(tempfile.mkdtemp()) / "file_bench.json")
        code = files_main(json_out, args.threads, args.datasets, args.repeats, not args.no_large,
                          args.markdown, command)
        if args.into and json_out.is_file():
            result = FileBenchResult.from_json(json.loads(json_out.read_text()))
            args.into.write_text(with_files_section(args.into.read_text(), render_markdown(result)))
        return code
    try:
        result = FileBenchResult.from_json(json.loads(args.from_json.read_text()))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: --from-json {args.from_json}: {exc}", file=sys.stderr)
        return 2
    print_file_result(result, Console(), Console(stderr=True))
    if args.json:
        write_json(result, args.json)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(render_markdown(result))
    if args.into:
        # The section heads docs/BENCHMARKS.md; the compute-only tables below it stay.
        args.into.write_text(with_files_section(args.into.read_text(), render_markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
