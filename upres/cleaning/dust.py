"""Dust specks: small compact blobs that stand out from a flat surround, and that the thin-detect
network also calls damage.

The network alone cannot be trusted with specks (glints on water, catch-lights, berries and stars
are specks to a 35 px receptive field too), and a classical blob cue alone fires on every texture.
A speck is taken only when both agree *and* the photo around it is flat: on a smooth sky, a wall
or a face-free skin of paper a speck is what the eye goes to, while on foliage or gravel it is
invisible and a fill there would only repaint texture. So:

- the cue: luma minus its median over MEDIAN px differs by MIN_CONTRAST levels or more; a
  connected part of those pixels whose box fits in MAX_SIDE px and of MAX_AREA px at most;
- flat surround: the local noise (the median of that difference over NOISE px) is at most
  MAX_NOISE, and the speck stands out by CONTRAST_OVER_NOISE times it; and few other pixels
  nearby stand out (a speck is alone: ISOLATION);
- the network: its most sure pixel on the speck has ``p > P_MIN``.

The pixels filled are those around the part (grown by 2 px) that differ from the median by
MIN_CHANGE levels or more with the speck's polarity: its soft rim comes with it.

The defaults are the strictest rule of benchmarks/dust_threshold.py's grid on held-out training
photos (the fewest clean photos given a speck). It still gives a speck to 6 of 87 of them at 4% of the
dust pixels, so ``--mask auto`` does not use it: what such a rule takes on a clean photo are real
small things (ducks far out on a lake, bubbles, glints, a twig's tip) that look exactly like dust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from upres.kernels.edges import LUMA_WEIGHTS

LUMA = np.array(LUMA_WEIGHTS, np.float32)
MEDIAN = 11  # px: wider than a speck, so the median is the surface under it
NOISE = 15  # px: the window the surround's noise is measured over
MAX_SIDE = 9  # px: a speck's box
MAX_AREA = 40  # px above MIN_CONTRAST
MIN_CHANGE = 8.0  # levels: the rim taken with a speck (what moved a pixel visibly)
GROW = 2  # px: how far the rim may reach beyond the part


@dataclass(frozen=True)
class DustRule:
    min_contrast: float = 20.0  # levels of 255 against the local median
    max_noise: float = 2.0  # levels: the surround's median absolute difference from its median
    contrast_over_noise: float = 4.0
    isolation: float = 4.0  # px: the most that stand out (half contrast) within NOISE px, less the speck
    p_min: float = 0.95  # the network's most sure pixel on the speck


@dataclass(frozen=True)
class Speck:
    box: tuple[int, int, int, int]  # y0, y1, x0, x1
    pixels: np.ndarray  # bool, the box's size
    score: float  # the network's most sure pixel


@dataclass(frozen=True)
class Candidate:
    speck: Speck
    peak: float  # levels: how far it stands out from the median
    noise: float  # levels: the surround's noise
    crowd: float  # px: how many more stand out near it than the speck itself could


def candidates(image: np.ndarray, logits: np.ndarray, min_contrast: float) -> list[Candidate]:
    """Every small compact part standing out by ``min_contrast`` levels, with what the rule tests."""
    scale = 255.0 if image.dtype != np.uint8 else 1.0
    luma = np.clip(np.asarray(image, np.float32) @ LUMA * scale, 0, 255)
    diff = luma - cv2.medianBlur(np.rint(luma).astype(np.uint8), MEDIAN).astype(np.float32)
    absdiff = np.abs(diff)
    noise = cv2.medianBlur(np.clip(np.rint(absdiff), 0, 255).astype(np.uint8), NOISE).astype(np.float32)
    half = (absdiff >= min_contrast / 2).astype(np.float32)
    busy = cv2.boxFilter(half, -1, (NOISE, NOISE), normalize=False, borderType=cv2.BORDER_CONSTANT)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((absdiff >= min_contrast).astype(np.uint8),
                                                               connectivity=8)
    h, w = luma.shape
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW + 1, 2 * GROW + 1))
    out = []
    for i in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if max(bw, bh) > MAX_SIDE or area > MAX_AREA:
            continue
        part = labels[y : y + bh, x : x + bw] == i
        cy, cx = y + bh // 2, x + bw // 2
        y0, y1, x0, x1 = max(0, y - GROW), min(h, y + bh + GROW), max(0, x - GROW), min(w, x + bw + GROW)
        near = np.zeros((y1 - y0, x1 - x0), np.uint8)
        near[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] = part
        sign = 1.0 if float(np.median(diff[y : y + bh, x : x + bw][part])) > 0 else -1.0
        pixels = (cv2.dilate(near, disc) > 0) & (diff[y0:y1, x0:x1] * sign >= MIN_CHANGE)
        sure = float(logits[y : y + bh, x : x + bw][part].max())
        speck = Speck((y0, y1, x0, x1), pixels, 1.0 / (1.0 + math.exp(-sure)))
        # Less the speck's own half-contrast rim, which fits in its box grown by 1 px.
        own = half[max(0, y - 1) : y + bh + 1, max(0, x - 1) : x + bw + 1]
        crowd = float(busy[cy, cx]) - float(own.sum())
        out.append(Candidate(speck, float(absdiff[y : y + bh, x : x + bw][part].max()),
                             float(noise[cy, cx]), crowd))
    return out


def accepts(c: Candidate, r: DustRule) -> bool:
    return (c.noise <= r.max_noise and c.peak >= r.contrast_over_noise * max(c.noise, 1.0)
            and c.crowd <= r.isolation and c.speck.score > r.p_min)


def find(image: np.ndarray, logits: np.ndarray, rule: DustRule | None = None) -> list[Speck]:
    """The dust specks of an H x W x 3 RGB image (float in [0, 1] or uint8) given the thin-detect
    network's H x W logits."""
    r = rule or DustRule()
    return [c.speck for c in candidates(image, logits, r.min_contrast) if accepts(c, r)]
