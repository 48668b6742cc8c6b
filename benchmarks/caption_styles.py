"""Caption styles the benchmark's generator does not draw: `--mask auto` recall per style.

clean_detect_bench.py measures captions drawn by upres.models.damage_synth, the same family of
generator the detection rules were chosen against. This draws other captions with plain Pillow
text on BSD200 TRAINING photos (every 7th of the training split, from the second; never the test
sets): a copyright line, a web address, Cyrillic and Greek, small type, a large translucent
watermark at 30 degrees, a caption tilted 15 degrees, a faint (35% opaque) caption, large
digits. Colours (white, black, yellow, red) and the machine's TrueType fonts go round the photos
in turn. Recall: overlay pixels (those the text moved by 8 levels or more) inside the final mask
(`detect_auto`, grown as the runner grows it); false positives: the final mask outside them, and
beyond 3 px of them, as shares of the photo.

    python benchmarks/caption_styles.py --datasets ../shared/datasets --json docs/caption_styles.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from upres.cleaning.auto_mask import detect_auto
from upres.cleaning.mask_source import auto_grow
from upres.kernels.masks import final_mask, grow
from upres.models.data import load_rgb_u8
from upres.models.detect_data import split_photos
from upres.models.overlay_synth import system_fonts

COLOURS = ((255, 255, 255), (0, 0, 0), (255, 220, 0), (255, 60, 40))
CHANGED = 8  # levels: a pixel the caption moved by this much is the caption's


@dataclass(frozen=True)
class Style:
    text: str
    size: int  # px
    opacity: float
    angle: float  # degrees, about the photo's centre


STYLES = {
    "copyright": Style("© 2003 J. Smith Photography", 22, 1.0, 0),
    "web address": Style("www.oldphotos-archive.com", 20, 1.0, 0),
    "cyrillic": Style("Москва, лето 1962", 24, 1.0, 0),
    "greek": Style("Αθήνα 1978", 26, 1.0, 0),
    "small": Style("Kodak 400 roll 12", 11, 1.0, 0),
    "watermark": Style("SAMPLE", 70, 0.45, 30),
    "tilted": Style("Holiday 1985", 28, 1.0, 15),
    "faint": Style("Property of the museum", 22, 0.35, 0),
    "large digits": Style("JUNE 71", 60, 1.0, 0),
}


def draw(photo: np.ndarray, style: Style, colour: tuple[int, int, int], font: Path,
         at: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(the photo with the caption, the caption's pixels)."""
    h, w = photo.shape[:2]
    layer = Image.new("L", (w, h))
    ImageDraw.Draw(layer).text(at, style.text, font=ImageFont.truetype(str(font), style.size), fill=255)
    if style.angle:
        layer = layer.rotate(style.angle, resample=Image.Resampling.BICUBIC, center=(w / 2, h / 2))
    alpha = np.asarray(layer, np.float32)[..., None] / 255.0 * style.opacity
    mixed = photo * (1 - alpha) + np.array(colour, np.float32) * alpha
    comp = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return comp, np.abs(comp.astype(np.int16) - photo).max(axis=2) >= CHANGED


def run(datasets: Path, count: int) -> dict:
    photos = split_photos(datasets / "BSD200", False)[1::7][:count]
    fonts = system_fonts()
    if not fonts:
        raise SystemExit("caption_styles: no TrueType fonts on this machine")
    started, rows = time.monotonic(), {}
    for name, style in STYLES.items():
        hit = total = 0
        recalls, fp, fp3 = [], [], []
        for i, path in enumerate(photos):
            photo = load_rgb_u8(path)
            h, w = photo.shape[:2]
            # Level captions near the top or the bottom in turn; a rotated one near the middle.
            at = (int(w * 0.15), int(h * 0.4)) if style.angle else \
                (int(w * 0.05), int(h * (0.7 if i % 2 else 0.1)))
            comp, true = draw(photo, style, COLOURS[i % len(COLOURS)], fonts[i % len(fonts)], at)
            auto = detect_auto(comp.astype(np.float32) / 255.0)
            final = final_mask(auto.mask, auto_grow(auto.stroke_width()))
            hit += int((final & true).sum())
            total += int(true.sum())
            recalls.append(float((final & true).sum() / max(1, true.sum())))
            fp.append(float((final & ~true).mean()))
            fp3.append(float((final & ~grow(true, 3)).mean()))
        rows[name] = {"recall": round(hit / max(1, total), 4),
                      "mean_image_recall": round(float(np.mean(recalls)), 4),
                      "fp_area": round(float(np.mean(fp)), 6),
                      "fp_area_beyond_3px": round(float(np.mean(fp3)), 6)}
        print(f"{name:13s} recall {rows[name]['recall']:.3f}  FP {rows[name]['fp_area']:.2%}", flush=True)
    return {"photos": len(photos), "fonts": len(fonts),
            "seconds": round(time.monotonic() - started, 1),
            "styles": {k: vars(v) for k, v in STYLES.items()}, "results": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--count", type=int, default=24, help="training photos per style")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = run(args.datasets, args.count)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
