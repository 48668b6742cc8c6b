"""Choose the thin detector's confidence on held-out TRAINING photos (never the test sets).

The held-out photos are every 10th of T91 and BSD200 by sorted name (upres.models.detect_data
.split_photos), which the thin-detect network is not trained on; each is used at full size and at
0.7x. Each gets run clean, and with damage from the training generator (upres.models.thin_synth,
seeds 5,000,000 + i, never a blank draw). For every (HIGH, MIN_AREA) of a grid: how many clean
photos get any detection, the clean false-positive area, and the damage pixels found (within 1 px
of a detection, summed) with the false-positive area beyond 3 px of the damage. The choice: the
most recall with at most `--max-flagged` of the clean photos flagged. (HIGH: a scratch's most sure
pixel; MIN_LENGTH: its box's longer side; SPECK_HIGH: a speck's most sure pixel, 1.0 for none.)

    python benchmarks/thin_threshold.py --datasets ../shared/datasets --json docs/thin_threshold.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from upres.cleaning import thin_net
from upres.cleaning.detect import OverlayMaskDetector
from upres.kernels.masks import grow
from upres.models.data import load_rgb_u8
from upres.models.detect_data import split_photos
from upres.models.thin_synth import DamageConfig, render_damage

HIGHS = (0.8, 0.9, 0.95, 0.98, 0.99)
LENGTHS = (11, 20, 30, 45, 60)
SPECK_HIGHS = (0.99, 0.995, 0.999, 1.0)  # 1.0: no specks
SEED = 5_000_000


def _mask(found: list[thin_net.ThinFound], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape[:2], bool)
    for f in found:
        y0, y1, x0, x1 = f.box
        out[y0:y1, x0:x1] |= f.pixels
    return out


def run(datasets: Path, model: Path, max_flagged: float) -> dict:
    det = OverlayMaskDetector(model, threads=2)
    photos = []
    for folder in ("T91", "BSD200"):
        for path in split_photos(datasets / folder, True):
            photo = load_rgb_u8(path)
            small = cv2.resize(photo, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
            photos += [(f"{folder}/{path.name}", photo), (f"{folder}/{path.name}@0.7", small)]
    clean_logits, damaged = [], []
    for i, (_, photo) in enumerate(photos):
        clean_logits.append(det.logits(photo.astype(np.float32) / 255.0))
        comp, true = render_damage(photo, np.random.default_rng(SEED + i), DamageConfig(blank=0.0))
        damaged.append((det.logits(comp.astype(np.float32) / 255.0), true))
    grid = []
    for high, length, speck in itertools.product(HIGHS, LENGTHS, SPECK_HIGHS):
        t = thin_net.Thresholds(high, length, speck)
        flagged, fp_clean, hit, total, fp_dmg = [], [], 0, 0, []
        for (name, _), logits in zip(photos, clean_logits, strict=True):
            m = _mask(thin_net.components(logits, t), logits.shape)
            if m.any():
                flagged.append(name)
            fp_clean.append(float(m.mean()))
        for logits, true in damaged:
            m = _mask(thin_net.components(logits, t), logits.shape)
            hit += int((grow(m, 1) & true).sum())
            total += int(true.sum())
            fp_dmg.append(float((m & ~grow(true, 3)).mean()))
        grid.append({"high": high, "min_length": length, "speck_high": speck,
                     "clean_flagged": len(flagged),
                     "clean_fp_area": round(float(np.mean(fp_clean)), 7),
                     "recall": round(hit / max(1, total), 4),
                     "damaged_fp_area_beyond_3px": round(float(np.mean(fp_dmg)), 7),
                     "flagged": flagged})
    allowed = [g for g in grid if g["clean_flagged"] <= max_flagged * len(photos)]
    best = max(allowed, key=lambda g: (g["recall"], -g["high"])) if allowed else None
    return {"model": model.name, "photos": len(photos), "seed": SEED, "low": thin_net.LOW,
            "min_area": thin_net.MIN_AREA,
            "max_flagged": max_flagged, "chosen": best, "grid": grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="a thin-detect ONNX file (default: shipped)")
    ap.add_argument("--max-flagged", type=float, default=1 / 30,
                    help="the share of clean photos allowed any detection")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from upres.runtime.catalog import builtin_path

    result = run(args.datasets, args.model or builtin_path(thin_net.MODEL_NAME), args.max_flagged)
    brief = {k: v for k, v in result.items() if k != "grid"}
    print(json.dumps(brief, indent=2))
    for g in result["grid"]:
        print(f"high {g['high']:.3f} length {g['min_length']:2d} speck {g['speck_high']:.3f}: "
              f"clean flagged {g['clean_flagged']:2d} "
              f"fp {g['clean_fp_area']:.5%}  recall {g['recall']:.3f}  "
              f"damaged fp>3px {g['damaged_fp_area_beyond_3px']:.5%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
