"""Runtime numbers for docs/RUNTIME.md: tiling overhead, memory target, speed vs PyTorch eager.

    python benchmarks/runtime_bench.py --out docs/runtime_bench.json [--repeats 3] [--skip-memory]

Every figure is the median of `--repeats` runs with its min..max spread, measured in this process
(or, for memory, a child process's peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
from upres.batch import BatchRunner, RunOptions  # noqa: E402
from upres.bench.eager import tile_process  # noqa: E402
from upres.runtime.chain_factory import build_chain  # noqa: E402
from upres.runtime.memory import default_memory_target  # noqa: E402
from upres.runtime.tiling import plan_grid  # noqa: E402
from upres.runtime.upscale import upscale_array  # noqa: E402


def test_image(height: int, width: int) -> np.ndarray:
    """A photo-like image: the bundled sample, tiled with mirroring to the size asked for."""
    with Image.open(ROOT / "upres" / "samples" / "sample.png") as im:
        base = np.asarray(im.convert("RGB"))
    reps = (height // base.shape[0] + 2, width // base.shape[1] + 2)
    row = np.concatenate([base, base[:, ::-1]], axis=1)
    tiled = np.concatenate([row, row[::-1]], axis=0)
    return np.tile(tiled, (reps[0] // 2 + 1, reps[1] // 2 + 1, 1))[:height, :width]


def timed(fn, repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def tiling_overhead(mode: str, size: int, repeats: int, threads: int) -> dict[str, object]:
    setup = build_chain(mode, 4, backend="ort-cpu", threads=threads)
    img = test_image(size, size).astype(np.float32) / 255.0
    # The plan `upres run --tile auto` makes with its default memory target.
    plan = BatchRunner(setup, RunOptions(memory=default_memory_target())).plan(size, size)
    auto_grid = plan.grid
    whole = timed(lambda: upscale_array(img, plan_grid(size, size, 0, 0), setup.chain), repeats)
    tiled = timed(lambda: upscale_array(img, auto_grid, setup.chain), repeats)
    mp = size * size * 16 / 1e6
    return {"mode": mode, "input": f"{size}x{size}", "auto_tile": plan.tile,
            "halo": setup.chain.halo, "whole": whole, "tiled": tiled,
            "whole_mp_s": mp / whole["median_s"], "tiled_mp_s": mp / tiled["median_s"],
            "tiled_over_whole": whole["median_s"] / tiled["median_s"]}


def versus_eager(size: int, repeats: int, threads: int) -> dict[str, object]:
    import torch

    from upres.models.train import load_model

    torch.set_num_threads(threads)
    model = load_model(ROOT / "upres" / "weights" / "coarse-x4.pt")
    setup = build_chain("faithful", 4, backend="ort-cpu", threads=threads)
    img = test_image(size, size).astype(np.float32) / 255.0
    grid = plan_grid(size, size, 256, setup.chain.halo)
    ours = timed(lambda: upscale_array(img, grid, setup.chain), repeats)
    results = {"input": f"{size}x{size}", "threads": threads, "upres_tile256": ours}
    for tile in (256, 512):
        results[f"eager_tile{tile}_pad10"] = timed(lambda t=tile: tile_process(model, img, 4, t),
                                                   repeats)
    whole = upscale_array(img, plan_grid(size, size, 0, 0), setup.chain)
    eager = tile_process(model, img, 4, 256)
    results["eager_seam_max_abs_255"] = float(np.abs(eager - whole).max() * 255)
    results["upres_seam_max_abs_255"] = float(
        np.abs(upscale_array(img, grid, setup.chain) - whole).max() * 255)
    best_eager = min(results[f"eager_tile{t}_pad10"]["median_s"] for t in (256, 512))
    results["speedup_vs_best_eager"] = best_eager / ours["median_s"]
    return results


def memory_target_run(size: int, memory: str, mode: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.png"
        Image.fromarray(test_image(size, size)).save(src, compress_level=1)
        code = (
            "import sys, json\nfrom upres.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
            "print(json.dumps({'rc': rc, 'peak': peak}))\n")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, "run", str(src), "-o", f"{tmp}/out",
                               "--memory", memory, "--mode", mode, "--quiet",
                               "--report", f"{tmp}/r.json"],
                              capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - t0
        status = json.loads(proc.stdout.strip().splitlines()[-1])
        report = json.loads(Path(f"{tmp}/r.json").read_text())
        out = Path(tmp) / "out" / "big.tif"
        if not out.exists():
            return {"input": f"{size}x{size}", "memory": memory, "rc": status["rc"],
                    "peak_rss_mib": status["peak"] / 2**20, "seconds": seconds,
                    "streamed": False, "plan": report["images"][0]["plan"]}
        with tifffile.TiffFile(out) as tif:
            page = tif.pages[0]
            shape, bigtiff, tiled = page.shape, tif.is_bigtiff, page.is_tiled
        return {"input": f"{size}x{size}", "memory": memory, "mode": mode, "rc": status["rc"],
                "peak_rss_mib": status["peak"] / 2**20, "seconds": seconds, "streamed": True,
                "output_shape": list(shape), "bigtiff": bigtiff, "tiled": tiled,
                "plan": report["images"][0]["plan"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "runtime_bench.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--overhead-size", type=int, default=2000)
    parser.add_argument("--eager-size", type=int, default=1000)
    parser.add_argument("--memory-size", type=int, default=6000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--modes", nargs="+", default=["faithful", "hybrid"])
    parser.add_argument("--memory-mode", default="faithful")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor(),
                    "python": platform.python_version()},
        "command": " ".join(sys.argv),
    }
    for mode in args.modes:
        results[f"overhead_{mode}"] = tiling_overhead(mode, args.overhead_size, args.repeats,
                                                      args.threads)
        print(json.dumps(results[f"overhead_{mode}"]), flush=True)
    results["versus_eager"] = versus_eager(args.eager_size, args.repeats, args.threads)
    print(json.dumps(results["versus_eager"]), flush=True)
    if not args.skip_memory:
        results["memory"] = memory_target_run(args.memory_size, "1GiB", args.memory_mode)
        print(json.dumps(results["memory"]), flush=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
