"""Scratches, hair, creases and dust from the shipped thin-detect network, as confident components.

The network (upres/models/detector.py's architecture, trained on upres/models/thin_synth.py's
damage and look-alikes) gives a logit per pixel; it is run tiled like overlay-detect (a halo of its
probed receptive field, tile origins on its alignment), so the tiled map equals the whole-image
map. A detection is a connected part of ``p > LOW`` that holds a pixel of ``p > HIGH``
(hysteresis: a scratch's faint stretches come with its clear ones), at least MIN_AREA px.

HIGH and MIN_AREA are chosen on held-out *training* photos (every 10th of T91 and BSD200, which the
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
HIGH = 0.9  # a detection needs one pixel at least this sure
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


def components(logits: np.ndarray, high: float = HIGH, low: float = LOW,
               min_area: int = MIN_AREA) -> list[ThinFound]:
    """The confident detections of an H x W logit map."""
    if not 0.0 < low <= high < 1.0:
        raise ValueError(f"thin detector: need 0 < low <= high < 1, got low {low}, high {high}")
    weak = (logits > _logit(low)).astype(np.uint8)
    count, found, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    if count <= 1:
        return []
    labels = np.asarray(found, np.int32)
    peak = np.full(count, -np.inf, np.float32)
    inside = labels > 0
    np.maximum.at(peak, labels[inside], logits[inside])
    out = []
    for i in np.flatnonzero(peak > _logit(high)):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_area:
            continue
        kind = "speck" if max(bw, bh) <= SPECK_EXTENT else "scratch"
        score = float(1.0 / (1.0 + math.exp(-float(peak[i]))))
        out.append(ThinFound(kind, (y, y + bh, x, x + bw), labels[y : y + bh, x : x + bw] == i, score))
    return out


def detect(image: np.ndarray, threads: int = 1, high: float = HIGH, min_area: int = MIN_AREA,
           tile: int = 512) -> list[ThinFound]:
    """Confident scratch and speck detections of an H x W x 3 float32 RGB image in [0, 1]."""
    return components(detector(threads).logits(image, tile), high, LOW, min_area)
