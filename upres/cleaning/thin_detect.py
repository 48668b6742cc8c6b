"""Scratches, hair, creases and dust specks: thin or tiny structures that stand out from their
surroundings, found with classical cues (no network).

A scratch or a speck of dust is a ridge or a blob of 1-6 px, brighter or darker than everything
around it, on a photo whose own texture near it is weaker. The cues, per polarity, on luma:

1. top-hat: the luma minus its morphological opening (bright) or closing minus luma (dark) with a
   disc wider than any defect: what is thinner than the disc;
2. against the neighbourhood: the top-hat over the mean top-hat of a wide window around it, so a
   ridge on gravel, grass or fur (whose top-hat is high everywhere) does not count;
3. hysteresis: strong pixels seed, weak ones connected to them extend (a scratch fades where it
   crosses a background of its own brightness);
4. shape: a component is a *scratch* when it is long and thin (skeleton length >= SCRATCH_LENGTH,
   area / length <= MAX_WIDTH) and a *speck* when it is small and compact; everything else is left.

Every kept component carries a score (its median contrast over the neighbourhood's): the auto mask
takes only confident ones. The detector works on the whole image (its reach is WINDOW px), so
there is no tiling to get wrong; its cost is a few separable filters per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from upres.kernels.edges import LUMA_WEIGHTS

DISC = 11  # px: wider than a 4 px scratch, so the opening removes it
WINDOW = 41  # px: the neighbourhood a defect must stand out of
STRONG = 28.0  # levels of 255 a seed pixel stands above what the opening leaves
WEAK = 12.0
FLOOR = np.float32(3.0)  # levels: film grain and JPEG noise in a flat sky still top-hat a little
RATIO_STRONG = 6.0  # top-hat over the neighbourhood's mean top-hat
RATIO_WEAK = 3.0
SCRATCH_LENGTH = 40  # px of skeleton
MAX_WIDTH = 5.0  # px: mean width of a scratch (area / skeleton length)
SPECK_AREA = (2, 60)  # px
SPECK_EXTENT = 9  # px: the bounding box side of a speck
SPECK_FILL = 0.35  # area / bounding box area: compact, not a stroke fragment
# What the auto mask takes: a median top-hat of CONTRAST levels or more, with the 90th percentile of
# the top-hat in a 4 px ring around it at most RING[kind] of that (a defect on a quiet background).
# Measured on 40 BSD100 photos (docs/CLEAN_DETECT.md): no setting of these cues keeps most clean
# photos untouched and finds most defects, which is why `--mask auto` leaves this detector off
# unless asked (--detect text,thin).
CONTRAST = 50.0
RING = {"scratch": 0.5, "speck": 0.3}
RING_PX = 4


@dataclass(frozen=True)
class Thin:
    kind: str  # "scratch" or "speck"
    polarity: str  # "bright" or "dark"
    box: tuple[int, int, int, int]  # y0, y1, x0, x1
    pixels: np.ndarray  # bool, the box's size
    score: float  # median of top-hat / neighbourhood over its pixels
    length: float  # skeleton px (scratches) or the box's longer side (specks)
    contrast: float  # median top-hat over its pixels (levels of 255)
    ring: float  # 90th percentile of the top-hat just around it

    @property
    def confident(self) -> bool:
        return self.contrast >= CONTRAST and self.ring <= RING[self.kind] * self.contrast


def luma(image: np.ndarray) -> np.ndarray:
    rgb = np.asarray(image, np.float32)
    return (rgb @ np.array(LUMA_WEIGHTS, np.float32)) * np.float32(255.0)


def _tophat(y: np.ndarray, bright: bool) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (DISC, DISC))
    op = cv2.MORPH_TOPHAT if bright else cv2.MORPH_BLACKHAT
    return cv2.morphologyEx(y, op, disc, borderType=cv2.BORDER_REPLICATE)


def _ring(th: np.ndarray, box: tuple[int, int, int, int], sub: np.ndarray) -> float:
    y0, y1, x0, x1 = box
    h, w = th.shape
    ys, xs = max(0, y0 - RING_PX), max(0, x0 - RING_PX)
    ye, xe = min(h, y1 + RING_PX), min(w, x1 + RING_PX)
    inside = np.zeros((ye - ys, xe - xs), np.uint8)
    inside[y0 - ys : y1 - ys, x0 - xs : x1 - xs] = sub
    ring = (cv2.dilate(inside, np.ones((2 * RING_PX + 1,) * 2, np.uint8)) > 0) & (inside == 0)
    return float(np.percentile(th[ys:ye, xs:xe][ring], 90)) if ring.any() else 0.0


def _components(th: np.ndarray, polarity: str) -> list[Thin]:
    # The median ignores the defect itself (a few px of a 41 px window) and follows the texture.
    around = cv2.medianBlur(np.clip(th, 0, 255).astype(np.uint8), WINDOW).astype(np.float32) + FLOOR
    ratio = th / around
    strong = (th > STRONG) & (ratio > RATIO_STRONG)
    weak = (th > WEAK) & (ratio > RATIO_WEAK)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
    if count <= 1:
        return []
    seeded = np.zeros(count, bool)
    seeded[np.unique(labels[strong])] = True
    seeded[0] = False
    out = []
    for i in np.flatnonzero(seeded):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        sub = labels[y : y + bh, x : x + bw] == i
        score = float(np.median(ratio[y : y + bh, x : x + bw][sub]))
        box = (y, y + bh, x, x + bw)
        contrast = float(np.median(th[y : y + bh, x : x + bw][sub]))
        ring = _ring(th, box, sub)
        if SPECK_AREA[0] <= area <= SPECK_AREA[1] and max(bw, bh) <= SPECK_EXTENT \
                and area >= SPECK_FILL * bw * bh:
            out.append(Thin("speck", polarity, box, sub, score, float(max(bw, bh)), contrast, ring))
            continue
        if max(bw, bh) < SCRATCH_LENGTH:
            continue
        skeleton = cv2.ximgproc.thinning(sub.astype(np.uint8) * np.uint8(255))
        length = float(np.count_nonzero(skeleton))
        if length >= SCRATCH_LENGTH and area / length <= MAX_WIDTH:
            out.append(Thin("scratch", polarity, box, sub, score, length, contrast, ring))
    return out


def detect_thin(image: np.ndarray) -> list[Thin]:
    """Scratch and speck candidates (bright and dark) of an H x W x 3 float32 RGB image in [0, 1]."""
    y = luma(image)
    return _components(_tophat(y, True), "bright") + _components(_tophat(y, False), "dark")
