"""Dust specks from the thin-detect network's small parts, and only on a photo whose sure ones are a crowd.

The network (trained with the training generator's dust among its damage) marks most specks: its
parts of ``p > thin_net.LOW`` within SPECK_SIDE px cover ~0.7 of the benchmark's dust pixels on
training photos. It also marks real small things of the scene (glints on water, catch-lights,
berries, a bird far out, a button), and no rule on one part tells those from dust. So a speck is
read as a scan defect is, and a photo as dusty:

- *grey*: a speck is a particle or a hole in the emulsion over the photo, black or the paper's
  white whatever lies under it; a berry or a flower is the scene's colour (``SpeckReads.chroma``);
- *standing out* from its ring by ``min_contrast`` levels;
- the network sure of it (``min_peak``, a logit);
- and the photo's sure specks are a crowd (``crowded``): ``min_count`` or more, over several of
  its cells, on surfaces of different luma. Dust falls anywhere, on whatever is there; a clean
  photo's look-alikes are few, or lie on one surface; or, a second proof (``SpeckRule.also``),
  a few surer ones spread the same way. Otherwise none is taken;
- once the photo is known dusty, its less sure parts (``then_peak``) that are grey and stand out
  are taken too.

The photo's colour spread gates the rule as it gates sure scratches (``thin_net.colour_spread``):
in a toned print every speck is as grey as the scene. The rule is chosen on training photos with
benchmarks/dust_components.py (docs/CLEAN_DETECT.md, *Dust*).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from upres.cleaning import thin_net

SPECK_SIDE = 12  # px: the longest box side of a speck's part
RING_IN, RING_OUT = 1, 4  # px: the ring round a part its surface is read on
_NEAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_IN + 1, 2 * RING_IN + 1))
_FAR = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_OUT + 1, 2 * RING_OUT + 1))


@dataclass(frozen=True)
class SpeckReads:
    """What a rule reads of one small part (levels of 255)."""

    side: int  # px: its box's longer side
    area: int  # px
    peak: float  # the network's surest logit on it
    contrast: float  # its most extreme luma from its ring's median, in its own polarity
    noise: float  # the ring's median absolute luma difference from its median
    chroma: float  # median chroma (max - min channel) of its core: within half its contrast
    ring_chroma: float  # median chroma of its ring
    level: float  # luma of its most extreme pixel
    surface: tuple[float, float, float]  # the ring's median colour (RGB): what the speck lies on


def reads(crop: np.ndarray, part: np.ndarray, peak: float) -> SpeckReads | None:
    """``part`` (bool) of an RGB crop (uint8, or float in [0, 1]) with room round it; None
    without a ring."""
    p8 = part.astype(np.uint8)
    ring = (cv2.dilate(p8, _FAR) > 0) & ~(cv2.dilate(p8, _NEAR) > 0)
    if not ring.any():
        return None
    rgb = np.asarray(crop, np.float32) * (1.0 if crop.dtype == np.uint8 else 255.0)
    luma = rgb @ thin_net.LUMA
    surface = float(np.median(luma[ring]))
    diff = luma - surface
    on = diff[part]
    k = int(np.argmax(np.abs(on)))
    sign = 1.0 if on[k] >= 0 else -1.0
    contrast = float(on[k] * sign)
    core = part & (diff * sign >= contrast / 2)
    ys, xs = np.nonzero(part)
    return SpeckReads(
        side=int(max(np.ptp(ys), np.ptp(xs)) + 1), area=int(part.sum()), peak=peak,
        contrast=contrast, noise=float(np.median(np.abs(luma[ring] - surface))),
        chroma=float(np.median(thin_net.chroma(rgb[core]))),
        ring_chroma=float(np.median(thin_net.chroma(rgb[ring]))), level=float(luma[part][k]),
        surface=tuple(float(v) for v in np.median(rgb[ring], axis=0)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SmallPart:
    origin: tuple[int, int]  # y, x of ``pixels`` in the image
    pixels: np.ndarray  # bool: the part in a box with RING_OUT + 1 px of room
    reads: SpeckReads

    @property
    def centre(self) -> tuple[int, int]:
        (y, x), (h, w) = self.origin, self.pixels.shape
        return y + h // 2, x + w // 2

    def found(self) -> thin_net.ThinFound:
        (y, x), (h, w) = self.origin, self.pixels.shape
        return thin_net.ThinFound("speck", (y, y + h, x, x + w), self.pixels,
                                  1.0 / (1.0 + math.exp(-self.reads.peak)))


def small_parts(parts: thin_net.Parts, image: np.ndarray, min_peak: float) -> list[SmallPart]:
    """Every part of thin-detect's map (``thin_net.Parts`` of ``p > thin_net.LOW``) within
    SPECK_SIDE px whose surest logit is over ``min_peak``, read over the H x W x 3 RGB image
    (uint8, or float in [0, 1])."""
    pad = RING_OUT + 1
    out = []
    for i in (int(j) for j in np.flatnonzero(parts.peak > min_peak)):
        x, y, bw, bh = (int(v) for v in parts.stats[i, :4])
        if max(bw, bh) > SPECK_SIDE:
            continue
        crop, part = parts.crop(image, i, pad=pad)
        r = reads(crop, part, float(parts.peak[i]))
        if r is not None:
            out.append(SmallPart((max(0, y - pad), max(0, x - pad)), part, r))
    return out


CELLS = 4  # the photo is cut CELLS x CELLS for where its specks lie


@dataclass(frozen=True)
class SpeckRule:
    min_peak: float = 6.0  # logit
    min_contrast: float = 16.0  # levels from the ring's median
    max_noise: float = math.inf  # levels: the ring's (the network already leaves texture)
    neutral_floor: float = thin_net.NEUTRAL_FLOOR  # chroma a speck's core may have whatever its ring's
    min_count: int = 8  # sure specks a photo needs before any is taken
    min_cells: int = 3  # of the CELLS x CELLS cells, holding them
    min_surface_spread: float = 30.0  # levels: p90 - p10 of the luma they lie on
    min_colour_spread: float = thin_net.SURE.min_colour_spread
    # logit: once a photo's sure specks are a crowd, it is known dusty, and its parts this sure
    # that pass the other tests are taken too (no clean photo is crowded, so none gains any)
    then_peak: float = 3.0
    # a second proof that a photo is dusty, read on its own sure specks (its peak, contrast, grey
    # floor and crowd; the colour gate and then_peak stay this rule's): fewer specks, surer ones
    also: SpeckRule | None = None


# The default (`--detect dust`): a photo is dusty when its 8 sure specks lie over 3 of its
# cells on surfaces 30 levels apart, or, surer, 3 of logit 9 over 3 cells on surfaces 40 apart.
# Chosen with benchmarks/dust_components.py (``--also``): of the second proofs that give none of
# the 786 training nor the 87 held-out images a speck, as drawn or scanned five ways, the one that
# finds the most benchmark dust on the training photos while each of its four crowd thresholds
# one step looser still gives none (docs/CLEAN_DETECT.md, *Dust*).
DEFAULT = SpeckRule(also=SpeckRule(min_peak=9.0, min_count=3, min_cells=3, min_surface_spread=40.0))


def grey(r: SpeckReads, rule: SpeckRule) -> bool:
    return r.chroma <= max(rule.neutral_floor, thin_net.NEUTRAL_SHARE * r.ring_chroma)


def sure(r: SpeckReads, rule: SpeckRule) -> bool:
    return (r.peak >= rule.min_peak and r.contrast >= rule.min_contrast and r.noise <= rule.max_noise
            and grey(r, rule))


def crowd_reads(ys: np.ndarray, xs: np.ndarray, surface: np.ndarray,
                shape: tuple[int, int]) -> tuple[int, int, float]:
    """(how many, in how many of the photo's CELLS x CELLS cells, p90 - p10 of the luma they lie
    on) of specks at (``ys``, ``xs``) on surfaces of these RGB colours (N x 3)."""
    if len(ys) == 0:
        return 0, 0, 0.0
    h, w = shape
    cells = (np.minimum(ys * CELLS // h, CELLS - 1) * CELLS + np.minimum(xs * CELLS // w, CELLS - 1))
    luma = np.asarray(surface, np.float64) @ thin_net.LUMA.astype(np.float64)
    return len(ys), len(np.unique(cells)), float(np.percentile(luma, 90) - np.percentile(luma, 10))


def crowded(ys: np.ndarray, xs: np.ndarray, surface: np.ndarray, shape: tuple[int, int],
            rule: SpeckRule) -> bool:
    """Whether sure specks at (``ys``, ``xs``), on surfaces of these RGB colours (N x 3), are a
    photo's dust: ``min_count`` or more, over ``min_cells`` cells of the photo, on surfaces
    ``min_surface_spread`` apart in luma. Dust falls anywhere, on whatever is there; the scene's
    look-alikes (daisies on a lawn, glints on bottles, drops over dark water) lie on one surface."""
    if len(ys) < rule.min_count:
        return False
    _, cells, spread = crowd_reads(ys, xs, surface, shape)
    return cells >= rule.min_cells and spread >= rule.min_surface_spread


def find(parts: thin_net.Parts, image: np.ndarray, rule: SpeckRule | None = None) -> list[SmallPart]:
    """The specks of an RGB image given thin-detect's parts of ``p > thin_net.LOW``: none unless
    its sure ones are ``crowded`` (by ``rule`` or by ``rule.also``, each on its own sure specks),
    and then also those of ``rule.then_peak`` (the caller checks the colour gate,
    ``SpeckRule.min_colour_spread``)."""
    rule = rule or DEFAULT
    proofs = [rule] if rule.also is None else [rule, rule.also]
    then = dataclasses.replace(rule, min_peak=min(rule.min_peak, rule.then_peak))
    low = min(then.min_peak, *(p.min_peak for p in proofs))
    small = small_parts(parts, image, low)
    for proof in proofs:
        found = [sp for sp in small if sure(sp.reads, proof)]
        ys = np.array([sp.centre[0] for sp in found], np.int64)
        xs = np.array([sp.centre[1] for sp in found], np.int64)
        surface = np.array([sp.reads.surface for sp in found], np.float64).reshape(-1, 3)
        if crowded(ys, xs, surface, image.shape[:2], proof):
            return [sp for sp in small if sure(sp.reads, then)]
    return []
