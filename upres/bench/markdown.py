"""docs/BENCHMARKS.md from a bench result: every number in it comes from the result object."""

from __future__ import annotations

from upres.bench import machine
from upres.bench.report import cells, headers, peak_line
from upres.bench.rows import Row
from upres.bench.runner import BenchResult

# Published x4 Set5 Y-PSNR (the papers' own numbers, MATLAB bicubic LR) for context only.
PUBLISHED_SET5 = {"fsrcnn": ("FSRCNN", 30.71), "espcn": ("ESPCN", 30.90)}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _banner(result: BenchResult) -> str:
    if not result.contended:
        return ""
    share = result.others_cpu_share
    used = (f"Other processes used {100 * share:.0f}% of the machine's CPU time during the run"
            if share is not None else f"The 1-minute load average was {_load(result.load_before)}")
    return (
        f"> **Contended run: these figures are not results.** {used} "
        f"({result.machine['cores']} cores): other jobs shared the CPU while this ran. Rerun on a "
        "quiet machine with the command under Regenerate; the ratios between contenders are less "
        "distorted than the absolute figures (contenders take turns pass by pass) but still not "
        "trustworthy, and the yes/no under Targets is no verdict. (With every core asked for, "
        "torch's OpenMP pool stalls whenever another process holds a core, so the eager loop "
        "suffers most from contention.)\n\n")


def _load(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def _others(result: BenchResult) -> str:
    share = result.others_cpu_share
    if share is None:
        return "CPU time of other processes not measured"
    return f"other processes used {100 * share:.0f}% of all cores' time during the run"


def _machine(result: BenchResult) -> str:
    m = result.machine
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    vnni = ("has VNNI (INT8 dot products in one instruction)" if m.get("vnni") else
            "has **no** VNNI (no avx512_vnni / avx_vnni flag): INT8 runs on AVX2 "
            "multiply-add pairs, so expect a smaller INT8 gain than on a VNNI machine")
    return (f"- CPU: {machine.one_line(m)}; read from /proc/cpuinfo at run time; {vnni}.\n"
            f"- Threads: {result.threads} for every contender (ONNX Runtime intra-op threads, "
            "torch.set_num_threads, cv2.setNumThreads).\n"
            f"- Software: {versions}.\n"
            f"- Load average (1 min): {_load(result.load_before)} before, "
            f"{_load(result.load_after)} after; {_others(result)}.\n"
            f"- Run: {result.started}, {_duration(result.seconds)}.")


def _contenders(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        what = r.describe or (f"{r.status}: {r.reason}" if r.status != "ok" else "")
        lines.append(f"- **{r.name}** (`{r.key}`): {what}")
    return "\n".join(lines)


def _targets(result: BenchResult) -> str:
    met = {True: "yes", False: "**no**", None: "-"}
    return table(["target", "goal", "measured (median, min-max)", "met", "note"],
                 [[t.name, t.goal, t.value or "-", met[t.met], t.note] for t in result.targets])


def _peer_note(result: BenchResult) -> str:
    """What the peers score here against what their papers report (the protocols differ)."""
    quality_set = "Set5"
    bicubic = result.row("bicubic")
    notes = []
    for key, (paper, published) in PUBLISHED_SET5.items():
        row = result.row(key)
        if row is None or quality_set not in row.psnr:
            continue
        notes.append(f"{row.name} scores {row.psnr[quality_set]:.2f} dB on Set5 here; the "
                     f"{paper} paper reports {published:.2f} dB for its own weights")
    if not notes:
        return ""
    base = (f" (bicubic: {bicubic.psnr[quality_set]:.2f} dB)" if bicubic and quality_set in
            bicubic.psnr else "")
    return ("- Peers' quality: " + "; ".join(notes) + base + ". The dnn_superres graphs are "
            "third-party TensorFlow reproductions that run the network on luma only (chroma is "
            "bicubic) and were trained on their authors' own LR pipeline; all contenders here get "
            "the same LR inputs made with upres's MATLAB-style bicubic. "
            "`python benchmarks/peers.py` prints the per-image detail.\n")


REGENERATE = "python benchmarks/run_bench.py"


def render(result: BenchResult, command: str, plot: str | None) -> str:
    """The whole file. `command` is what produced it; the Regenerate section names the canonical
    full run, whatever this one was."""
    cfg = result.config
    sets = tuple(cfg.get("sets", ()))
    body = [cells(r, sets) for r in result.rows]
    plot_md = (f"![quality vs speed]({plot})\n\nOne point per contender that has a Set5 PSNR; "
               "bars are the min-max of the passes; the line is the Pareto front (nothing is both "
               "faster and better than a point on it).\n" if plot else
               "(No plot: matplotlib missing or no Set5 numbers.)\n")
    return f"""# Benchmarks

<!-- Generated by benchmarks/run_bench.py: edit upres/bench/markdown.py, not this file. -->

## Compute only: decoded images in memory

{_banner(result)}Measured with `{command}`.

upres side by side with what a CPU user would otherwise run, on the same images,
the same thread count, in one process run (issue 6). Profile **{cfg['profile']}**: x4, timed inputs
{cfg['image_count']} x {cfg['image_size']}x{cfg['image_size']} px, {cfg['passes']} timed passes
after {cfg['warmup']} warm-up pass(es); seam check on a {cfg['seam_size']}x{cfg['seam_size']} input.

### Machine

{_machine(result)}

### Results

{table(headers(sets), body)}

{peak_line(result)}.

{plot_md}
### Targets (issue 6)

{_targets(result)}

### Contenders

{_contenders(result.rows)}

### Method

- **Same work for all**: uint8 RGB in, uint8 RGB x4 out, in memory (file decode/encode left out
  for everyone). Inputs are mirrored tilings of the bundled sample photo at different offsets and
  quarter turns, all the same size.
- **Isolation and fairness**: each contender runs in its own worker process (its libraries, thread
  pools and memory are its own). The workers stay alive and take turns: in every round each runs
  the timed images once, the starting contender rotating, followed by the GEMM peak runs, so a load
  change on the machine is shared by all rather than pinned on whoever ran last.
- **MP/s**: output megapixels / wall time of one pass over the timed images; the table gives the
  median over the passes and the min-max. **p50 / p95**: per-image latency pooled over all passes.
  Ratios (targets) are ratios of medians; their range pairs the extremes of the two spreads.
- **Peak RSS**: VmHWM of the contender's worker read right after its timed passes (load, warm-up
  and passes; it includes the Python interpreter and the contender's libraries, e.g. torch).
- **Seam error**: max and mean |tiled - whole| in 0..255 levels between the contender's output and
  the same model run on the whole image in one piece. upres tiles with a halo of the model's
  measured receptive field, so its tiles add nothing; the eager loop pads tiles by 10 px whatever
  the receptive field (15 px for coarse-x4), so its seams show. "n/a" = that contender did not
  cut this input.
- **Quality**: Y-PSNR (BT.601, 4 px border shaved) on Set5 / Set14 x4, HR mod-cropped, LR
  made with upres's MATLAB-style antialiased bicubic (Pillow), as `upres eval` does.
{_peer_note(result)}- **GFLOP/s** = model FLOPs per output pixel x output pixels/s. upres and the eager loop:
  the count in the ONNX metadata (coarse-x4; hybrid adds the refine stage). dnn_superres: 2 x the conv
  weights of the TF graph / 16 (all its convs run at LR size). **Peak**: a {cfg['gemm_size']}^3
  MatMul (FP32) and MatMulInteger u8 x s8 (INT8) through ONNX Runtime with the same threads and
  session options as upres; INT8 contenders are compared with the INT8 peak (counting all of the
  network's FLOPs, although the quantizer may keep a few layers in FP32: see the model's card).

### Regenerate

```
{REGENERATE}
```

This writes this file and `docs/bench_pareto.png` in one process run (`--json FILE` keeps every
number; `--from-json FILE` re-renders both from it without measuring). `upres bench` alone prints
the quick table (< 2 min on 2 idle cores); `upres bench --full --json FILE` gives the full numbers
as JSON. The plot needs matplotlib (`pip install -e '.[bench]'`) and the peers OpenCV's contrib
modules (installed with upres); without them those parts are skipped with a reason.
"""
