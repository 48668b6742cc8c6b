"""Every small part thin-detect gives, with what a speck rule reads of it, on clean and dusty photos.

For choosing upres.cleaning.dust_net's rule (docs/CLEAN_DETECT.md, *Dust*): each part of
``p > thin_net.LOW`` within dust_net.SPECK_SIDE px whose surest pixel has p > 0.5 is recorded with
its ``dust_net.reads`` and the damage pixels it covers (grown by 1 px). Photos as
benchmarks/thin_components.py draws them, with the clean-detect benchmark's dust on the training
photos ("train-bench") and, with ``--test``, on the test photos (read once a rule is chosen).

    python benchmarks/dust_components.py --datasets ../shared/datasets --json dust.json
    python benchmarks/dust_components.py --datasets ../shared/datasets --degrade jpeg --json jpeg.json
    python benchmarks/dust_components.py --choose dust.json jpeg.json gray.json
    python benchmarks/dust_components.py --choose dust.json jpeg.json --then-peaks 6 4 3 2
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
from thin_components import photo_options, record  # run as a script: its folder is on the path

from upres.cleaning import dust_net, thin_net
from upres.kernels.masks import grow


def parts(logits: np.ndarray, image: np.ndarray, true: np.ndarray | None) -> list[dict]:
    out = []
    for sp in dust_net.small_parts(thin_net.Parts.of(logits, thin_net.LOW), image, 0.0):
        covered = 0
        (y, x), (h, w) = sp.origin, sp.pixels.shape
        if true is not None:
            covered = int((grow(sp.pixels, 1) & true[y : y + h, x : x + w]).sum())
        reads = {k: round(v, 3) if isinstance(v, float) else v
                 for k, v in dataclasses.asdict(sp.reads).items()}
        reads["surface"] = [round(v, 1) for v in sp.reads.surface]
        out.append({**reads, "y": sp.centre[0], "x": sp.centre[1], "covered": covered})
    return out


GRID = {"min_peak": (3.0, 4.0, 6.0), "min_contrast": (16.0, 24.0), "neutral_floor": (12.0, 20.0, 28.0),
        "min_count": (3, 5, 8, 12), "min_cells": (3, 5, 7, 9, 11), "min_surface_spread": (30.0, 40.0, 50.0)}

# A second proof of a dusty photo: fewer specks than the shipped rule's crowd, each surer.
ALSO_GRID = {"min_peak": (6.0, 8.0, 10.0, 12.0), "min_contrast": (16.0, 24.0, 40.0, 60.0),
             "neutral_floor": (12.0, 20.0), "min_count": (3, 4, 5, 6, 7), "min_cells": (3, 4, 5, 7),
             "min_surface_spread": (30.0, 40.0, 50.0, 70.0)}


class Run:
    """One run's records as columns: a row per part, and per image its split, damage and spread."""

    def __init__(self, images: list[dict]) -> None:
        rows = [(n, c) for n, im in enumerate(images) for c in im["parts"]]
        self.image = np.array([n for n, _ in rows], np.int64)
        self.cols = {k: np.array([c[k] for _, c in rows], np.float64)
                     for k in (*dust_net.SpeckReads.__dataclass_fields__, "covered", "y", "x")
                     if k != "surface"}
        self.surface = np.array([c["surface"] for _, c in rows], np.float64).reshape(-1, 3)
        self.size = np.array([im["size"] for im in images], np.float64)
        self.split = np.array([im["split"] for im in images])
        self.damaged = np.array([im["damaged"] for im in images])
        self.damage = np.array([im["damage"] for im in images], np.float64)
        self.spread = np.array([im["colour_spread"] for im in images])

    def sure(self, rule: dust_net.SpeckRule) -> np.ndarray:
        """Per part: passes ``rule`` (dust_net.sure, on columns)."""
        c = self.cols
        grey = c["chroma"] <= np.maximum(rule.neutral_floor, thin_net.NEUTRAL_SHARE * c["ring_chroma"])
        return ((c["peak"] >= rule.min_peak) & (c["contrast"] >= rule.min_contrast)
                & (c["noise"] <= rule.max_noise) & grey)

    def crowded(self, rule: dust_net.SpeckRule) -> np.ndarray:
        """Per image: its sure specks of ``rule`` are a crowd, the colour gate passed (one proof)."""
        n = len(self.split)
        sure = self.sure(rule)
        img = self.image[sure]
        ys, xs, surface = self.cols["y"][sure], self.cols["x"][sure], self.surface[sure]
        taken = np.zeros(n, bool)
        for i in np.flatnonzero(np.bincount(img, minlength=n) >= rule.min_count):
            on = img == i
            taken[i] = self.spread[i] >= rule.min_colour_spread and dust_net.crowded(
                ys[on].astype(np.int64), xs[on].astype(np.int64), surface[on],
                (int(self.size[i, 0]), int(self.size[i, 1])), rule)
        return taken

    def crowd_reads(self, rule: dust_net.SpeckRule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per image, ``dust_net.crowd_reads`` of its sure specks of ``rule``: their count, the
        cells they lie in, and the spread of the luma they lie on."""
        n = len(self.split)
        sure = self.sure(rule)
        img = self.image[sure]
        ys, xs, surface = self.cols["y"][sure], self.cols["x"][sure], self.surface[sure]
        out = np.zeros((3, n))
        for i in np.unique(img):
            on = img == i
            out[:, i] = dust_net.crowd_reads(ys[on].astype(np.int64), xs[on].astype(np.int64),
                                             surface[on], (int(self.size[i, 0]), int(self.size[i, 1])))
        return out[0], out[1], out[2]

    def read(self, rule: dust_net.SpeckRule, split: str,
             taken: np.ndarray | None = None) -> tuple[int, float]:
        """(clean images of ``split`` given a speck, damage pixels covered / all there): a photo's
        parts of ``rule.then_peak`` count once its sure ones are crowded (by ``rule`` or by
        ``rule.also``), as in dust_net.find. ``taken``: the images already known crowded."""
        n = len(self.split)
        then = self.sure(dataclasses.replace(rule, min_peak=min(rule.min_peak, rule.then_peak)))
        covered = np.bincount(self.image[then], weights=self.cols["covered"][then], minlength=n)
        if taken is None:
            taken = self.crowded(rule)
            if rule.also is not None:
                taken = taken | self.crowded(dataclasses.replace(
                    rule.also, min_colour_spread=rule.min_colour_spread))
        here = self.split == split
        flagged = int((taken & here & ~self.damaged).sum())
        total = self.damage[here & self.damaged].sum()
        return flagged, float(covered[taken & here & self.damaged].sum() / max(1.0, total))


def choose(files: list[Path], split: str = "train", show: int = 12) -> None:
    """Print the rules of GRID that give no clean image of ``split`` a speck in any of ``files``,
    the most benchmark dust found on the training photos first."""
    runs = [Run(json.loads(f.read_text())["images"]) for f in files]
    rows = []
    for values in itertools.product(*GRID.values()):
        rule = dust_net.SpeckRule(**dict(zip(GRID, values, strict=True)))  # type: ignore[arg-type]
        if any(r.read(rule, split)[0] for r in runs):
            continue
        rows.append((rule, [r.read(rule, "train-bench")[1] for r in runs],
                     [r.read(rule, split)[1] for r in runs]))
    rows.sort(key=lambda r: -float(np.mean(r[1])))
    for rule, bench, own in rows[:show]:
        print({k: getattr(rule, k) for k in GRID}, "benchmark dust", [round(b, 3) for b in bench],
              "training damage", [round(o, 3) for o in own])


def choose_also(files: list[Path], splits: tuple[str, ...] = ("train", "held"), show: int = 12) -> None:
    """Print second proofs (``SpeckRule.also``, over ALSO_GRID) that, beside the shipped rule, give no
    clean image of ``splits`` a speck in any of ``files``: the most benchmark dust on the
    training photos first, then the same rules read on the test photos where recorded."""
    runs = [Run(json.loads(f.read_text())["images"]) for f in files]
    shipped = dataclasses.replace(dust_net.DEFAULT, also=None)  # the first proof alone
    base = [r.crowded(shipped) for r in runs]
    speck_keys = ("min_peak", "min_contrast", "neutral_floor")
    crowd_keys = ("min_count", "min_cells", "min_surface_spread")
    rows = []
    for speck in itertools.product(*(ALSO_GRID[k] for k in speck_keys)):
        # the per-image crowd measures once per speck test, then every crowd threshold on them
        reads = [r.crowd_reads(dust_net.SpeckRule(**dict(zip(speck_keys, speck, strict=True))))  # type: ignore[arg-type]
                 for r in runs]
        for crowd in itertools.product(*(ALSO_GRID[k] for k in crowd_keys)):
            count, cells, spread = crowd
            gate = shipped.min_colour_spread
            taken = [b | ((n >= count) & (c >= cells) & (sp >= spread) & (r.spread >= gate))
                     for b, r, (n, c, sp) in zip(base, runs, reads, strict=True)]
            if any(r.read(shipped, s, t)[0] for r, t in zip(runs, taken, strict=True) for s in splits):
                continue
            also = dict(zip(speck_keys + crowd_keys, speck + crowd, strict=True))
            pairs = list(zip(runs, taken, strict=True))
            rows.append((also, [r.read(shipped, "train-bench", t)[1] for r, t in pairs],
                         [r.read(shipped, "test", t) for r, t in pairs]))
    rows.sort(key=lambda r: -float(np.mean(r[1])))
    alone = [r.read(shipped, "test") for r in runs]
    bench = [round(r.read(shipped, "train-bench")[1], 3) for r in runs]
    print("the first proof alone: benchmark dust", bench,
          "test (clean flagged, dust)", [(f, round(d, 3)) for f, d in alone])
    for also, bench, test in rows[:show]:
        print(also, "benchmark dust", [round(b, 3) for b in bench],
              "test (clean flagged, dust)", [(f, round(d, 3)) for f, d in test])


def then_peaks(files: list[Path], peaks: list[float]) -> None:
    """Print the shipped rule's reads in each of ``files`` with each ``then_peak`` of ``peaks``."""
    runs = [Run(json.loads(f.read_text())["images"]) for f in files]
    for peak in peaks:
        rule = dataclasses.replace(dust_net.DEFAULT, then_peak=peak)
        print(f"then_peak {peak}:", "clean flagged (training, held-out)",
              [(r.read(rule, "train")[0], r.read(rule, "held")[0]) for r in runs], "benchmark dust",
              [round(r.read(rule, "train-bench")[1], 3) for r in runs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photo_options(ap)
    ap.add_argument("--choose", type=Path, nargs="+", help="read these runs' JSON and print the best "
                    "rules instead")
    ap.add_argument("--split", default="train", help="with --choose: the clean photos no rule may "
                    "touch (train: the network's training photos; held: its held-out ones)")
    ap.add_argument("--then-peaks", type=float, nargs="+", help="with --choose: print the shipped "
                    "rule's reads at each of these then_peak values instead")
    ap.add_argument("--also", action="store_true", help="with --choose: the second proofs of a "
                    "dusty photo that beside the shipped rule flag no clean training or held-out image")
    args = ap.parse_args()
    if args.choose and args.also:
        choose_also(args.choose)
        return
    if args.choose and args.then_peaks:
        then_peaks(args.choose, args.then_peaks)
        return
    if args.choose:
        choose(args.choose, args.split)
        return
    if args.datasets is None or args.json is None:
        ap.error("--datasets and --json are needed to record parts")
    args.json.write_text(json.dumps({"images": record(args, "dust", "parts", parts)}) + "\n")


if __name__ == "__main__":
    main()
