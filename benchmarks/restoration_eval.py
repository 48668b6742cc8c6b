"""Restoration on degraded inputs: bicubic, faithful and hybrid at several --denoise settings.

    python benchmarks/restoration_eval.py --datasets ../shared/datasets --json docs/restoration_eval.json

The photos: the first six of BSD100 and of Set14 (sorted by name), and Set5 whole for the clean
check. Each degradation (upres/degraded_eval.py: reproducible, seeded by image and kind; never used
to train or tune) is scored with Y-PSNR / SSIM (shave = scale), "flat x clean" (high-frequency
energy in the flattest quarter of the picture, relative to the same method on the clean input)
and the output's blockiness. Prints markdown tables and the CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from upres.bench.machine import describe, one_line
from upres.degraded_eval import (
    DEGRADATIONS,
    DegradedScore,
    Upscale,
    bicubic,
    chain_upscale,
    evaluate_degraded,
    summary,
)
from upres.evaluate import EVAL_SUFFIXES
from upres.runtime.chain_factory import build_chain
from upres.runtime.denoise import DenoiseSetting

SCALE = 4
METHODS = {  # name -> (mode, --denoise)
    "faithful 0": ("faithful", "0"),
    "faithful auto": ("faithful", "auto"),
    "faithful 0.5": ("faithful", "0.5"),
    "faithful 1": ("faithful", "1"),
    "hybrid 0": ("hybrid", "0"),
    "hybrid auto": ("hybrid", "auto"),
}


def photo_set(datasets: Path, tmp: Path) -> Path:
    folder = tmp / "photos12"
    folder.mkdir()
    for name in ("BSD100", "Set14"):
        files = sorted(p for p in (datasets / name).iterdir() if p.suffix.lower() in EVAL_SUFFIXES)
        for path in files[:6]:
            (folder / f"{name}-{path.name}").symlink_to(path.resolve())
    return folder


def upscalers(threads: int) -> dict[str, Upscale]:
    made: dict[str, Upscale] = {"bicubic": bicubic(SCALE)}
    for name, (mode, denoise) in METHODS.items():
        setup = build_chain(mode, SCALE, threads=threads, denoise=DenoiseSetting.parse(denoise))
        made[name] = chain_upscale(setup)
    return made


def flat_ratio(scores: list[DegradedScore], clean: list[DegradedScore]) -> float:
    return float(np.mean([s.flat_noise for s in scores]) / max(np.mean([c.flat_noise for c in clean]), 1e-9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(one_line(describe()))
    methods = upscalers(args.threads)
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_set(args.datasets, Path(tmp))
        for method, run in methods.items():
            clean = evaluate_degraded(folder, SCALE, "clean", run)
            results[method] = {}
            for degradation in DEGRADATIONS:
                scores = (clean if degradation == "clean"
                          else evaluate_degraded(folder, SCALE, degradation, run))
                results[method][degradation] = {**summary(scores), "flat_x_clean": flat_ratio(scores, clean)}
            print(f"done: {method}", flush=True)
    set5 = {name: summary(evaluate_degraded(args.datasets / "Set5", SCALE, "clean", methods[name]))
            for name in ("faithful 0", "faithful auto")}
    print(f"\n12 photos (6 BSD100 + 6 Set14) x{SCALE}: Y-PSNR / SSIM, flat x clean, blockiness")
    print("| input | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for degradation in DEGRADATIONS:
        cells = []
        for method in methods:
            r = results[method][degradation]
            cell = f"{r['psnr']:.2f} / {r['ssim']:.3f}"
            if degradation != "clean":
                cell += f" x{r['flat_x_clean']:.1f}"
            if "strength" in r and method.endswith("auto"):
                cell += f" (s {r['strength']:.2f})"
            cells.append(cell)
        print(f"| {degradation} | " + " | ".join(cells) + " |")
    print("\nblockiness of the output (JPEG input):",
          ", ".join(f"{m} {results[m]['jpeg']['blockiness']:.3f}" for m in methods))
    print(f"\nSet5 x{SCALE} clean: "
          + ", ".join(f"{m} {v['psnr']:.2f} / {v['ssim']:.4f}" for m, v in set5.items()))
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "scale": SCALE, "photos": results,
                                         "set5_clean": set5}, indent=2))


if __name__ == "__main__":
    main()
