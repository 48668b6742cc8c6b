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

The thresholds are chosen on held-out *training* photos (every 10th of T91 and BSD200, which the
network never saw), with damage from the training generator: the most recall for which at most
one clean photo in 30 gets any detection (benchmarks/thin_threshold.py; docs/CLEAN_DETECT.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from upres.cleaning.detect import OverlayMaskDetector
from upres.runtime.catalog import builtin_path

MODEL_NAME = "thin-detect"
LOW = 0.3  # extends a detection along its fainter pixels
HIGH = 0.8  # a scratch needs one pixel at least this sure
MIN_LENGTH = 60  # px: the longer side of a scratch's box
SPECK_HIGH = 1.0  # a speck needs one pixel at least this sure; 1.0: specks are not taken
MIN_AREA = 3  # px: single pixels are noise, grain and JPEG blocks
SPECK_EXTENT = 10  # px: a detection whose box side is at most this is a speck, else a scratch


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


def components(logits: np.ndarray, t: Thresholds | None = None) -> list[ThinFound]:
    """The confident detections of an H x W logit map."""
    t = t or Thresholds()
    if not 0.0 < t.low <= min(t.high, t.speck_high) and t.high < 1.0:
        raise ValueError(f"thin detector: need 0 < low <= high < 1, got low {t.low}, high {t.high}")
    weak = (logits > _logit(t.low)).astype(np.uint8)
    count, found, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    if count <= 1:
        return []
    labels = np.asarray(found, np.int32)
    peak = np.full(count, -np.inf, np.float32)
    inside = labels > 0
    np.maximum.at(peak, labels[inside], logits[inside])
    out = []
    sure_speck = _logit(t.speck_high) if t.speck_high < 1.0 else np.inf
    for i in np.flatnonzero(peak > _logit(t.high)):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        kind = "speck" if max(bw, bh) <= SPECK_EXTENT else "scratch"
        if area < t.min_area or (kind == "speck" and not peak[i] > sure_speck) or \
                (kind == "scratch" and max(bw, bh) < t.min_length):
            continue
        score = float(1.0 / (1.0 + math.exp(-float(peak[i]))))
        out.append(ThinFound(kind, (y, y + bh, x, x + bw), labels[y : y + bh, x : x + bw] == i, score))
    return out


def detect(image: np.ndarray, threads: int = 1, thresholds: Thresholds | None = None,
           tile: int = 512) -> list[ThinFound]:
    """Confident scratch and speck detections of an H x W x 3 float32 RGB image in [0, 1]."""
    return components(detector(threads).logits(image, tile), thresholds)
