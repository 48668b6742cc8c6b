"""Choose when a detected text line counts as text (the recogniser's reading rule) and how its
strokes are cut (the hysteresis share WEAK_INK), measured.

Each photo gets captions (TrueType), Hershey captions and date stamps drawn alone (upres.models.
damage_synth, seeds as in clean_detect_bench.py) and is also taken as it is. The text detector
runs once per image; each of its lines is cut to its strokes and read once; then every rule is
scored: overlay pixels inside the grown mask per kind (recall), the mask beyond 3 px of them
(false positives, share of the photo) and how many clean photos would be changed; then, under the
shipped rule, each stroke hysteresis share; and the shipped rule with the date-ink pass
(date_ink.imprint_lines). Thresholds are chosen on BSD200 training photos (every 4th) and
checked on the test photos (BSD100 + Set14); the date-ink rules are also run on every clean
training photo (BSD200 and T91). Faces, the area cap and the fill
are left out: this is the detection step; clean_detect_bench.py measures all of `--mask auto`.
`--degrade` scans every image first as clean_detect_bench.py does (noise, JPEG, grain, blur), so
the rule is also chosen on scan-like inputs; `--splits training` leaves the test photos out.

    python benchmarks/text_read_threshold.py --datasets ../shared/datasets \
        --json docs/text_read_threshold.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from clean_detect_bench import DEGRADATIONS, scanned  # run as a script: its folder is on the path

from upres.cleaning import date_ink, text_detect, text_read
from upres.cleaning.detect import estimate_stroke_width
from upres.cleaning.mask_source import auto_grow
from upres.kernels.masks import final_mask, grow
from upres.models.damage_synth import KINDS, render

TEXT_KINDS = ("caption", "hershey", "date")
SHIPPED = "read as text, or in a date imprint's ink (date_ink.is_date_imprint)"
WITH_INK = "shipped: the same, and the lines of the image's ink (date_ink.imprint_lines)"
SEED = 9_000_000  # clean_detect_bench.py's


@dataclass
class Line:
    line: text_detect.TextLine
    reading: text_read.Reading


@dataclass
class Item:
    kind: str  # a TEXT_KINDS member or "none"
    image: np.ndarray  # uint8 RGB composite
    true: np.ndarray
    lines: list[Line]
    ink: list[tuple[text_detect.TextLine, np.ndarray]]  # date_ink.imprint_lines: (line, glyphs)


# (the line's reading, whether its strokes are in a date imprint's ink) -> taken
Rule = Callable[[text_read.Reading, bool], bool]


RULES: dict[str, Rule] = {
    "no reading": lambda r, ink: True,
    "1+ characters at 0.3": lambda r, ink: r.characters >= 1 and r.confidence >= 0.3,
    "2+ characters at 0.3": lambda r, ink: r.characters >= 2 and r.confidence >= 0.3,
    "3+ characters at 0.3": lambda r, ink: r.characters >= 3 and r.confidence >= 0.3,
    "3+ characters at 0.5": lambda r, ink: r.characters >= 3 and r.confidence >= 0.5,
    "3+ at 0.3, or 2 at 0.9, or in a date imprint's ink (the rule before)":
        lambda r, ink: r.is_text(0.3) or ink,
    "3+ at 0.4, or 2 at 0.9, or in a date imprint's ink": lambda r, ink: r.is_text(0.4) or ink,
    "read once, without the margin check (Reading.reads), or in a date imprint's ink":
        lambda r, ink: r.reads() or ink,
    "reading alone (text_read.Reading.is_text)": lambda r, ink: r.is_text(),
    SHIPPED: lambda r, ink: r.is_text() or ink,
}
WEAK_INK = (1.0, 0.8, 0.7, 0.6, 0.5)  # 1.0: no hysteresis


def _photos(datasets: Path, split: str) -> list[Path]:
    if split == "training":
        return sorted((datasets / "BSD200").glob("*.png"))[::4]
    return [p for s in ("BSD100", "Set14") for p in sorted((datasets / s).glob("*.png"))]


def measure(photos: list[Path], degradation: str = "none") -> list[Item]:
    det, reader = text_detect.detector(), text_read.reader()
    items = []
    for i, path in enumerate(photos):
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()
        for k, kind in enumerate((*KINDS, "none")):
            if kind not in TEXT_KINDS and kind != "none":
                continue
            comp, true = (photo, np.zeros(photo.shape[:2], bool)) if kind == "none" else \
                render(photo, kind, SEED + 16 * i + k)
            comp = scanned(comp, degradation, SEED + 16 * i + k)
            image = comp.astype(np.float32) / 255.0
            lines = [Line(line, reader.read_line(image, line)) for line in det.lines(image)]
            items.append(Item(kind, comp, true, lines, date_ink.imprint_lines(image, det)))
    return items


def score(items: list[Item], rule: Rule, ink_pass: bool = False) -> dict[str, float | int]:
    hit = dict.fromkeys(TEXT_KINDS, 0)
    total = dict.fromkeys(TEXT_KINDS, 0)
    beyond = dict.fromkeys(TEXT_KINDS, 0.0)
    changed = 0
    for item in items:
        mask = np.zeros(item.true.shape, bool)
        image = item.image.astype(np.float32) / 255.0
        for found in item.lines:
            glyphs = text_detect.strokes(found.line, image)
            if glyphs.any() and rule(found.reading,
                                     date_ink.is_date_imprint(found.line, image, glyphs)):
                y0, y1, x0, x1 = found.line.box
                mask[y0:y1, x0:x1] |= glyphs
        for line, glyphs in item.ink if ink_pass else []:
            y0, y1, x0, x1 = line.box
            mask[y0:y1, x0:x1] |= glyphs
        if item.kind == "none":
            changed += int(mask.any())
            continue
        final = final_mask(mask, auto_grow(estimate_stroke_width(mask) if mask.any() else 0.0))
        hit[item.kind] += int((final & item.true).sum())
        total[item.kind] += int(item.true.sum())
        beyond[item.kind] += float((final & ~grow(item.true, 3)).mean())
    photos = sum(item.kind == "none" for item in items)
    out: dict[str, float | int] = {k: round(hit[k] / max(1, total[k]), 3) for k in TEXT_KINDS}
    out |= {f"{k}_fp_beyond_3px": round(beyond[k] / max(1, photos), 5) for k in TEXT_KINDS}
    out["clean_changed"] = changed
    out["clean_photos"] = photos
    return out


def date_ink_on_clean(datasets: Path) -> dict[str, object]:
    """Every training photo (BSD200 and T91) as it is: those where the date-ink rules would take
    something, the first rule (an unread line in date ink) and the ink pass apart."""
    det, reader = text_detect.detector(), text_read.reader()
    paths = [p for folder in ("BSD200", "T91") for p in sorted((datasets / folder).iterdir())
             if p.suffix.lower() in (".png", ".bmp", ".jpg")]
    unread, ink = [], []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        for line in det.lines(image):
            glyphs = text_detect.strokes(line, image)
            if glyphs.any() and not reader.read_line(image, line).is_text() and \
                    date_ink.is_date_imprint(line, image, glyphs):
                unread.append(path.name)
                break
        if date_ink.imprint_lines(image, det):
            ink.append(path.name)
    return {"photos": len(paths), "unread_line_taken": unread, "ink_pass_found": ink}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--degrade", choices=tuple(DEGRADATIONS), default="none",
                    help="scan every composite and clean photo so (clean_detect_bench.py's)")
    ap.add_argument("--splits", default="training,test",
                    help="comma-separated: training (BSD200, every 4th), test (BSD100 + Set14)")
    args = ap.parse_args()
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits or not set(splits) <= {"training", "test"}:
        ap.error(f"--splits: training and/or test, got {args.splits!r}")
    t0 = time.perf_counter()
    rules: dict[str, dict[str, dict[str, float | int]]] = {name: {} for name in (*RULES, WITH_INK)}
    weak: dict[str, dict[str, dict[str, float | int]]] = {str(w): {} for w in WEAK_INK}
    shipped = text_detect.WEAK_INK
    for split in splits:
        items = measure(_photos(args.datasets, split), args.degrade)
        for name, rule in RULES.items():
            rules[name][split] = score(items, rule)
        rules[WITH_INK][split] = score(items, RULES[SHIPPED], ink_pass=True)
        for share in WEAK_INK:
            text_detect.WEAK_INK = share
            weak[str(share)][split] = score(items, RULES[SHIPPED])
        text_detect.WEAK_INK = shipped
    on_clean = date_ink_on_clean(args.datasets) if "training" in splits else None
    result = {"seed": SEED, "degrade": args.degrade, "rules": rules, "weak_ink": weak,
              "shipped_weak_ink": shipped, "date_ink_on_clean_training_photos": on_clean,
              "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
