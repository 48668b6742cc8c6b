"""Every component thin-detect gives, with what a rule could read of it, on clean and damaged photos.

For choosing a scratch rule strict enough for `--detect text` (docs/CLEAN_DETECT.md, *Scratches
by default*): each component with a pixel of p > 0.8 and a box of 45 px or longer is recorded with
its length, mean logit, how much of its centre line stands out from both sides alike (in luma and
in every channel), how neutral it is against its sides, and how many damage pixels it covers.
Photos: the thin-detect network's training photos (every T91 and BSD200 photo but every 10th, at
1x, 0.7x and 0.5x; the training generator's damage, seeds 7,000,000 + i, and the clean-detect
benchmark's scratches, seeds 8,000,000 + i), its held-out ones (every 10th, seeds 5,000,000 + i),
each clean and damaged; with `--test`, also the 114 BSD100 + Set14
test photos clean and with the clean-detect benchmark's scratches (its seeds), to be read only
once a rule is chosen on the others. `--degrade` scans every image so (the benchmark's
degradations) after its damage is drawn.

    python benchmarks/thin_components.py --datasets ../shared/datasets --json components.json
    python benchmarks/thin_components.py --datasets ../shared/datasets --degrade jpeg --json jpeg.json
    python benchmarks/thin_components.py --choose components.json jpeg.json
    python benchmarks/thin_components.py --choose components.json gray.json sepia.json --gate 8
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from clean_detect_bench import DEGRADATIONS, photos_of, scanned
from clean_detect_bench import SEED as BENCH_SEED  # run as a script: its folder is on the path

from upres.cleaning import thin_net
from upres.kernels.masks import grow
from upres.models.damage_synth import KINDS, render
from upres.models.detect_data import photos_at_scales
from upres.models.thin_synth import DamageConfig, render_damage

PEAK = 0.8
LENGTH = 45
TRAIN_SEED, HELD_SEED = 7_000_000, 5_000_000
BENCH_TRAIN_SEED = 8_000_000
SCAN_SEED = 6_000_000


def centre_reads(image: np.ndarray, line: np.ndarray) -> dict[str, float]:
    """What a rule can read along the centre line of ``line`` (bool) over an RGB uint8 crop:
    thin_net's sides (in luma) and neutral shares, the sides compared in every channel instead
    (a white ridge between a red roof and a blue sky has sides of one luma and two colours), and
    how far the centre went from its sides towards white or black (median)."""
    c = thin_net.centre_line(image.astype(np.float32), line)
    if c is None:
        return {"sides_luma": 0.0, "sides_colour": 0.0, "neutral": 0.0, "alpha": 0.0, "side_chroma": 0.0}
    luma = thin_net.LUMA
    ridge = (c.mid - (c.plus + c.minus) / 2) @ luma
    sign = np.sign(np.median(ridge)) or 1.0
    ridge = ridge * sign
    colour = (ridge >= thin_net.MIN_RIDGE) & (ridge > 2 * np.abs(c.plus - c.minus).max(axis=1))
    side_luma = (c.plus + c.minus) / 2 @ luma
    room = np.where(sign > 0, 255.0 - side_luma, side_luma)
    alpha = np.clip(ridge / np.maximum(room, 1.0), 0.0, 2.0)
    return {"sides_luma": thin_net.sides_agree(c), "sides_colour": float(colour.mean()),
            "neutral": thin_net.neutral(c), "alpha": float(np.median(alpha)),
            "side_chroma": float(np.median(thin_net.chroma((c.plus + c.minus) / 2)))}


def components(logits: np.ndarray, image: np.ndarray, true: np.ndarray | None) -> list[dict]:
    parts = thin_net.Parts.of(logits, thin_net.LOW)
    out = []
    for i in (int(j) for j in np.flatnonzero(parts.peak > np.log(PEAK / (1 - PEAK)))):
        bw, bh, area = (int(v) for v in parts.stats[i, 2:])
        if max(bw, bh) < LENGTH or area < thin_net.MIN_AREA:
            continue
        crop, line = parts.crop(image, i)
        covered = 0
        if true is not None:  # the damage pixels it lies on
            covered = int((grow(line, 1) & parts.crop(true, i)[0]).sum())
        out.append({"length": max(bw, bh), "area": area, "mean_logit": round(float(parts.mean[i]), 3),
                    "long_side": max(image.shape[:2]), "covered": covered,
                    **{k: round(v, 4) for k, v in centre_reads(crop, line).items()}})
    return out


SEPIA = np.array([1.351, 1.203, 0.937], np.float32)  # the usual sepia matrix's rows on a gray pixel


def _toned(photo: np.ndarray, tone: str) -> np.ndarray:
    """``photo`` as a black-and-white print (gray) or a sepia-toned one; itself for "colour"."""
    if tone == "colour":
        return photo
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
    rgb = gray * (SEPIA if tone == "sepia" else np.ones(3, np.float32))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def damaged_photos(datasets: Path, test: bool, tone: str = "colour",
                   kind: str = "scratch") -> Iterator[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """(split, name, image, damage mask or None) for every clean and damaged image; ``kind``: the
    benchmark's overlay drawn on the training photos ("train-bench") and the test photos."""
    for split, holdout, seed in (("train", False, TRAIN_SEED), ("held", True, HELD_SEED)):
        for i, (name, s, colour) in enumerate(photos_at_scales(datasets, holdout)):
            photo = _toned(colour, tone)
            yield split, f"{name}@{s}", photo, None
            comp, true = render_damage(photo, np.random.default_rng(seed + i), DamageConfig(blank=0.0))
            yield split, f"{name}@{s}", comp, true
            if not holdout:  # the benchmark's own overlay on the same training photos
                comp, true = render(photo, kind, BENCH_TRAIN_SEED + i)
                yield "train-bench", f"{name}@{s}", comp, true
    if test:
        k = KINDS.index(kind)
        for i, path in enumerate(photos_of(datasets, "test")):
            photo = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()
            photo = _toned(photo, tone)
            yield "test", f"{path.parent.name}/{path.name}", photo, None
            comp, true = render(photo, kind, BENCH_SEED + 16 * i + k)
            yield "test", f"{path.parent.name}/{path.name}", comp, true


GRID = {"length": (60, 80, 100, 120), "mean_logit": (2.5, 3.0, 3.5, 4.0),
        "sides_luma": (0.0, 0.3, 0.5), "neutral": (0.0, 0.5, 0.6, 0.7, 0.8)}


def _tally(images: list[dict], split: str, gate: float,
           take: Callable[[list[dict]], list[dict]]) -> tuple[int, float, int]:
    """(clean images given a component, damage pixels covered / all, components covering no
    damage on the damaged images) in ``split`` where ``take`` picks an image's components from
    all it has; images whose colour spread is under ``gate`` get none."""
    flagged, covered, total, false = 0, 0, 0, 0
    for im in images:
        if im["split"] != split:
            continue
        kept = take(im["components"]) if im["colour_spread"] >= gate else []
        if im["damaged"]:
            covered += sum(c["covered"] for c in kept)
            total += im["damage"]
            false += sum(c["covered"] == 0 for c in kept)
        elif kept:
            flagged += 1
    return flagged, covered / max(1, total), false


def _passes(c: dict, rule: dict[str, float]) -> bool:
    return all(c[k] >= v for k, v in rule.items())


def _read(images: list[dict], rule: dict[str, float], split: str,
          gate: float = 0.0) -> tuple[int, float]:
    """(clean images with a component passing ``rule``, damage pixels covered / all) in ``split``;
    images whose colour spread is under ``gate`` get none."""
    return _tally(images, split, gate, lambda comps: [c for c in comps if _passes(c, rule)])[:2]


def choose(files: list[Path], gate: float = 0.0, show: int = 10) -> None:
    """Print the rules of GRID that flag no clean training image in any of ``files`` (the same
    photos, scanned or toned differently), most benchmark scratches found on the training photos
    first; with ``gate``, photos whose colour spread is under it get no scratch."""
    runs = [json.loads(f.read_text())["images"] for f in files]
    rows = []
    for values in itertools.product(*GRID.values()):
        rule = dict(zip(GRID, values, strict=True))
        if any(_read(images, rule, "train", gate)[0] for images in runs):
            continue
        rows.append((rule, [_read(images, rule, "train-bench", gate)[1] for images in runs],
                     [_read(images, rule, "train", gate)[1] for images in runs]))
    rows.sort(key=lambda r: -float(np.mean(r[1])))
    for rule, bench, own in rows[:show]:
        print(rule, "benchmark scratches", [round(b, 3) for b in bench],
              "training damage", [round(o, 3) for o in own])


def _rule_of(t: thin_net.Thresholds) -> dict[str, float]:
    return {"length": t.min_length, "mean_logit": t.min_mean_logit, "sides_luma": t.min_sides,
            "neutral": t.min_neutral}


SURE_RULE = _rule_of(thin_net.SURE)
THEN_GRID = {"length": (45, 60, 80), "mean_logit": (-9.0, 2.0, 2.5, 3.0, 3.5),
             "sides_luma": (0.0, 0.3), "neutral": (0.0, 0.3, 0.5, 0.7)}


def _read_then(images: list[dict], then: dict[str, float], split: str,
               gate: float) -> tuple[int, float, int]:
    """``_tally`` when a photo with a component of the shipped rule also gives those of ``then``."""
    return _tally(images, split, gate, lambda comps: [c for c in comps if _passes(c, then)]
                  if any(_passes(c, SURE_RULE) for c in comps) else [])


def choose_then(files: list[Path], gate: float, split: str = "train-bench", show: int = 12) -> None:
    """Print the sure rule alone and with its shipped ``then``, then the looser rules of THEN_GRID
    for a photo that has a sure scratch, most of ``split``'s damage found first, with the
    components they take that cover none."""
    runs = [json.loads(f.read_text())["images"] for f in files]
    rows = []
    for values in itertools.product(*THEN_GRID.values()):
        then = {k: min(v, SURE_RULE[k]) for k, v in zip(THEN_GRID, values, strict=True)}
        rows.append((then, [_read_then(images, then, split, gate) for images in runs]))
    rows.sort(key=lambda r: -float(np.mean([x[1] for x in r[1]])))
    first = [SURE_RULE] + ([] if thin_net.SURE.then is None else [_rule_of(thin_net.SURE.then)])
    for then, reads in [*((r, [_read_then(im, r, split, gate) for im in runs]) for r in first), *rows[:show]]:
        clean = [_read_then(im, then, "train", gate)[0] for im in runs]
        print(then, "clean training images taken", clean, f"clean {split} images taken",
              [r[0] for r in reads], "found", [round(r[1], 3) for r in reads],
              "false components", [r[2] for r in reads])


def _crowd(comps: list[dict], rule: dict[str, float], count: int) -> list[dict]:
    crowd = [c for c in comps if _passes(c, rule)]
    return crowd if len(crowd) >= count else [c for c in comps if _passes(c, SURE_RULE)]


def _read_crowd(images: list[dict], rule: dict[str, float], count: int, split: str,
                gate: float) -> tuple[int, float]:
    """``_tally`` when a photo's components of ``rule`` are taken once there are ``count`` of
    them, and its sure ones whatever their number."""
    return _tally(images, split, gate, lambda comps: _crowd(comps, rule, count))[:2]


def choose_crowd(files: list[Path], gate: float, show: int = 12) -> None:
    """Print the rules of GRID whose components, taken where a photo holds 2-5 of them, leave
    every clean training image clean in all of ``files``, most benchmark scratches first."""
    runs = [json.loads(f.read_text())["images"] for f in files]
    rows = []
    for count in (2, 3, 4, 5):
        for values in itertools.product(*THEN_GRID.values()):
            rule = dict(zip(THEN_GRID, values, strict=True))
            if any(_read_crowd(im, rule, count, s, gate)[0] for im in runs for s in ("train", "held")):
                continue
            rows.append((count, rule, [_read_crowd(im, rule, count, "train-bench", gate)[1] for im in runs]))
    rows.sort(key=lambda r: -float(np.mean(r[2])))
    for count, rule, found in rows[:show]:
        print(count, rule, "benchmark scratches", [round(f, 3) for f in found])


ALSO_GRID = {"length": (45, 50, 60, 70), "mean_logit": (4.0, 5.0, 6.0, 7.0, 8.0),
             "sides_luma": (0.0, 0.3, 0.5, 0.7), "neutral": (0.5, 0.7, 0.8, 0.9)}


def _known(comps: list[dict], proofs: list[dict[str, float]], then: dict[str, float] | None) -> list[dict]:
    """A photo's components taken when any of ``proofs`` finds one: those of every proof and,
    with ``then``, its looser ones (as thin_net.components takes ``Thresholds.then``'s)."""
    rules = proofs + ([then] if then is not None else [])
    if not any(_passes(c, r) for c in comps for r in proofs):
        return []
    return [c for c in comps if any(_passes(c, r) for r in rules)]


def choose_also(files: list[Path], gate: float, show: int = 12) -> None:
    """Print second sure rules (over ALSO_GRID: shorter lines the network is surer of) that beside
    the shipped rule flag no clean training or held-out image in any of ``files``: most benchmark
    scratches on the training photos first, then read on the test ones (measured, not kept:
    docs/CLEAN_DETECT.md, *A second sure rule*)."""
    runs = [json.loads(f.read_text())["images"] for f in files]
    then = None if thin_net.SURE.then is None else _rule_of(thin_net.SURE.then)

    def read(images: list[dict], proofs: list[dict[str, float]], split: str) -> tuple[int, float, int]:
        return _tally(images, split, gate, lambda comps: _known(comps, proofs, then))

    rows = []
    for values in itertools.product(*ALSO_GRID.values()):
        also = dict(zip(ALSO_GRID, values, strict=True))
        if any(read(im, [SURE_RULE, also], s)[0] for im in runs for s in ("train", "held")):
            continue
        rows.append((also, [read(im, [SURE_RULE, also], "train-bench") for im in runs],
                     [read(im, [SURE_RULE, also], "test") for im in runs]))
    rows.sort(key=lambda r: -float(np.mean([x[1] for x in r[1]])))
    for name, reads, test in [("shipped", [read(im, [SURE_RULE], "train-bench") for im in runs],
                               [read(im, [SURE_RULE], "test") for im in runs]), *rows[:show]]:
        print(name, "benchmark scratches", [round(r[1], 3) for r in reads], "false components",
              [r[2] for r in reads], "test (clean flagged, found)", [(r[0], round(r[1], 3)) for r in test])


def photo_options(ap: argparse.ArgumentParser) -> None:
    """The options that say which photos are recorded, and how scanned."""
    ap.add_argument("--datasets", type=Path)
    ap.add_argument("--test", action="store_true", help="also the test photos (read them last)")
    ap.add_argument("--degrade", choices=sorted(DEGRADATIONS), default="none",
                    help="every image scanned so after its damage is drawn (clean ones too)")
    ap.add_argument("--tone", choices=("colour", "gray", "sepia"), default="colour",
                    help="every photo made a black-and-white or sepia print before its damage is drawn")
    ap.add_argument("--json", type=Path)


Reads = Callable[[np.ndarray, np.ndarray, np.ndarray | None], list[dict]]


def record(args: argparse.Namespace, kind: str, key: str, reads: Reads) -> list[dict]:
    """Per image of ``damaged_photos`` (the benchmark's ``kind`` drawn on the training photos),
    scanned as ``args`` say: its split, damage, colour spread and size, and under ``key`` what
    ``reads`` (logits, image, damage mask or None) makes of thin-detect's map."""
    det = thin_net.detector(2)
    images = []
    for n, (split, name, drawn, true) in enumerate(damaged_photos(args.datasets, args.test, args.tone, kind)):
        image = scanned(drawn, args.degrade, SCAN_SEED + n)
        logits = det.logits(image.astype(np.float32) / 255.0)
        images.append({"split": split, "photo": name, "damaged": true is not None,
                       "damage": int(true.sum()) if true is not None else 0,
                       "colour_spread": thin_net.colour_spread(image), "size": list(image.shape[:2]),
                       key: reads(logits, image, true)})
        if n % 200 == 0:
            print(n, split, name, flush=True)
    return images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(ap)
    ap.add_argument("--choose", type=Path, nargs="+", help="read these runs' JSON and print the best "
                    "rules instead (the first as drawn, others scanned)")
    ap.add_argument("--gate", type=float, default=0.0, help="with --choose: no scratch on photos whose "
                    f"colour spread is under it (the default's: {thin_net.SURE.min_colour_spread:g})")
    ap.add_argument("--then", default=None, help="with --choose: the looser rules for a photo with "
                    "a sure scratch instead, read on this split (train-bench, test)")
    ap.add_argument("--crowd", action="store_true", help="with --choose: the rules that take a "
                    "photo's components once it holds a few, instead")
    ap.add_argument("--also", action="store_true", help="with --choose: the second sure rules that "
                    "beside the shipped one flag no clean training or held-out image, instead")
    args = ap.parse_args()
    if args.choose and args.also:
        choose_also(args.choose, args.gate)
        return
    if args.choose and args.crowd:
        choose_crowd(args.choose, args.gate)
        return
    if args.choose and args.then:
        choose_then(args.choose, args.gate, args.then)
        return
    if args.choose:
        choose(args.choose, args.gate)
        return
    if args.datasets is None or args.json is None:
        ap.error("--datasets and --json are needed to record components")
    images = record(args, "scratch", "components", components)
    args.json.write_text(json.dumps({"peak": PEAK, "length": LENGTH, "images": images}) + "\n")


if __name__ == "__main__":
    main()
