"""Quality table for the model card: Y-PSNR/SSIM of every mode on every test set present.

    python benchmarks/quality_table.py --datasets ../shared/datasets --out docs/quality.json

Test sets only (Set5, Set14, BSD100); the models never saw them in training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from upres.evaluate import evaluate_folder, summary
from upres.runtime.chain_factory import build_chain

TEST_SETS = ("Set5", "Set14", "BSD100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/quality.json"))
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--modes", nargs="+", default=["faithful", "hybrid"])
    parser.add_argument("--texture", type=float, default=0.5)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--sets", nargs="+", default=list(TEST_SETS))
    args = parser.parse_args()
    rows = []
    for scale in args.scales:
        for mode in args.modes:
            setup = build_chain(mode, scale, texture=args.texture, backend="ort-cpu",
                                precision=args.precision)
            for name in args.sets:
                folder = args.datasets / name
                if not folder.is_dir():
                    continue
                t0 = time.perf_counter()
                total = summary(evaluate_folder(folder, scale, setup.chain))
                rows.append({"set": name, "scale": scale, "mode": mode, "texture": args.texture,
                             "precision": args.precision, **total,
                             "seconds": time.perf_counter() - t0})
                print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print("\n| set | scale | mode | PSNR | SSIM | bicubic PSNR | bicubic SSIM |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | x{r['scale']} | {r['mode']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
              f"{r['bicubic_psnr']:.2f} | {r['bicubic_ssim']:.4f} |")


if __name__ == "__main__":
    main()
