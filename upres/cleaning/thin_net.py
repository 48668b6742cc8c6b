"""Scratches, hair, creases and dust from the shipped thin-detect network, as confident components.

The network (upres/models/detector.py's architecture, trained on upres/models/thin_synth.py's
damage and look-alikes) gives a logit per pixel; it is run tiled like overlay-detect (a halo of its
probed receptive field, tile origins on its alignment), so the tiled map equals the whole-image
map. A detection is a connected part of ``p > LOW`` (hysteresis: a scratch's faint stretches come
with its clear ones) of at least MIN_AREA px that is either

- a *scratch*: longer than SPECK_EXTENT, at least MIN_LENGTH px along its box, with a pixel of
  ``p > HIGH``. Photos are full of short thin bright and dark things (glints on water, twigs,
  window bars) that the network, seeing 35 px, cannot always tell from a scratch; long ones they
  rarely are;
- a *speck*: within SPECK_EXTENT, with a pixel of ``p > SPECK_HIGH``, which is stricter for the
  same reason (a glint is a speck).

and, when the image is given, whose centre line stands out from *both* its sides alike at MIN_SIDES
of its points at least (``sides_agree``). A scratch lies over one surface, which goes on beside it on
both sides; most of what the network confuses with one is a contour between two surfaces (a roof
against the sky, a fish's outline, a rim), whose sides differ.

Two rules. ``THIN`` (`--detect thin`) is chosen on held-out *training* photos (every 10th of T91
and BSD200, which the network never saw, at 1x, 0.7x and 0.5x), with damage from the training
generator: the most recall for which none of the clean ones gets any detection
(benchmarks/thin_threshold.py). It still takes some long thin lines of the scene (a pole, a road
marking) on other photos, so the default, ``SURE``, also asks for a confident network over the
whole component (its mean logit), a longer box and a *grey* centre line (``neutral``: scraped
emulsion shows the paper's white, a scratch on the negative prints black), chosen so that none
of the network's 786 training images gets a detection (benchmarks/thin_components.py;
docs/CLEAN_DETECT.md). Once it finds one the image is known scratched, and its detections of a
looser rule (``SURE.then``: shorter, less sure, greyish, no sides test) are taken too; a photo
without a sure scratch gains none. Specks are read by upres.cleaning.dust_net, as a photo's crowd.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from upres.cleaning.detect import OverlayMaskDetector
from upres.kernels.edges import LUMA_WEIGHTS
from upres.runtime.catalog import builtin_path

MODEL_NAME = "thin-detect"
LOW = 0.3  # extends a detection along its fainter pixels
HIGH = 0.8  # a scratch needs one pixel at least this sure
MIN_LENGTH = 60  # px: the longer side of a scratch's box
SPECK_HIGH = 1.0  # a speck needs one pixel at least this sure; 1.0: specks are not taken
TILE = 512  # px: the logit map is exact at any tile size; this one bounds the run's memory
MIN_AREA = 3  # px: single pixels are noise, grain and JPEG blocks
SPECK_EXTENT = 10  # px: a detection whose box side is at most this is a speck, else a scratch
MIN_SIDES = 0.3  # share of a scratch's centre line that stands out from both sides alike
MIN_RIDGE = 8.0  # levels of 255: the least a centre-line point differs from its sides' mean
SIDE_GAP = 2.5  # px beyond the line's half width where its sides are read
NEUTRAL_FLOOR = 12.0  # levels of 255: a centre-line point this grey is neutral whatever its sides
NEUTRAL_SHARE = 0.6  # or one whose chroma is at most this share of its sides'
LUMA = np.array(LUMA_WEIGHTS, np.float32)


@dataclass(frozen=True)
class ThinFound:
    kind: str  # "scratch" or "speck"
    box: tuple[int, int, int, int]  # y0, y1, x0, x1
    pixels: np.ndarray  # bool, the box's size
    score: float  # the highest probability inside


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def available() -> bool:
    return builtin_path(MODEL_NAME).is_file()


@functools.lru_cache(maxsize=4)
def detector(threads: int = 1) -> OverlayMaskDetector:
    return OverlayMaskDetector(builtin_path(MODEL_NAME), threads)


@dataclass(frozen=True)
class Thresholds:
    high: float = HIGH
    min_length: int = MIN_LENGTH
    speck_high: float = SPECK_HIGH
    low: float = LOW
    min_area: int = MIN_AREA
    min_sides: float = MIN_SIDES
    min_mean_logit: float = -math.inf  # over a scratch's pixels: the network's surest pixel saturates
    min_neutral: float = 0.0  # share of a scratch's centre line that is grey (``neutral``)
    min_colour_spread: float = 0.0  # the photo's (``colour_spread``); below it nothing is looked for
    # once a detection passes this rule the image is known scratched, and its detections of this
    # looser rule are taken too (a clean image has none of this rule's, so it gains none of these)
    then: Thresholds | None = None


# `--detect thin`: scratches and hair, some of the scene's long thin lines with them.
THIN = Thresholds()
# `--detect scratch` (the default): sure enough that none of the network's 786 training images
# (262 photos at 1x, 0.7x and 0.5x) gets a detection (docs/CLEAN_DETECT.md, *Scratches by
# default*; benchmarks/thin_components.py).
SURE = Thresholds(min_length=80, min_mean_logit=3.5, min_neutral=0.7, min_colour_spread=8.0,
                  then=Thresholds(min_length=45, min_mean_logit=2.5, min_sides=0.0, min_neutral=0.3,
                                  min_colour_spread=8.0))
SPREAD_SIDE = 256  # px: the photo's longer side when its colour spread is read
SPREAD_BIN = 4  # levels of luma per bin


def colour_spread(image: np.ndarray) -> float:
    """How much a photo's colour says beyond its luma: the 90th percentile, over its pixels (at
    SPREAD_SIDE px), of |Cb| + |Cr| away from the median colour of pixels of the same luma (bins of
    SPREAD_BIN levels). A black-and-white print reads 0 and a sepia-toned one 1-6 (10 once
    noisy and JPEG'd: 10.5); colour photos 2-163, 22 at the median. In a toned print every pixel of
    one luma has one colour, so a white scratch is as grey as a bright line of the scene and the
    grey test tells nothing: 13 of the 786 training images made gray, 8 made sepia, got a sure
    scratch without this gate, none with it (docs/CLEAN_DETECT.md)."""
    rgb = np.asarray(image)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    f = SPREAD_SIDE / max(rgb.shape[:2])
    if f < 1:
        rgb = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.float32)
    bins = ycc[:, 0].astype(np.int32) // SPREAD_BIN
    off = np.zeros(len(ycc), np.float32)
    for b in np.unique(bins):
        sel = bins == b
        off[sel] = np.abs(ycc[sel, 1:] - np.median(ycc[sel, 1:], axis=0)).sum(axis=1)
    return float(np.percentile(off, 90))


@dataclass(frozen=True)
class CentreLine:
    """RGB samples (N x 3, levels of 255) along a line's centre, on it and on its two sides."""

    mid: np.ndarray
    plus: np.ndarray
    minus: np.ndarray


def centre_line(image: np.ndarray, line: np.ndarray) -> CentreLine | None:
    """The samples of ``line`` (bool) over an H x W x 3 RGB crop in levels of 255: the sides are
    read along the normal, from the structure tensor of the blurred mask, SIDE_GAP px beyond the
    half width (area over centre-line length). None for a line of fewer than 3 centre points."""
    centre = cv2.ximgproc.thinning(line.astype(np.uint8) * 255) > 0
    ys, xs = np.nonzero(centre)
    if len(ys) < 3:
        return None
    soft = cv2.GaussianBlur(line.astype(np.float32), (0, 0), 1.5)
    gx, gy = cv2.Sobel(soft, cv2.CV_32F, 1, 0), cv2.Sobel(soft, cv2.CV_32F, 0, 1)
    jxx, jxy, jyy = (cv2.GaussianBlur(g, (0, 0), 3.0)[ys, xs] for g in (gx * gx, gx * gy, gy * gy))
    theta = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # the major eigenvector: across the line
    nx, ny = np.cos(theta), np.sin(theta)
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.8)

    def at(d: float) -> np.ndarray:
        mx, my = (xs + d * nx).astype(np.float32)[None], (ys + d * ny).astype(np.float32)[None]
        return np.asarray(cv2.remap(smooth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)[0])

    d = float(line.sum()) / len(ys) / 2 + SIDE_GAP
    return CentreLine(at(0.0), (at(d) + at(d + 1.5)) / 2, (at(-d) + at(-d - 1.5)) / 2)


def sides_agree(c: CentreLine) -> float:
    """The share of the centre line where it differs in luma from the mean of its two sides by
    MIN_RIDGE or more and by more than twice their difference from each other."""
    mid, plus, minus = c.mid @ LUMA, c.plus @ LUMA, c.minus @ LUMA
    ridge = mid - (plus + minus) / 2
    ridge = ridge * np.sign(np.median(ridge))  # bright or dark, the line's own polarity
    return float(((ridge >= MIN_RIDGE) & (ridge > 2 * np.abs(plus - minus))).mean())


def chroma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb.max(axis=-1) - rgb.min(axis=-1))


def neutral(c: CentreLine) -> float:
    """The share of the centre line that is grey: its chroma within NEUTRAL_FLOOR levels, or
    NEUTRAL_SHARE of its sides' at most. A scratch is scraped emulsion (the paper's white) or a
    scratch on the negative (black) drawn over the photo; a pole, a road marking or a rim is
    the scene's own colour."""
    sides = chroma((c.plus + c.minus) / 2)
    return float((chroma(c.mid) <= np.maximum(NEUTRAL_FLOOR, NEUTRAL_SHARE * sides)).mean())


@dataclass(frozen=True)
class Parts:
    """The connected parts of ``p > low`` of a logit map (label 0: the rest), each with its box
    (OpenCV's stats: x, y, width, height, area), surest and mean logit."""

    labels: np.ndarray
    stats: np.ndarray
    peak: np.ndarray
    mean: np.ndarray

    @classmethod
    def of(cls, logits: np.ndarray, low: float) -> Parts:
        weak = (logits > _logit(low)).astype(np.uint8)
        count, found, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
        labels = np.asarray(found, np.int32)
        peak = np.full(count, -np.inf, np.float32)
        total = np.zeros(count, np.float64)
        inside = labels > 0
        np.maximum.at(peak, labels[inside], logits[inside])
        np.add.at(total, labels[inside], logits[inside])
        peak[0] = -np.inf  # the background is no part
        return cls(labels, np.asarray(stats), peak, total / np.maximum(np.asarray(stats)[:, 4], 1))

    def crop(self, image: np.ndarray, i: int, pad: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """(``image`` around part ``i``, the part's pixels there): ``pad`` px of room for its
        sides and the structure tensor's blur."""
        x, y, bw, bh = (int(v) for v in self.stats[i, :4])
        y0, x0 = max(0, y - pad), max(0, x - pad)
        return (image[y0 : y + bh + pad, x0 : x + bw + pad],
                self.labels[y0 : y + bh + pad, x0 : x + bw + pad] == i)


def components(logits: np.ndarray, t: Thresholds | None = None,
               image: np.ndarray | None = None, parts: Parts | None = None) -> list[ThinFound]:
    """The confident detections of an H x W logit map; with the H x W x 3 RGB image (float in
    [0, 1] or uint8) scratches must also pass ``sides_agree`` and ``neutral``. ``parts``: the
    map's ``Parts.of(logits, t.low)`` where the caller has them. Where ``t.then`` is set and a
    detection passes ``t``, those of ``t.then`` are added (the image is known scratched)."""
    t = t or Thresholds()
    found = _components(logits, t, image, parts)
    if t.then is None or not found:
        return found
    more = _components(logits, t.then, image, parts if t.then.low == t.low else None)
    boxes = {f.box for f in found}
    return found + [f for f in more if f.box not in boxes]


def _components(logits: np.ndarray, t: Thresholds, image: np.ndarray | None,
                parts: Parts | None) -> list[ThinFound]:
    if not 0.0 < t.low <= min(t.high, t.speck_high) and t.high < 1.0:
        raise ValueError(f"thin detector: need 0 < low <= high < 1, got low {t.low}, high {t.high}")
    if parts is None:
        parts = Parts.of(logits, t.low)
    labels, stats, peak = parts.labels, parts.stats, parts.peak
    reads_lines = image is not None and (t.min_sides > 0 or t.min_neutral > 0)
    scale = 255.0 if image is not None and image.dtype != np.uint8 else 1.0
    out = []
    sure_speck = _logit(t.speck_high) if t.speck_high < 1.0 else np.inf
    for i in (int(j) for j in np.flatnonzero(peak > _logit(t.high))):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        kind = "speck" if max(bw, bh) <= SPECK_EXTENT else "scratch"
        if area < t.min_area or (kind == "speck" and not peak[i] > sure_speck) or \
                (kind == "scratch" and (max(bw, bh) < t.min_length or parts.mean[i] < t.min_mean_logit)):
            continue
        pixels = labels[y : y + bh, x : x + bw] == i
        if kind == "scratch" and reads_lines:
            assert image is not None
            crop, part = parts.crop(image, i)  # levels of 255, the crop alone
            line = centre_line(np.asarray(crop, np.float32) * scale, part)
            if line is None or sides_agree(line) < t.min_sides or neutral(line) < t.min_neutral:
                continue
        score = float(1.0 / (1.0 + math.exp(-float(peak[i]))))
        out.append(ThinFound(kind, (y, y + bh, x, x + bw), pixels, score))
    return out


def detect(image: np.ndarray, threads: int = 1, thresholds: Thresholds | None = None,
           tile: int = TILE) -> list[ThinFound]:
    """Confident scratch and speck detections of an H x W x 3 float32 RGB image in [0, 1]; the
    caller checks the rule's colour gate first (the network need not run on a photo it skips)."""
    return components(detector(threads).logits(image, tile), thresholds, image)
