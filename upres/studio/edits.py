"""The mask a studio user sees and edits: detected kinds, then brush and eraser strokes in order.

The detector's masks come per kind (``--mask auto``'s: ``text``, and ``scratch`` and ``dust``
from the thin-structure detector when it is on; ``overlay`` and ``stamp`` have colours too), each
grown as ``--mask auto`` grows it. A label image keeps which kind (or the brush) put each pixel
in the mask, for the overlay; the mask is where the label is not 0. Strokes are kept as vectors,
not pixels: undo and redo are a list operation, and the saved progress stays small for any scan
size.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

BRUSH = 255  # the label of brushed pixels; kinds are numbered from 1
KIND_COLOURS: dict[str, tuple[int, int, int]] = {
    "overlay": (255, 64, 64), "text": (255, 64, 64), "stamp": (255, 160, 0),
    "scratch": (64, 200, 255), "dust": (200, 96, 255), "brush": (64, 255, 96),
}
_OTHER_COLOUR = (255, 255, 0)
MAX_STROKES = 5000
MAX_POINTS = 20000  # per stroke
MAX_RADIUS = 1000.0


class EditError(ValueError):
    """Strokes or kinds a request sent that cannot be applied (HTTP 400)."""


def colour_of(kind: str) -> tuple[int, int, int]:
    return KIND_COLOURS.get(kind, _OTHER_COLOUR)


def hex_colour(kind: str) -> str:
    return "#" + "".join(f"{c:02x}" for c in colour_of(kind))


@dataclass(frozen=True)
class Stroke:
    erase: bool
    radius: float  # image pixels
    points: tuple[tuple[float, float], ...]  # (x, y) image pixels

    @classmethod
    def from_json(cls, data: Any) -> Stroke:
        if not isinstance(data, dict) or data.get("op") not in ("paint", "erase"):
            raise EditError("a stroke is {op: paint|erase, radius, points: [[x, y], ...]}")
        radius, points = data.get("radius"), data.get("points")
        if not isinstance(radius, int | float) or not 0.5 <= radius <= MAX_RADIUS:
            raise EditError(f"stroke radius must be within 0.5..{MAX_RADIUS:g} pixels")
        if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTS:
            raise EditError(f"a stroke has 1..{MAX_POINTS} points")
        parsed = []
        for point in points:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(v, int | float) and math.isfinite(v) for v in point)):
                raise EditError("a stroke point is [x, y], two finite numbers")
            parsed.append((float(point[0]), float(point[1])))
        return cls(data["op"] == "erase", float(radius), tuple(parsed))

    def record(self) -> dict[str, Any]:
        return {"op": "erase" if self.erase else "paint", "radius": self.radius,
                "points": [list(p) for p in self.points]}

    def draw(self, labels: np.ndarray) -> None:
        """Paint this stroke's disc-swept pixels into ``labels`` (BRUSH, or 0 to erase), touching
        only its bounding box: a stroke costs its own size, not the scan's."""
        h, w = labels.shape
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        reach = math.ceil(self.radius) + 1
        x0, x1 = max(0, math.floor(min(xs)) - reach), min(w, math.ceil(max(xs)) + reach + 1)
        y0, y1 = max(0, math.floor(min(ys)) - reach), min(h, math.ceil(max(ys)) + reach + 1)
        if x0 >= x1 or y0 >= y1:
            return
        layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = [(round(x) - x0, round(y) - y0) for x, y in self.points]
        r = max(0, round(self.radius - 0.5))  # radius 0.5: one pixel wide
        for point in pts:
            cv2.circle(layer, point, r, 1, -1)
        for a, b in itertools.pairwise(pts):
            cv2.line(layer, a, b, 1, 2 * r + 1)
        labels[y0:y1, x0:x1][layer > 0] = 0 if self.erase else BRUSH


@dataclass(frozen=True)
class Edits:
    strokes: tuple[Stroke, ...] = ()
    hidden: frozenset[str] = frozenset()  # detected kinds left out of the mask

    @classmethod
    def from_json(cls, data: Any) -> Edits:
        if not isinstance(data, dict):
            raise EditError("edits are {strokes: [...], hidden: [kind, ...]}")
        strokes, hidden = data.get("strokes", []), data.get("hidden", [])
        if not isinstance(strokes, list) or len(strokes) > MAX_STROKES:
            raise EditError(f"strokes must be a list of at most {MAX_STROKES}")
        if not isinstance(hidden, list) or not all(isinstance(k, str) for k in hidden):
            raise EditError("hidden must be a list of kind names")
        return cls(tuple(Stroke.from_json(s) for s in strokes), frozenset(hidden))

    def record(self) -> dict[str, Any]:
        return {"strokes": [s.record() for s in self.strokes], "hidden": sorted(self.hidden)}


def base_labels(kinds: dict[str, np.ndarray], shape: tuple[int, int], hidden: frozenset[str]) -> np.ndarray:
    """uint8 labels: kind i (1-based, in ``kinds``' order) where its mask is, 0 elsewhere; a pixel
    of several kinds keeps the first."""
    labels = np.zeros(shape, np.uint8)
    for index, (kind, mask) in reversed(list(enumerate(kinds.items(), start=1))):
        if kind not in hidden:
            labels[mask] = index
    return labels


def edited_labels(kinds: dict[str, np.ndarray], shape: tuple[int, int], edits: Edits) -> np.ndarray:
    labels = base_labels(kinds, shape, edits.hidden)
    for stroke in edits.strokes:
        stroke.draw(labels)
    return labels


def overlay_rgba(labels: np.ndarray, kinds: list[str], alpha: int = 140) -> np.ndarray:
    """(h, w, 4) uint8: each labelled pixel in its kind's colour, the rest transparent."""
    palette = np.zeros((256, 4), np.uint8)
    for index, kind in enumerate(kinds, start=1):
        palette[index] = (*colour_of(kind), alpha)
    palette[BRUSH] = (*colour_of("brush"), alpha)
    return palette[labels]
