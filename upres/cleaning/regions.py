"""Where the cleaning works: the mask's connected parts, each with a margin of context around it.

Inpainting and texture need the pixels around a hole, not the whole image, so an image whose mask
covers one corner costs that corner only. Parts of the mask closer than twice the context share a
region (their margins would overlap); every mask pixel belongs to exactly one region, so regions
can be processed in any order and give the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from upres.runtime.tiling import Rect


@dataclass(frozen=True)
class Region:
    index: int
    label: int  # value of this region's pixels in RegionPlan.labels
    box: Rect  # the region's mask pixels plus `context` on every side, clipped to the image


@dataclass(frozen=True)
class RegionPlan:
    height: int
    width: int
    context: int
    regions: tuple[Region, ...]
    labels: np.ndarray  # (H, W) int32: the region label of each pixel's neighbourhood, 0 = none

    @property
    def pixels(self) -> int:
        """Pixels inside region boxes: the work done, against height * width for the whole image."""
        return sum(r.box.height * r.box.width for r in self.regions)

    def owned(self, region: Region, mask: np.ndarray) -> np.ndarray:
        """The mask pixels inside ``region.box`` that this region writes (others belong to a
        neighbouring region whose box overlaps this one)."""
        b = region.box
        return mask[b.y0 : b.y1, b.x0 : b.x1] & (self.labels[b.y0 : b.y1, b.x0 : b.x1] == region.label)


def plan_regions(mask: np.ndarray, context: int, align: int = 1) -> RegionPlan:
    """Group the mask into regions: dilating it by ``context`` with a square joins the parts whose
    margins touch, and the bounding box of each dilated part is its region's box, with its top-left
    corner moved up and left onto a multiple of ``align`` (for networks with strided layers, whose
    result depends on where their input starts: see ``upres.runtime.tiling.plan_grid``)."""
    if context < 0:
        raise ValueError(f"context must be >= 0, got {context}")
    if align < 1:
        raise ValueError(f"align must be >= 1, got {align}")
    h, w = mask.shape
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * context + 1, 2 * context + 1))
    near = cv2.dilate(mask.astype(np.uint8), square) if context else mask.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8, ltype=cv2.CV_32S)
    regions: list[Region] = []
    for label in range(1, count):
        x, y = int(stats[label, cv2.CC_STAT_LEFT]), int(stats[label, cv2.CC_STAT_TOP])
        bw, bh = int(stats[label, cv2.CC_STAT_WIDTH]), int(stats[label, cv2.CC_STAT_HEIGHT])
        y0, x0 = y - y % align, x - x % align
        regions.append(Region(len(regions), label, Rect(y0, y + bh, x0, x + bw)))
    return RegionPlan(h, w, context, tuple(regions), labels)
