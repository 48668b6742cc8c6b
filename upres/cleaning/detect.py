"""Automatic overlay detection (`--mask auto`): the shipped overlay-detect model on ONNX Runtime.

The model is run tile by tile with a halo of its probed receptive field, on tiles whose origins are
multiples of its probed alignment (it has a stride-2 layer), so the tiled mask equals the whole-image
mask while memory stays bounded by the tile size. No torch here: this is the run-time path.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np

from upres.core.model import ModelInfo
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.blend import apply_tiled
from upres.runtime.catalog import builtin_path, resolve
from upres.runtime.stages import run_hwc

MODEL_NAME = "overlay-detect"
DEFAULT_TILE = 512  # core px per side: ~25 MB of activations per tile at full resolution
NOT_RUN = -100.0  # the logit of pixels in tiles `where` skipped: no overlay


class OverlayMaskDetector:
    """One ONNX Runtime session of a detect model, run tiled over images."""

    def __init__(self, model: Path | None = None, threads: int = 0) -> None:
        ref = resolve(model if model is not None else builtin_path(MODEL_NAME))
        if ref.info.kind != "detect" or ref.info.output_channels != 1:
            raise ValueError(f"{ref.path}: a {ref.info.kind} model with {ref.info.output_channels} "
                             "output channels, not an overlay detector (kind 'detect', 1 channel)")
        self.path = ref.path
        self.sha256 = ref.sha256
        self.info: ModelInfo = ref.info
        self.backend = OrtBackend(ref.path, "ort-cpu", threads)

    def logits(self, image: np.ndarray, tile: int = DEFAULT_TILE,
               where: np.ndarray | None = None) -> np.ndarray:
        """H x W float32 overlay logits of an H x W x 3 float32 RGB image in [0, 1].

        `tile` = 0 runs the whole image at once (the reference the tiled result equals). With
        `where` (H x W bool), only the tiles that touch it run; the rest reads NOT_RUN.
        """
        _check_image(image)
        base = None if where is None else np.full((*image.shape[:2], 1), NOT_RUN, np.float32)
        logits, _ = apply_tiled(np.asarray(image, np.float32), lambda crop: run_hwc(self.backend, crop),
                                tile, self.info.receptive_field, self.info.alignment, where, base)
        return logits[..., 0]

    def mask(self, image: np.ndarray, threshold: float = 0.5, tile: int = DEFAULT_TILE) -> np.ndarray:
        """H x W bool: pixels whose overlay probability exceeds `threshold`."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"detect: threshold must be in (0, 1), got {threshold}")
        # Compare logits with logit(threshold): no sigmoid over the whole image.
        return self.logits(image, tile) > math.log(threshold / (1.0 - threshold))


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect: image must be H x W x 3 RGB, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"detect: empty image {image.shape}")


@functools.lru_cache(maxsize=4)
def detector(threads: int = 1, model: Path | None = None) -> OverlayMaskDetector:
    """The shipped overlay detector (or ``model``) with ``threads`` inference threads (0: all cores)."""
    return OverlayMaskDetector(model, threads)


def detect_overlay_mask(image: np.ndarray, threshold: float = 0.5, model: Path | None = None) -> np.ndarray:
    """Mask (H x W bool) of text, date stamps, logos and scratches in an H x W x 3 float32 RGB image
    in [0, 1], from the shipped overlay-detect model (or `model`, another detect ONNX file)."""
    return detector(0, model).mask(image, threshold)


def estimate_stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width (px) of the overlay in `mask`; 0.0 for an empty mask.

    The distance transform is largest on a stroke's centre line, where it equals half the stroke
    width plus half a pixel (it measures centre-to-centre distance to the nearest background pixel);
    the median over those ridge pixels ignores the few wide blobs (filled logos) among many strokes.
    """
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"estimate_stroke_width: mask must be H x W, got shape {mask.shape}")
    if not m.any():
        return 0.0
    # Pad with background so strokes touching the border are measured to their true edge, not
    # treated as running on beyond it.
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (m > 0)
    return float(max(1.0, 2.0 * float(np.median(dist[ridge])) - 1.0))
