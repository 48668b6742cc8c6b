"""The README's before/after of the Quickstart sample (docs/quickstart_before_after.png).

    python benchmarks/quickstart_figure.py -o docs/quickstart_before_after.png

Runs `upres run` on upres/samples/scan.jpg with the defaults and with `--denoise 0`, and puts a
crop of the input (nearest-neighbour x4, so its pixels show), the clean models' upscale and the
default (denoise auto) side by side.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "upres" / "samples" / "scan.jpg"


def upscale(out: Path, *extra: str) -> np.ndarray:
    subprocess.run([sys.executable, "-m", "upres", "run", str(SAMPLE), "-o", str(out), "-q",
                    "--format", "png", *extra], check=True)
    return cv2.imread(str(out / "scan.png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "quickstart_before_after.png")
    ap.add_argument("--crop", type=int, nargs=3, default=(40, 60, 90), metavar=("Y", "X", "SIDE"),
                    help="crop of the input, in input pixels")
    args = ap.parse_args()
    y, x, side = args.crop
    with tempfile.TemporaryDirectory() as tmp:
        default = upscale(Path(tmp) / "auto")
        clean = upscale(Path(tmp) / "zero", "--denoise", "0")
    source = cv2.imread(str(SAMPLE))
    panels = {
        "input (nearest x4)": cv2.resize(source[y : y + side, x : x + side], None, fx=4, fy=4,
                                         interpolation=cv2.INTER_NEAREST),
        "--denoise 0": clean[4 * y : 4 * (y + side), 4 * x : 4 * (x + side)],
        "default (--denoise auto)": default[4 * y : 4 * (y + side), 4 * x : 4 * (x + side)],
    }
    tiles = []
    for label, panel in panels.items():
        panel = panel.copy()
        cv2.rectangle(panel, (0, 0), (panel.shape[1], 28), (0, 0, 0), -1)
        cv2.putText(panel, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(panel)
    cv2.imwrite(str(args.output), np.hstack(tiles))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
