"""Choose `--denoise auto`'s mapping from measured noise/blockiness to strength, on TRAINING photos.

    python benchmarks/denoise_calibrate.py --datasets ../shared/datasets [--images 40] [--scale 4]

For each training photo (BSD200, never a test set) and each degradation of a fixed list (clean,
noise of several levels, JPEG of several qualities, grain, blur + noise + JPEG), the LR is
upscaled at every strength of the grid and scored (Y-PSNR). The mapping's four constants
(upres/runtime/denoise.py: NOISE_FROM, NOISE_SPAN, BLOCK_FROM, BLOCK_SPAN) are then searched on
a grid for the best mean PSNR, with clean photos weighted as much as all damaged ones together:
a clean photo must come out as the clean model makes it. Prints the table and the constants.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from upres.bench.machine import describe, one_line
from upres.evaluate import eval_pairs, to_u8
from upres.kernels import degrade as ops
from upres.kernels.degrade import KernelKind, ResizeKind
from upres.kernels.noise_estimate import blockiness, noise_sigma
from upres.metrics import psnr
from upres.runtime.chain_factory import build_chain
from upres.runtime.denoise import DenoiseSetting
from upres.runtime.interpolate import STEP
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

STRENGTHS = [round(i * STEP, 2) for i in range(round(1 / STEP) + 1)]


def degradations(hr: np.ndarray, lr: np.ndarray, scale: int, rng: np.random.Generator):
    f = lr.astype(np.float32)
    yield "clean", lr
    for sigma in (2, 4, 6, 9, 12):
        yield f"noise{sigma}", ops.to_u8(ops.gaussian_noise(f, sigma, False, rng))
    for quality in (90, 75, 60, 45, 30):
        yield f"jpeg{quality}", ops.to_u8(ops.jpeg(f, quality))
    for amount in (3, 6, 9):
        yield f"grain{amount}", ops.to_u8(ops.film_grain(f, amount, 0.8, rng))
    blurred = ops.convolve(hr.astype(np.float32), ops.blur_kernel(KernelKind.ISOTROPIC, 1.0, rng))
    small = ops.resize(blurred, lr.shape[1], lr.shape[0], ResizeKind.PIL_BICUBIC)
    yield "blur-noise4-jpeg75", ops.to_u8(ops.jpeg(ops.gaussian_noise(small, 4, False, rng), 75))


def measure(folder: Path, scale: int, images: int) -> list[dict]:
    setup = build_chain("faithful", scale, threads=0, denoise=DenoiseSetting(True))
    rows = []
    for i, (name, hr, lr) in enumerate(eval_pairs(folder, scale)):
        if i >= images:
            break
        rng = np.random.default_rng([7, i])
        for kind, damaged in degradations(hr, lr, scale, rng):
            x = damaged.astype(np.float32) / 255.0
            grid = plan_grid(*x.shape[:2], 0, 0)
            scores = [psnr(to_u8(upscale_array(x, grid, setup.chain_for(s))), hr, scale) for s in STRENGTHS]
            rows.append({"image": name, "kind": kind, "noise": noise_sigma(damaged),
                         "blockiness": blockiness(damaged), "psnr": scores})
        print(f"{i + 1}/{images} {name}", flush=True)
    return rows


def strength(noise: np.ndarray, block: np.ndarray, params: tuple[float, ...]) -> np.ndarray:
    n0, ns, b0, bs = params
    value = np.clip(np.maximum((noise - n0) / ns, (block - b0) / bs), 0, 1)
    return np.rint(value / STEP).astype(int)  # index into STRENGTHS


class Table:
    def __init__(self, rows: list[dict]) -> None:
        self.noise = np.array([r["noise"] for r in rows])
        self.block = np.array([r["blockiness"] for r in rows])
        self.gain = np.array([r["psnr"] for r in rows]) - np.array([[r["psnr"][0]] for r in rows])
        self.clean = np.array([r["kind"] == "clean" for r in rows])

    def objective(self, params: tuple[float, ...]) -> float:
        picked = self.gain[np.arange(len(self.gain)), strength(self.noise, self.block, params)]
        # dB over strength 0; clean photos weigh as much as all the damaged ones together.
        return float(picked[~self.clean].mean() + picked[self.clean].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None, help="write the measurements here")
    args = ap.parse_args()
    print(one_line(describe()))
    rows = measure(args.datasets / "BSD200", args.scale, args.images)
    if args.json:
        args.json.write_text(json.dumps(rows))
    grid = itertools.product(np.arange(0.8, 4.01, 0.2), np.arange(1.0, 8.01, 0.5),
                             np.arange(0.04, 0.41, 0.02), np.arange(0.1, 0.81, 0.05))
    table = Table(rows)
    best = max(grid, key=lambda p: table.objective(tuple(map(float, p))))
    params = tuple(round(float(v), 3) for v in best)
    print(f"NOISE_FROM, NOISE_SPAN = {params[0]}, {params[1]}")
    print(f"BLOCK_FROM, BLOCK_SPAN = {params[2]}, {params[3]}")
    print("| degradation | noise | blockiness | best strength | dB at best over 0 | auto strength | "
          "dB at auto over 0 |")
    print("|---|---|---|---|---|---|---|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        curve = np.mean([r["psnr"] for r in group], axis=0) - np.mean([r["psnr"][0] for r in group])
        picks = strength(np.array([r["noise"] for r in group]), np.array([r["blockiness"] for r in group]),
                         params)
        autos = [STRENGTHS[i] for i in picks]
        at_auto = np.mean([r["psnr"][i] - r["psnr"][0] for r, i in zip(group, picks, strict=True)])
        print(f"| {kind} | {np.median([r['noise'] for r in group]):.2f} | "
              f"{np.median([r['blockiness'] for r in group]):.3f} | {STRENGTHS[int(np.argmax(curve))]} | "
              f"{curve.max():+.2f} | {np.mean(autos):.2f} | {at_auto:+.2f} |")


if __name__ == "__main__":
    main()
