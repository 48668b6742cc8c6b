"""Check the published peer models in ../shared/peers and show what they score, image by image.

    python benchmarks/peers.py [--peers DIR] [--datasets DIR] [--sets Set5 Set14]

For each dnn_superres model (FSRCNN_x4, ESPCN_x4): its SHA256 against SHA256SUMS, whether it runs
here (opencv-contrib), its FLOPs per output pixel, and per-image x4 Y-PSNR next to bicubic, with
LR made two ways: upres's protocol (MATLAB-style antialiased bicubic, what `upres bench` uses) and
OpenCV INTER_AREA. If a peer only does well on one of them, it was trained for that LR pipeline:
that is the context for its row in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from upres.bench.contender import SCALE
from upres.bench.machine import cores
from upres.bench.opencv_contenders import DnnSuperresContender, tf_conv_flops_per_pixel
from upres.bench.runner import default_datasets, default_peers
from upres.evaluate import EVAL_SUFFIXES
from upres.kernels.resize import bicubic_down, bicubic_up, mod_crop
from upres.metrics import psnr

MODELS = ("FSRCNN", "ESPCN")


def sha_ok(folder: Path, name: str) -> str:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return "no SHA256SUMS"
    wanted = {line.split()[-1].lstrip("*"): line.split()[0]
              for line in sums.read_text().splitlines() if line.strip()}
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return "sha256 ok" if wanted.get(name) == digest else "SHA256 MISMATCH"


def area_down(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape[:2]
    return cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--peers", type=Path, default=default_peers())
    parser.add_argument("--datasets", type=Path, default=default_datasets())
    parser.add_argument("--sets", nargs="+", default=["Set5"])
    parser.add_argument("--threads", type=int, default=cores(), help="default: all cores")
    args = parser.parse_args(argv)
    if args.peers is None or not args.peers.is_dir():
        print(f"no peers folder ({args.peers}); pass --peers DIR")
        return 1
    runnable = []
    for model in MODELS:
        c = DnnSuperresContender(threads=args.threads, peers=args.peers, model=model)
        reason = c.available()
        file = args.peers / c.file
        status = sha_ok(args.peers, c.file) if file.is_file() else "missing"
        print(f"{c.file}: {status}; " + (f"cannot run: {reason}" if reason else "runs here"))
        if reason:
            continue
        c.load()
        flops = tf_conv_flops_per_pixel(file, SCALE)
        print(f"  {flops:.0f} FLOPs per output pixel" if flops else "  FLOPs: unknown layer")
        runnable.append(c)
    if not runnable or args.datasets is None:
        return 0
    for name in args.sets:
        folder = args.datasets / name
        if not folder.is_dir():
            print(f"{folder}: missing")
            continue
        heads = ["image", "LR", "bicubic"] + [c.name for c in runnable]
        print("\n" + " | ".join(heads))
        means: dict[str, list[float]] = {}
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in EVAL_SUFFIXES):
            with Image.open(path) as im:
                hr = mod_crop(np.asarray(im.convert("RGB")), SCALE)
            inputs = (("matlab-bicubic", bicubic_down(hr, SCALE)), ("inter-area", area_down(hr, SCALE)))
            for how, lr in inputs:
                scores = [psnr(bicubic_up(lr, SCALE), hr, SCALE)]
                scores += [psnr(c.upscale(lr), hr, SCALE) for c in runnable]
                means.setdefault(how, []).append(scores)  # type: ignore[arg-type]
                print(" | ".join([path.stem, how] + [f"{s:.2f}" for s in scores]))
        for how, rows in means.items():
            print(" | ".join(["mean", how] + [f"{s:.2f}" for s in np.mean(rows, axis=0)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
