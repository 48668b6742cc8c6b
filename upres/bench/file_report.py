"""The file-to-file bench as text: the cells and lines of its tables (the terminal renders them in
`upres.cli.render_bench`), the markdown section and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from upres.bench.file_rows import AGREE_LEVELS, STARTUP, FileRow
from upres.bench.file_targets import compute_fraction, naive_speedup
from upres.bench.files import FileBenchResult
from upres.bench.stats import Spread
from upres.core.atomic import atomic_write_text

HEAD = ["contender", "seconds median (min-max)", "MP/s out", "x bare compute", "x naive loop"]
# Each upres row beside the rows it is compared with; anything else keeps its run order after these.
ORDER = ("upres-fp32", "naive-fp32", "compute-fp32", "upres-int8", "naive-int8", "compute-int8",
         "large-upres-fp32", "large-compute-fp32", "startup-upres", "startup-imports")
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni")
REGENERATE = "python benchmarks/file_bench.py --json docs/file_bench.json --into docs/BENCHMARKS.md"


def _spread(s: Spread | None, digits: int = 2, unit: str = "") -> str:
    if s is None:
        return "-"
    return f"{s.median:.{digits}f}{unit} ({s.low:.{digits}f}-{s.high:.{digits}f})"


def ordered(result: FileBenchResult) -> list[FileRow]:
    rank = {k: i for i, k in enumerate(ORDER)}
    return sorted(result.rows, key=lambda r: rank.get(r.key, len(ORDER)))


def cells(result: FileBenchResult, row: FileRow) -> list[str]:
    if row.status != "ok":
        return [row.name, f"failed: {row.reason}", "-", "-", "-"]
    # Start-up rows measure a fixed cost, not throughput: MP/s of a 32x24 input says nothing.
    mp_s = "-" if row.case == STARTUP else _spread(row.mp_s)
    return [row.name, _spread(row.spread), mp_s, _spread(compute_fraction(result.rows, row), unit="x"),
            _spread(naive_speedup(result.rows, row), unit="x")]


def _flag_text(m: dict[str, object]) -> str:
    simd = m.get("simd") or []
    return ", ".join(f"{f} {'yes' if f in simd else 'no'}" for f in FLAGS)  # type: ignore[operator]


def machine_lines(result: FileBenchResult) -> list[str]:
    m = result.machine
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    load = ", ".join(f"{label} {v:.2f}" for label, v in (("before", result.load_before),
                                                         ("after", result.load_after)) if v is not None)
    share = result.others_cpu_share
    others = ("CPU time of other processes not measured" if share is None else
              f"other processes used {100 * share:.0f}% of all cores' time during the timed runs")
    return [f"CPU: {m.get('cpu', '?')}, {m.get('cores', '?')} cores; {_flag_text(m)} "
            f"(read from /proc/cpuinfo at run time)",
            f"Threads: {result.threads} for every contender (ONNX Runtime intra-op threads)",
            f"Software: {versions}",
            f"Load average (1 min): {load or 'unknown'}; {others}"]


def workload_line(result: FileBenchResult) -> str:
    w, cfg = result.workload, result.config
    width, height = cfg["size"]
    text = (f"{w['source']} resized to {width}x{height}, x4 to "
            f"{4 * width}x{4 * height} PNG ({w['output_mp']:.1f} MP out in all)")
    if w.get("large_mp"):
        lw, lh = cfg["large_size"]
        text += f"; one {lw}x{lh} photo to {4 * lw}x{4 * lh} ({w['large_mp']:.0f} MP)"
    tw, th = cfg["tiny_size"]
    return text + f"; a {tw}x{th} image for start-up"


def repeats_text(result: FileBenchResult) -> str:
    n = result.config["repeats"]
    text = f"{n} repeat{'s' if n != 1 else ''}"
    # Results written before start-up was sampled more often ran it once per repeat.
    k = result.config.get("startup_runs", 1)
    return text + (f" (start-up: {k} runs of each per repeat, in turn)" if k > 1 else "")


def _others_used(result: FileBenchResult) -> str:
    share = result.others_cpu_share
    return f" ({100 * share:.0f}% of the CPU time)" if share is not None else ""


def contended_note(result: FileBenchResult) -> str:
    return (f"other processes shared the CPU during this run{_others_used(result)}: these timings "
            "are contended, not results")


def write_json(result: FileBenchResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result.to_json(), indent=2))


# ---- markdown ----------------------------------------------------------------------------------


def _md_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def render_markdown(result: FileBenchResult) -> str:
    """The section that heads docs/BENCHMARKS.md: every number comes from the result object."""
    met = {True: "yes", False: "**no**", None: "-"}
    targets = _md_table(["target", "goal", "measured (median, min-max)", "met", "note"],
                        [[t.name, t.goal, t.value or "-", met[t.met], t.note] for t in result.targets()])
    checks = _md_table(["check", "ok", "detail"],
                       [[c.name, met[c.ok], c.detail] for c in result.checks])
    banner = ("> **Contended run: these figures are not results.** Other processes shared the CPU "
              f"during the run{_others_used(result)}. Rerun on a quiet machine; the ratios between "
              "contenders, which take turns, are less distorted than the seconds.\n\n"
              if result.contended else "")
    command = result.command or REGENERATE
    machine = "\n".join(f"- {line}." for line in machine_lines(result))
    return f"""## File to file: a folder of photos in, PNG files out

<!-- Generated by benchmarks/file_bench.py: edit upres/bench/file_report.py, not this section. -->

{banner}What a user waits for: {workload_line(result)}. Every contender is a fresh process
timed from start to exit (interpreter, imports, model load, decode, compute, encode, write), into an
empty output folder; {repeats_text(result)}, median and min-max. Measured with
`{command}` ({result.started}, {_duration(result.seconds)}).

{_md_table(HEAD, [cells(result, r) for r in ordered(result)])}

### Targets

{targets}

### Checks

{checks}

### Machine

{machine}

### Method

- **naive loop**: `upres/bench/naive_loop.py`, the ten lines a user writes: for each image in
  sorted order `cv2.imread`, BGR->RGB float32 /255 NCHW, one `InferenceSession.run` on the whole
  image (CPU provider, default session options but the thread count), clip, x255, round, uint8,
  `cv2.imwrite` PNG at OpenCV's default settings. FP32 `coarse-x4.onnx`, INT8 `coarse-x4.int8.onnx`.
- **upres run**: `python -m upres run DIR -o OUT --scale 4 --mode faithful --overwrite -q --threads N`
  (`--precision int8` for INT8): upres's tile plan, exact halos, its own decode/encode pipeline.
- **bare compute**: `upres/bench/file_compute.py` decodes every image and creates the session
  (upres's session options) before the clock starts, then times only `session.run` on each whole
  image. It is the floor of any file-to-file run of the same network.
- **x bare compute** = bare compute seconds / the row's seconds, same images and precision: the share
  of the user's wait that is the network itself (1.00 = no overhead at all). **x naive loop** = naive
  loop seconds / upres seconds, same precision (> 1 = upres is faster). Ratios are taken run by run
  between runs of the same repeat (one after the other for the start-up pair), so a machine whose
  speed drifts during the bench moves both sides alike; the median of those ratios, and their range.
- **Fairness**: the contenders take turns repeat by repeat, the first one rotating, so a load change
  is shared by all. One untimed `upres run` per precision comes first, because the first run ever
  measures and caches the model's memory use (a returning user's state).
- **Outputs**: upres's PNGs are compared with the naive loop's, pixel by pixel: upres tiles with
  exact halos, the naive loop runs each image in one piece, so they agree within {AGREE_LEVELS} level
  (rounding); a larger difference is reported under Checks, never hidden.

Regenerate: `{REGENERATE}` (replaces this section and keeps the rest of the page;
`upres bench --files` prints the same tables).
"""
