"""Evaluate `upres clean`'s fill stages on synthetic overlays over the test photos.

For every photo of the test sets, overlays (captions, date stamps, logos, scratches) are rendered
with their true mask by upres.models.overlay_synth; each variant of the pipeline fills the grown
true mask and is scored inside it against the clean photo: Y-PSNR, Y-SSIM (mean of the SSIM map
over the mask), the texture ratio (high-frequency energy of the result over the clean photo's,
inside the mask: 1 = as textured as the photo, below 1 = smeared), the seam (excess gradient across
the mask's border, levels of 255) and the time per megapixel. Detection is not involved: its
quality is measured on its own.

    python benchmarks/clean_eval.py --datasets ../shared/datasets --json docs/clean_eval.json \
        --figure docs/clean_before_after.png
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from upres import __version__
from upres.cleaning.learned_fill import LearnedFillStage, build_learned_fill
from upres.cleaning.learned_fill import available as learned_fill_available
from upres.cleaning.pipeline import Cleaner, CleanSettings
from upres.cleaning.texture import build_texture
from upres.kernels.masks import final_mask
from upres.metrics import y_channel
from upres.models.overlay_synth import SynthConfig, synthesize

SETS = ("Set5", "Set14", "BSD100")
GROW = 2  # the default for user masks: the true mask plays the user's mask here


@dataclass(frozen=True)
class Variant:
    name: str
    settings: CleanSettings


FULL = "fsr + texture 0.5"  # the default pipeline: the before/after figure's right column


def variants() -> list[Variant]:
    base = CleanSettings(fill="telea", texture=0.0, grain=0.0)
    fsr = replace(base, fill="fsr")
    learned = replace(base, fill="learned")
    out = [
        Variant("telea", base),
        Variant("ns", replace(base, fill="ns")),
        Variant("telea + texture 0.5", replace(base, texture=0.5)),
        Variant("telea + texture 1.0", replace(base, texture=1.0)),
        Variant("telea + grain 0.5", replace(base, grain=0.5)),
        Variant("telea + grain 1.0", replace(base, grain=1.0)),
        Variant("telea + texture 0.5 + grain 0.5", replace(base, texture=0.5, grain=0.5)),
        Variant("telea + texture 0.5, poisson", replace(base, texture=0.5, blend="poisson")),
    ]
    out += [Variant(f"telea radius {r}", replace(base, radius=r)) for r in (3, 5, 12)]
    out += [
        Variant("fsr", fsr),
        Variant(FULL, replace(fsr, texture=0.5)),
        Variant("fsr + texture 1.0", replace(fsr, texture=1.0)),
        Variant("fsr + texture 0.5 + grain 0.5", replace(fsr, texture=0.5, grain=0.5)),
        Variant("fsr + texture 0.5, poisson", replace(fsr, texture=0.5, blend="poisson")),
        Variant("learned", learned),
        Variant("learned + texture 0.5", replace(learned, texture=0.5)),
    ]
    return out


# Captions, date stamps, logos and scratches as the detector's training and evaluation data draw
# them, minus the scan degradations: the fill is scored against the clean photo, and blur or JPEG
# over the whole image would be scored with it.
OVERLAYS = SynthConfig(blank_fraction=0.0, degrade=False)


def render_overlay(photo: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo with overlays, bool mask of the pixels they visibly changed)."""
    return synthesize(photo, seed, OVERLAYS)


# ----------------------------------------------------------------------------------------------
# Scores inside the mask


def masked_psnr(result: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((y_channel(result)[mask] - y_channel(clean)[mask]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Wang et al.'s SSIM map on the Y channel (11x11 Gaussian, sigma 1.5), same size as the input."""
    x, y = y_channel(a), y_channel(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def texture_ratio(result: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """RMS of the Y high-pass (Laplacian) of the result over the clean photo's, inside the mask."""
    def energy(img: np.ndarray) -> float:
        lap = cv2.Laplacian(y_channel(img), cv2.CV_64F, ksize=3)
        return float(np.sqrt(np.mean(lap[mask] ** 2)))

    ref = energy(clean)
    return energy(result) / ref if ref > 0 else float("nan")


def seam(result: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """Mean excess gradient magnitude (levels of 255, Y) on the mask's border pixels: how much
    sharper the border is than the photo there. 0 or below: no seam."""
    inner = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    outer = (cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~mask
    border = inner | outer

    def grad(img: np.ndarray) -> np.ndarray:
        y = y_channel(img)
        return np.hypot(cv2.Sobel(y, cv2.CV_64F, 1, 0), cv2.Sobel(y, cv2.CV_64F, 0, 1)) / 4.0

    return float(np.mean(grad(result)[border] - grad(clean)[border]))


# ----------------------------------------------------------------------------------------------


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def to8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def evaluate(paths: list[Path], threads: int, chosen: list[Variant],
             learned: LearnedFillStage | None) -> tuple[dict, list[dict]]:
    texture, refine = build_texture("ort-cpu", threads)
    rows: list[dict] = []
    for path in paths:
        clean = load(path)
        seed = zlib.crc32(f"{path.parent.name}/{path.name}".encode())
        marked, true_mask = render_overlay(clean, seed)
        if not true_mask.any():
            continue
        image = marked.astype(np.float32) / 255.0
        for v in chosen:
            mask = final_mask(true_mask, GROW)
            cleaner = Cleaner(v.settings, texture, learned, workers=1)  # comparable times
            t0 = time.perf_counter()
            out, stats = cleaner.clean(image, mask, seed)
            seconds = time.perf_counter() - t0
            result = to8(out)
            rows.append({
                "set": path.parent.name, "image": path.name, "variant": v.name,
                "psnr": masked_psnr(result, clean, mask),
                "ssim": float(np.mean(ssim_map(result, clean)[mask])),
                "texture_ratio": texture_ratio(result, clean, mask),
                "seam": seam(result, clean, mask),
                "seconds": seconds, "megapixels": clean.shape[0] * clean.shape[1] / 1e6,
                "mask_fraction": float(mask.mean()), "regions": stats.regions,
                "region_pixels": stats.region_pixels,
            })
    return {"refine_sha256": refine.sha256}, rows


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == name]
        table.append({
            "variant": name, "images": len(sel),
            "psnr": float(np.mean([r["psnr"] for r in sel])),
            "ssim": float(np.mean([r["ssim"] for r in sel])),
            "texture_ratio": float(np.median([r["texture_ratio"] for r in sel])),
            "seam": float(np.mean([r["seam"] for r in sel])),
            "seconds_per_mp": sum(r["seconds"] for r in sel) / sum(r["megapixels"] for r in sel),
        })
    return table


def paired(rows: list[dict], a: str, b: str) -> dict:
    """Per-image PSNR/SSIM difference b - a: the mean and how many images b wins."""
    by = {(r["set"], r["image"], r["variant"]): r for r in rows}
    keys = [(r["set"], r["image"]) for r in rows if r["variant"] == a]
    d_psnr = [by[(*k, b)]["psnr"] - by[(*k, a)]["psnr"] for k in keys]
    d_ssim = [by[(*k, b)]["ssim"] - by[(*k, a)]["ssim"] for k in keys]
    return {"a": a, "b": b, "images": len(keys), "psnr_gain_db": float(np.mean(d_psnr)),
            "psnr_wins": int(sum(d > 0 for d in d_psnr)), "ssim_gain": float(np.mean(d_ssim)),
            "ssim_wins": int(sum(d > 0 for d in d_ssim))}


COLUMNS = ("clean photo", "with overlay", "telea", FULL)


def _crop_box(mask: np.ndarray, half: int) -> tuple[int, int]:
    """Top-left corner of a (2 half)^2 crop centred on the mask's largest part."""
    _, _, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    cx, cy = (int(v) for v in centroids[biggest])
    y0 = int(np.clip(cy - half, 0, max(0, mask.shape[0] - 2 * half)))
    x0 = int(np.clip(cx - half, 0, max(0, mask.shape[1] - 2 * half)))
    return y0, x0


def before_after(path: Path, images: list[tuple[np.ndarray, ...]], half: int = 64, zoom: int = 2) -> None:
    """A grid of crops, one row per example: the columns of COLUMNS, each zoomed x2 (nearest)."""
    side = 2 * half * zoom
    header = np.full((28, (side + 4) * len(COLUMNS), 3), 255, np.uint8)
    for i, title in enumerate(COLUMNS):
        cv2.putText(header, title, (i * (side + 4) + 6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    rows = [header]
    for *pictures, mask in images:
        y0, x0 = _crop_box(mask, half)
        crops = [cv2.resize(im[y0 : y0 + 2 * half, x0 : x0 + 2 * half], (side, side),
                            interpolation=cv2.INTER_NEAREST) for im in pictures]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255)
                                    for c in crops], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--limit", type=int, default=0, help="images per set (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--examples", nargs="*", default=["Set14/baboon.png", "Set14/lenna.png",
                                                     "BSD100/img_012.png", "Set5/butterfly.png"])
    ap.add_argument("--variants", nargs="+", default=None, help="names to run (default: all; "
                    "'telea' is always run, the baseline of the paired table)")
    ap.add_argument("--fill-model", type=Path, default=None, help="fill network ONNX for the learned "
                    "variants (default: the shipped one; left out when there is none)")
    args = ap.parse_args(argv)
    learned = None
    if args.fill_model is not None or learned_fill_available():
        learned = build_learned_fill("ort-cpu", args.threads, args.fill_model)[0]
    chosen = [v for v in variants() if v.name == "telea" or args.variants is None or v.name in args.variants]
    chosen = [v for v in chosen if learned is not None or v.settings.fill != "learned"]
    paths = []
    for name in args.sets:
        found = sorted((args.datasets / name).glob("*.png"))
        paths += found[: args.limit] if args.limit else found
    if not paths:
        print(f"no test photos under {args.datasets}", file=sys.stderr)
        return 2
    meta, rows = evaluate(paths, args.threads, chosen, learned)
    table = summarise(rows)
    comparisons = [paired(rows, "telea", v.name) for v in chosen[1:]]
    print(f"{'variant':40s} {'PSNR':>7s} {'SSIM':>7s} {'texture':>8s} {'seam':>6s} {'s/MP':>6s}")
    for t in table:
        print(f"{t['variant']:40s} {t['psnr']:7.2f} {t['ssim']:7.4f} {t['texture_ratio']:8.3f} "
              f"{t['seam']:6.2f} {t['seconds_per_mp']:6.3f}")
    for c in comparisons:
        print(f"{c['b']} vs {c['a']}: {c['psnr_gain_db']:+.3f} dB ({c['psnr_wins']}/{c['images']} wins), "
              f"SSIM {c['ssim_gain']:+.4f} ({c['ssim_wins']}/{c['images']} wins)")
    if args.json:
        args.json.write_text(json.dumps({
            "command": "python " + " ".join(sys.argv), "upres_version": __version__,
            "machine": platform.machine(), "python": platform.python_version(),
            "overlays": "upres.models.overlay_synth, blank_fraction 0, no degradation", "grow": GROW,
            **meta,
            "summary": table, "paired": comparisons, "images": rows,
        }, indent=1) + "\n")
    if args.figure:
        picks = []
        for example in args.examples:
            set_name, name = example.split("/")
            path = args.datasets / set_name / name
            if not path.is_file():
                continue
            picks.append(_example(path, args.threads, learned))
        if picks:
            before_after(args.figure, picks)
    return 0


def _example(path: Path, threads: int, learned: LearnedFillStage | None) -> tuple[np.ndarray, ...]:
    texture, _ = build_texture("ort-cpu", threads)
    clean = load(path)
    seed = zlib.crc32(f"{path.parent.name}/{path.name}".encode())
    marked, true_mask = render_overlay(clean, seed)
    mask = final_mask(true_mask, GROW)
    image = marked.astype(np.float32) / 255.0
    telea = Cleaner(CleanSettings(fill="telea", texture=0.0), texture).clean(image, mask, seed)[0]
    settings = next(v.settings for v in variants() if v.name == FULL)
    full = Cleaner(settings, texture, learned).clean(image, mask, seed)[0]
    return clean, marked, to8(telea), to8(full), mask


if __name__ == "__main__":
    sys.exit(main())
