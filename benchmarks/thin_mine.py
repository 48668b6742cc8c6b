"""Hard negatives for the thin detector: what it takes for damage on clean TRAINING photos.

Runs a thin-detect network over the training photos (T91 and BSD200 less the held-out every 10th,
upres.models.detect_data.split_photos; never the test sets) at full size, 0.7x and 0.5x, and keeps
every component that passes a rule looser than the shipped one (a pixel of p > 0.5, box 30 px or
longer, no sides test), so that fine-tuning (`upres train thin-detect --hard-negatives FILE`)
sees the structures that come near the shipped rule as well as those that pass it. The photos are
clean: whatever is found on them is not damage.

    python benchmarks/thin_mine.py --datasets ../shared/datasets --json docs/thin_hard_negatives.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from upres.cleaning import thin_net
from upres.cleaning.detect import OverlayMaskDetector
from upres.models.detect_data import THRESHOLD_SCALES, photos_at_scales
from upres.runtime.catalog import builtin_path

LOOSE = thin_net.Thresholds(high=0.5, min_length=30, speck_high=1.0, min_sides=0.0)


def run(datasets: Path, model: Path) -> dict:
    det = OverlayMaskDetector(model, threads=2)
    rows, flagged, images, started = [], 0, 0, time.monotonic()
    for name, s, scaled in photos_at_scales(datasets, False):
        logits = det.logits(scaled.astype(np.float32) / 255.0)
        images += 1
        flagged += bool(thin_net.components(logits, thin_net.Thresholds(), scaled))
        rows += [{"photo": name, "scale": s, "box": list(f.box), "score": round(f.score, 4)}
                 for f in thin_net.components(logits, LOOSE, scaled)]
    return {"model": model.name, "images": images, "scales": list(THRESHOLD_SCALES),
            "rule": {"high": LOOSE.high, "min_length": LOOSE.min_length, "low": LOOSE.low,
                     "min_sides": LOOSE.min_sides},
            "flagged_at_shipped_rule": flagged,
            "images_with_hard_negatives": len({(r["photo"], r["scale"]) for r in rows}),
            "seconds": round(time.monotonic() - started, 1), "hard_negatives": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="a thin-detect ONNX file (default: shipped)")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    result = run(args.datasets, args.model or builtin_path(thin_net.MODEL_NAME))
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['images']} training images, {result['flagged_at_shipped_rule']} flagged at the "
          f"shipped rule, {len(result['hard_negatives'])} hard negatives on "
          f"{result['images_with_hard_negatives']} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
