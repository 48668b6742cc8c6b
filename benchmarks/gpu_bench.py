"""torch-cuda on the CUDA-stream pipeline: 1 stream vs 3 streams, on a GPU host.

    python benchmarks/gpu_bench.py [--size 1024] [--tile 256] [--memory 4GiB] [--repeats 3]
                                   [--json OUT]

For each mode (faithful, hybrid; x4) and stream count: median wall time of a tiled upscale of a
photo-like size x size image (the bundled sample, mirrored), output megapixels per second, the
device memory plan against the target, the measured peak (pool + PyTorch's reserved memory, and
the driver's view from cudaMemGetInfo), and from the CUDA event times how much of the copy time
ran while another tile computed. Prints a compact table; --json keeps every number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from upres.bench.images import mirror_tile, sample  # noqa: E402
from upres.core.sizes import format_size, parse_size  # noqa: E402

SCALE = 4


def _one(mode: str, streams: int, image: np.ndarray, tile: int, target: int,
         repeats: int) -> tuple[dict[str, Any], np.ndarray]:
    from upres.gpu.pipeline import PipelineStats
    from upres.gpu.torch_backend import reset_torch_peak
    from upres.runtime.chain_factory import build_chain
    from upres.runtime.tiling import plan_grid
    from upres.runtime.upscale import upscale_array

    setup = build_chain(mode, SCALE, backend="torch-cuda", memory=target, streams=streams)
    chain = setup.chain
    try:
        core = min(tile, chain.plan.core)
        grid = plan_grid(image.shape[0], image.shape[1], core, chain.halo)
        upscale_array(image[: 2 * core, : 2 * core], plan_grid(2 * core, 2 * core, core, chain.halo),
                      chain)  # warm-up: cuDNN heuristics, lazy module loading
        reset_torch_peak()
        times = []
        out = np.empty(0)
        for _ in range(repeats):
            chain.pipeline.stats = PipelineStats()
            t0 = time.perf_counter()
            out = upscale_array(image, grid, chain)
            times.append(time.perf_counter() - t0)
        memory = chain.measured_memory()  # the same numbers `upres run` reports
        seconds = statistics.median(times)
        mp = out.shape[0] * out.shape[1] / 1e6
        row = {
            "mode": mode, "streams": streams, "tiles": len(grid.tiles), "core": core,
            "seconds_median": seconds, "seconds_min": min(times), "seconds_max": max(times),
            "mp_per_s": mp / seconds, "plan": chain.plan.to_dict(), "pool_bytes": chain.pool_bytes,
            "torch_reserved_peak": memory["peak_allocated"] - chain.pool_bytes,
            "peak_upres": memory["peak_allocated"], "driver_used": memory["peak_driver"],
            "target": target,
            "pipeline": chain.pipeline.stats.summary(),
        }
        return row, out
    finally:
        chain.close()


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'mode':9} {'str':>3} {'tiles':>5} {'median s':>9} {'MP/s':>7} {'x vs 1':>6} "
            f"{'planned':>10} {'peak':>10} {'driver':>10} {'target':>10} {'copy hidden':>11}")
    lines = [head, "-" * len(head)]
    base = {r["mode"]: r["seconds_median"] for r in rows if r["streams"] == 1}
    for r in rows:
        p = r["pipeline"]
        lines.append(
            f"{r['mode']:9} {r['streams']:>3} {r['tiles']:>5} {r['seconds_median']:>9.3f} "
            f"{r['mp_per_s']:>7.1f} {base[r['mode']] / r['seconds_median']:>6.2f} "
            f"{format_size(r['plan']['total']):>10} {format_size(r['peak_upres']):>10} "
            f"{format_size(r['driver_used']):>10} {format_size(r['target']):>10} "
            f"{100 * p.get('copy_hidden_fraction', 0):>10.0f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--memory", default="4GiB")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="faithful,hybrid")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from upres.runtime.backends.select import unavailable

    why = unavailable("torch-cuda")
    if why:
        print(f"gpu_bench: skipped: {why}")
        return 0
    import torch

    from upres.gpu.cuda import device_info, init_device

    dev = init_device(0)
    target = parse_size(args.memory)
    image = np.ascontiguousarray(mirror_tile(sample(), args.size, args.size, 17, 29)
                                 .astype(np.float32) / 255.0)
    rows = []
    for mode in args.modes.split(","):
        outs = {}
        for streams in (1, 3):
            row, outs[streams] = _one(mode, streams, image, args.tile, target, args.repeats)
            rows.append(row)
        diff = float(np.abs(outs[3] - outs[1]).max())
        rows[-1]["max_abs_diff_vs_1_stream"] = diff
        rows[-2]["max_abs_diff_vs_1_stream"] = 0.0
    print(f"device: {device_info(dev.index).name} (cc {dev.compute_capability[0]}."
          f"{dev.compute_capability[1]}, {format_size(dev.total_memory)}), torch {torch.__version__}; "
          f"input {args.size}x{args.size} x{SCALE}, tile core {args.tile}, {args.repeats} repeats")
    print(_table(rows))
    for r in rows:
        p = r["pipeline"]
        if r["streams"] == 3:
            print(f"{r['mode']}: 3 vs 1 stream max abs diff {r['max_abs_diff_vs_1_stream']:.2e}; "
                  f"event sums upload {p['upload_ms']:.1f} ms, compute {p['compute_ms']:.1f} ms, "
                  f"download {p['download_ms']:.1f} ms, wall {p['wall_ms']:.1f} ms, copy under "
                  f"another tile's compute {p['copy_hidden_ms']:.1f} ms")
    print("peak = device pool + PyTorch's reserved peak (what upres allocates); driver = "
          "cudaMemGetInfo drop since start (adds the CUDA context and library code)")
    if args.json:
        args.json.write_text(json.dumps({"device": dev.name, "torch": torch.__version__,
                                         "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=2, default=str))
    over = [r for r in rows if r["peak_upres"] > r["target"]]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
