"""FP32 vs INT8 for docs/PRECISION.md: throughput on this CPU and Set5/Set14 Y-PSNR.

    python benchmarks/int8_bench.py [--models coarse-x4 coarse-x2] [--runs 9] [--out FILE.json]

Speed: one fixed random LR input (--size, 256x256), the runtime's ORT CPU backend, the same threads
for both models (all cores unless --threads), FP32 and INT8 calls interleaved so load from other
processes hits both alike; median and min..max of --runs calls, in output megapixels per second.
The 1-minute load average before the runs is recorded: above ~the core count, other jobs shared the
CPU and the absolute numbers are low and noisy (the ratio is more robust, not immune).
Quality: the standard protocol (bicubic_down LR, whole image, Y-PSNR with shave = scale).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from upres.calibration.accuracy import cpu_facts, measure_speed
from upres.calibration.benchmark import score_test_sets
from upres.core.model import read_info
from upres.runtime.catalog import builtin_path

ROOT = Path(__file__).resolve().parents[1]
TEST_SETS = ("Set5", "Set14")


def bench_model(name: str, size: int, runs: int, threads: list[int], datasets: Path | None) -> dict[str, Any]:
    fp32, int8 = builtin_path(name, "fp32"), builtin_path(name, "int8")
    if not int8.is_file():
        raise FileNotFoundError(f"{int8} not found: run benchmarks/make_int8.py first")
    info = read_info(fp32)
    scale = info.scale if info else int(name.rsplit("x", 1)[1])
    speed = []
    for t in threads:
        run = measure_speed({"fp32": fp32, "int8": int8}, scale, size=size, runs=runs, threads=t)
        speed.append({**asdict(run), "speedup": round(run.speedup("int8"), 3), "contended": run.contended})
    quality = score_test_sets({"fp32": fp32, "int8": int8}, scale, [datasets / s for s in TEST_SETS]) \
        if datasets else {}
    return {"model": name, "scale": scale, "speed": speed, "quality": quality}


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="FP32 vs INT8 (ORT CPU)")
    for col in ("model", "threads", "FP32 MP/s", "INT8 MP/s", "speed-up", "load", "quality (Y-PSNR, dB)"):
        t.add_column(col)
    for r in results:
        q = "; ".join(f"{k}: {v['fp32']['psnr']:.2f} -> {v['int8']['psnr']:.2f} ({-v['loss_db']:+.3f})"
                      for k, v in r["quality"].items())
        for s in r["speed"]:
            m = s["models"]
            t.add_row(r["model"], str(s["threads"]),
                      f"{m['fp32']['mp_per_s']:.3f} ({m['fp32']['min_ms']:.0f}-{m['fp32']['max_ms']:.0f} ms)",
                      f"{m['int8']['mp_per_s']:.3f} ({m['int8']['min_ms']:.0f}-{m['int8']['max_ms']:.0f} ms)",
                      f"x{s['speedup']:.2f}",
                      f"{s['load_before']:.1f}" + (" shared" if s["contended"] else ""), q)
            q = ""
    return t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["coarse-x4", "coarse-x2"])
    parser.add_argument("--size", type=int, default=256, help="LR input side")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="0 = all cores")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be >= 5 (a median and a spread need a few runs)")
    datasets = None if args.skip_quality else args.datasets
    if datasets and not all((datasets / s).is_dir() for s in TEST_SETS):
        print(f"error: {datasets} has no {' / '.join(TEST_SETS)} (--datasets, or --skip-quality)",
              file=sys.stderr)
        return 2
    results = [bench_model(m, args.size, args.runs, args.threads, datasets) for m in args.models]
    Console().print(table(results))
    doc = {"machine": cpu_facts(), "size": args.size, "runs": args.runs, "results": results}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    else:
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
