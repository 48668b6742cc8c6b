"""The loop a user writes instead of installing upres: the baseline of the file-to-file bench.

    python -m upres.bench.naive_loop INDIR OUTDIR --model coarse-x4.onnx [--threads N]

Each image in sorted order, decoded, run through one ONNX Runtime session in one piece, written as
PNG at OpenCV's default settings. It stays as plain as a user's script on purpose (numpy, cv2 and
onnxruntime only, no tiling, no overlap of decode, compute and encode): what upres is measured
against must not borrow upres's tricks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naive_loop", description="Upscale a folder, naively.")
    parser.add_argument("indir", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="an x-scale ONNX model, RGB 0..1")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = ORT default)")
    args = parser.parse_args(argv)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(args.model), opts, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    args.outdir.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in args.indir.iterdir() if p.suffix.lower() in SUFFIXES):
        bgr = cv2.imread(str(path))
        if bgr is None:
            print(f"naive_loop: cannot read {path}", file=sys.stderr)
            return 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        y = session.run(None, {input_name: x})[0][0]
        out = (np.clip(y, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
        if not cv2.imwrite(str(args.outdir / f"{path.stem}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR)):
            print(f"naive_loop: cannot write {args.outdir / path.stem}.png", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
