"""Overlay detector on a held-out synthetic set: pixel precision / recall / IoU and time per megapixel.

    python benchmarks/detect_eval.py --datasets ../shared/datasets --out docs/detect_eval.json

Overlays (the training generator, `upres.models.overlay_synth`) are drawn over the TEST photos only
(Set5, Set14, BSD100), with seeds SEED + i: integer seeds, while training batches draw from the
seed sequences [train seed, step], so no evaluation overlay was seen in training. Besides the
mixed set, each overlay kind is rendered alone (same photos, its own seeds) to show where the
detector is weak, and the untouched photos are run to show what it flags where nothing was drawn.
Timing covers the detector only (tiled ONNX Runtime on the CPU), not rendering.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from upres.cleaning.detect import DEFAULT_TILE, OverlayMaskDetector
from upres.models.data import list_images, load_rgb_u8
from upres.models.overlay_synth import KINDS, SynthConfig, synthesize

TEST_SETS = ("Set5", "Set14", "BSD100")
SEED = 7_000_000
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
GROW_PX = 2  # recall once the predicted mask is grown this much: what `upres clean --grow` sees


class Tally:
    """Pixel counts over a set of images, plus per-image IoUs (images with any overlay)."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0
        self.covered = 0  # ground-truth pixels inside the grown prediction
        self.ious: list[float] = []
        self.blank_images = 0
        self.pixels = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        tp = int(np.count_nonzero(pred & truth))
        fp = int(np.count_nonzero(pred & ~truth))
        fn = int(np.count_nonzero(~pred & truth))
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.pixels += truth.size
        if truth.any():
            self.ious.append(tp / (tp + fp + fn))
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW_PX + 1, 2 * GROW_PX + 1))
            grown = cv2.dilate(pred.astype(np.uint8), kernel) > 0
            self.covered += int(np.count_nonzero(grown & truth))
        else:
            self.blank_images += 1

    def summary(self) -> dict[str, float | int]:
        truth = self.tp + self.fn
        return {
            "precision": round(self.tp / max(1, self.tp + self.fp), 4),
            "recall": round(self.tp / max(1, truth), 4),
            "iou": round(self.tp / max(1, self.tp + self.fp + self.fn), 4),
            "mean_image_iou": round(float(np.mean(self.ious)), 4) if self.ious else 0.0,
            f"recall_grown_{GROW_PX}px": round(self.covered / max(1, truth), 4),
            "images_with_overlay": len(self.ious),
            "blank_images": self.blank_images,
            "false_positive_rate": round(self.fp / max(1, self.pixels - truth), 5),
        }


def _photos(datasets: Path, sets: list[str]) -> list[tuple[str, Path]]:
    return [(name, path) for name in sets if (datasets / name).is_dir()
            for path in list_images(datasets / name)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/detect_eval.json"))
    parser.add_argument("--sets", nargs="+", default=list(TEST_SETS))
    parser.add_argument("--model", type=Path, default=None, help="detect ONNX (default: shipped)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = all cores)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    detector = OverlayMaskDetector(args.model, threads=args.threads)
    photos = _photos(args.datasets, args.sets)
    if not photos:
        raise SystemExit(f"no test images under {args.datasets} ({', '.join(args.sets)})")
    base = SynthConfig()
    runs = {"mixed": base, **{k: replace(base, blank_fraction=0.0,
                                        kind_weights=tuple(float(k == j) for j in KINDS))
                             for k in KINDS}}
    tallies: dict[str, dict[str, Tally]] = {}
    sweep = {t: Tally() for t in THRESHOLDS}
    seconds, megapixels = 0.0, 0.0
    for run_index, (run, cfg) in enumerate(runs.items()):
        per_set: dict[str, Tally] = {}
        for i, (set_name, path) in enumerate(photos):
            photo = load_rgb_u8(path)
            image, truth = synthesize(photo, args.seed + 100_000 * run_index + i, cfg)
            x = image.astype(np.float32) / 255.0
            t0 = time.perf_counter()
            logits = detector.logits(x, DEFAULT_TILE)
            pred = logits > 0.0  # probability 0.5
            seconds += time.perf_counter() - t0
            megapixels += truth.size / 1e6
            per_set.setdefault(set_name, Tally()).add(pred, truth)
            per_set.setdefault("all", Tally()).add(pred, truth)
            if run == "mixed":
                for t, tally in sweep.items():
                    tally.add(logits > np.log(t / (1 - t)), truth)
        tallies[run] = per_set
        print(run, json.dumps(per_set["all"].summary()), flush=True)

    flagged: dict[str, list[float]] = {}
    for set_name, path in photos:
        x = load_rgb_u8(path).astype(np.float32) / 255.0
        flagged.setdefault(set_name, []).append(float(np.mean(detector.logits(x, DEFAULT_TILE) > 0.0)))

    report = {
        "command": "python benchmarks/detect_eval.py --datasets ../shared/datasets"
                   + (f" --threads {args.threads}" if args.threads else ""),
        "model": str(detector.path.name),
        "model_sha256": detector.sha256,
        "receptive_field": detector.info.receptive_field,
        "alignment": detector.info.alignment,
        "threshold": 0.5,
        "seed": args.seed,
        "sets": sorted({s for s, _ in photos}),
        "images_per_run": len(photos),
        "mixed": {name: t.summary() for name, t in tallies["mixed"].items()},
        "per_kind": {k: tallies[k]["all"].summary() for k in KINDS},
        "threshold_sweep": {str(t): tally.summary() for t, tally in sweep.items()},
        # Share of pixels flagged on the photos as they are (no overlay drawn): mean and worst image.
        "clean_photos_flagged": {name: {"mean": round(float(np.mean(v)), 4), "max": round(max(v), 4)}
                                 for name, v in flagged.items()},
        "timing": {
            "seconds_per_megapixel": round(seconds / megapixels, 4),
            "megapixels": round(megapixels, 2),
            "tile": DEFAULT_TILE,
            "threads": args.threads or os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["mixed"]["all"], indent=2))
    print(f"{report['timing']['seconds_per_megapixel']} s/MP")


if __name__ == "__main__":
    main()
