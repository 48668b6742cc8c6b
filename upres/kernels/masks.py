"""Mask morphology: grow a mask, close its small holes, feather its edge, keep the parts that touch
a seed. `upres clean` applies these to a user's or a detector's mask, and the fill network's training data
(models/fill_data.py) grows its overlay masks the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

# Enclosed keep-areas up to this many pixels are closed (the inside of an "o" or "8" in a date
# stamp): a speck of original pixels inside a fill reads as a blemish of its own.
MIN_HOLE_AREA = 64


def touching(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 8-connected parts of bool ``mask`` that hold a pixel of bool ``seeds`` (seeds outside
    ``mask`` count for nothing)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[seeds])] = True
    keep[0] = False
    return keep[labels]


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate by ``px`` pixels with an elliptical (disc) element: overlays carry anti-aliased,
    shadowed or JPEG-smeared edges just outside what a detector or a brush marks."""
    if px <= 0:
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


def hole_area(grow_px: int) -> int:
    """Largest enclosed hole that is closed. It never shrinks as ``grow`` rises, so a saved mask
    (all its holes larger than this) passes through again unchanged with ``--grow 0``."""
    return max(MIN_HOLE_AREA, (2 * grow_px + 1) ** 2)


def close_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill keep-areas enclosed by the mask (not touching the image border) of at most
    ``max_area`` pixels. Idempotent: the holes left are all larger than ``max_area``."""
    keep = (~mask).astype(np.uint8)
    # 4-connected keep-areas pair with 8-connected mask strokes: a diagonal stroke encloses.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=4)
    h, w = mask.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]
    enclosed = (x > 0) & (y > 0) & (right < w) & (bottom < h)
    hole = enclosed & (stats[:, cv2.CC_STAT_AREA] <= max_area)
    hole[0] = False  # label 0 is the mask itself
    if not hole.any():
        return mask.copy()
    return mask | hole[labels]


def final_mask(raw: np.ndarray, grow_px: int) -> np.ndarray:
    """The mask the fill works on: ``raw`` grown, then small holes closed. ``final_mask(m, 0)`` of
    a final mask ``m`` is ``m`` again, which makes ``--save-mask`` masks reproduce their result."""
    return close_holes(grow(raw, grow_px), hole_area(grow_px))


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """Float alpha: 1 deep inside the mask, ramping down over ``px`` pixels towards its edge and
    exactly 0 outside, so a blend with it never touches a pixel outside the mask.

    The image border is not an edge: a mask running off the image stays fully opaque there.
    """
    if px <= 0:
        return mask.astype(np.float32)
    pad = px + 1
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[pad:-pad, pad:-pad]
    return np.minimum(dist / np.float32(px + 1), np.float32(1.0)).astype(np.float32)
