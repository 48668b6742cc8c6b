"""The Python API's overhead, for docs/API.md: a warm ``Upscaler.upscale`` against the bare
ONNX Runtime compute of the same model, and RSS over many repeated calls.

    python benchmarks/api_bench.py [--size 256] [--runs 15] [--calls 1000] [--rss-size 64]

Speed: ``Upscaler(scale=4, mode="faithful")`` runs one network (coarse-x4), so its bare compute is
one ``session.run`` of that ONNX file on the same image as NCHW float32, made beforehand. Both
are warmed up, then called alternately (load from other processes hits both alike); the median
of ``--runs`` calls each. The API's call includes what a caller gets from it and the bare run
does not: the uint8 -> float conversion, the tile plan, the NCHW copy, and clip + round +
quantise of the output into uint8 HxWx3. The bare session is ONNX Runtime's default (all cores,
spinning threads); upres's sessions do not spin (idle cores stay idle between tiles).

Memory: ``--calls`` calls on a ``--rss-size`` image after 20 warm-up calls; RSS (VmRSS) before and
after, and the growth in percent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import upres
from upres.bench import machine
from upres.runtime.catalog import builtin_path
from upres.runtime.memory import current_rss


def _photo(size: int) -> np.ndarray:
    from PIL import Image

    sample = Path(upres.__file__).parent / "samples" / "sample.png"
    with Image.open(sample) as im:
        # Real content, tiled to the size asked for (the sample is 240x160).
        rgb = np.asarray(im.convert("RGB"))
    reps = (size // rgb.shape[0] + 1, size // rgb.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(rgb, reps)[:size, :size])


def _seconds(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def speed(size: int, runs: int) -> dict[str, float]:
    image = _photo(size)
    session = ort.InferenceSession(str(builtin_path("coarse-x4")), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255)
    with upres.Upscaler(scale=4, mode="faithful") as up:
        for _ in range(3):
            up.upscale(image)
            session.run(None, {name: x})
        api, bare = [], []
        for _ in range(runs):
            api.append(_seconds(lambda: up.upscale(image)))
            bare.append(_seconds(lambda: session.run(None, {name: x})))
    a, b = statistics.median(api), statistics.median(bare)
    return {"size": size, "runs": runs, "api_median_s": round(a, 4), "bare_median_s": round(b, 4),
            "api_min_s": round(min(api), 4), "bare_min_s": round(min(bare), 4),
            "ratio": round(b / a, 3)}


def memory(size: int, calls: int) -> dict[str, float]:
    image = _photo(size)
    with upres.Upscaler(scale=4, mode="faithful") as up:
        for _ in range(20):
            up.upscale(image)
        before = current_rss()
        for _ in range(calls):
            up.upscale(image)
        after = current_rss()
    return {"size": size, "calls": calls, "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "growth_percent": round(100 * (after - before) / before, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rss-size", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    m = machine.describe()
    print(f"machine: {machine.one_line(m)}")
    print(f"cpu flags: {', '.join(m['simd']) or 'no AVX2'}; vnni: {m['vnni']}; "
          f"onnxruntime {ort.__version__}; load average {machine.load_average()}")
    s = speed(args.size, args.runs)
    print(f"warm upscale() {s['size']}x{s['size']} x4 faithful: median {s['api_median_s']} s "
          f"(min {s['api_min_s']}); bare session.run: median {s['bare_median_s']} s "
          f"(min {s['bare_min_s']}); API at {s['ratio']}x the bare compute (target >= 0.7x)")
    r = memory(args.rss_size, args.calls)
    print(f"{r['calls']} calls on {r['size']}x{r['size']}: RSS {r['rss_before_mib']} MiB -> "
          f"{r['rss_after_mib']} MiB ({r['growth_percent']:+}%, target within 5%)")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "speed": s, "memory": r}, indent=2) + "\n")


if __name__ == "__main__":
    main()
