"""Choose the dust rule (upres.cleaning.dust) on held-out TRAINING photos (never the test sets).

The photos are thin_threshold.py's: every 10th of T91 and BSD200 (which thin-detect, whose
probability the rule reads, is not trained on) at 1x, 0.7x and 0.5x. Each is run clean, and with
dust only from the training generator (upres.models.thin_synth, its look-alikes included: coloured
dots, gratings, twigs; seeds 6,000,000 + i). For every rule of a grid: how many clean photos get a
speck, the clean false-positive area, and the dust pixels found (within 1 px of a speck). The
choice: the most recall with at most `--max-flagged` of the clean photos flagged, ties to the
stricter rule.

    python benchmarks/dust_threshold.py --datasets ../shared/datasets --json docs/dust_threshold.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from upres.cleaning import dust, thin_net
from upres.cleaning.detect import OverlayMaskDetector
from upres.kernels.masks import grow
from upres.models.detect_data import photos_at_scales
from upres.models.thin_synth import DamageConfig, render_damage

CONTRASTS = (20.0, 30.0, 45.0)
NOISES = (2.0, 3.0, 4.0, 6.0)
OVER_NOISE = (4.0, 6.0, 10.0)
ISOLATION = (4.0, 12.0, 40.0)
P_MINS = (0.3, 0.5, 0.8, 0.95)
SEED = 6_000_000


def _mask(found: list[dust.Candidate], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape[:2], bool)
    for c in found:
        y0, y1, x0, x1 = c.speck.box
        out[y0:y1, x0:x1] |= c.speck.pixels
    return out


def run(datasets: Path, model: Path, max_flagged: float) -> dict:
    det = OverlayMaskDetector(model, threads=2)
    names: list[str] = []
    clean: list[tuple[np.ndarray, np.ndarray]] = []
    damaged: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    config = DamageConfig(blank=0.0, lines=0.0)
    for name, s, img in photos_at_scales(datasets, True):
        comp, true = render_damage(img, np.random.default_rng(SEED + len(names)), config)
        names.append(f"{name}@{s}")
        clean.append((img, det.logits(img.astype(np.float32) / 255.0)))
        damaged.append((comp, det.logits(comp.astype(np.float32) / 255.0), true))
    grid: list[dict[str, Any]] = []
    for contrast in CONTRASTS:
        clean_c = [dust.candidates(img, lg, contrast) for img, lg in clean]
        dmg_c = [dust.candidates(img, lg, contrast) for img, lg, _ in damaged]
        for noise, over, iso, p in itertools.product(NOISES, OVER_NOISE, ISOLATION, P_MINS):
            rule = dust.DustRule(contrast, noise, over, iso, p)
            flagged, fp = [], []
            for name, (img, _), cands in zip(names, clean, clean_c, strict=True):
                m = _mask([c for c in cands if dust.accepts(c, rule)], img.shape)
                if m.any():
                    flagged.append(name)
                fp.append(float(m.mean()))
            hit = total = 0
            for (_, _, true), cands in zip(damaged, dmg_c, strict=True):
                m = _mask([c for c in cands if dust.accepts(c, rule)], true.shape)
                hit += int((grow(m, 1) & true).sum())
                total += int(true.sum())
            grid.append({"min_contrast": contrast, "max_noise": noise, "contrast_over_noise": over,
                         "isolation": iso, "p_min": p, "clean_flagged": len(flagged),
                         "clean_fp_area": round(float(np.mean(fp)), 7),
                         "recall": round(hit / max(1, total), 4), "flagged": flagged})
    allowed = [g for g in grid if g["clean_flagged"] <= max_flagged * len(names)]
    best = max(allowed, key=lambda g: (g["recall"], -g["clean_flagged"], g["min_contrast"], -g["max_noise"],
                                       g["p_min"])) if allowed else None
    return {"model": model.name, "photos": len(names), "seed": SEED, "max_flagged": max_flagged,
            "chosen": best, "grid": grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=None, help="a thin-detect ONNX file (default: shipped)")
    ap.add_argument("--max-flagged", type=float, default=1 / 50,
                    help="the share of clean photos allowed a speck")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from upres.runtime.catalog import builtin_path

    result = run(args.datasets, args.model or builtin_path(thin_net.MODEL_NAME), args.max_flagged)
    print(json.dumps({k: v for k, v in result.items() if k != "grid"}, indent=2))
    top = sorted(result["grid"], key=lambda g: (g["clean_flagged"], -g["recall"]))[:40]
    for g in top:
        print(f"contrast {g['min_contrast']:.0f} noise {g['max_noise']:.0f} x{g['contrast_over_noise']:.0f} "
              f"iso {g['isolation']:.0f} p {g['p_min']:.2f}: clean flagged {g['clean_flagged']:2d} "
              f"fp {g['clean_fp_area']:.5%}  recall {g['recall']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
