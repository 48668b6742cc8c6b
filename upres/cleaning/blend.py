"""Local blending of the filled patch into the original: feathered alpha, or a Poisson correction
of the patch (it meets the original at the mask's border) followed by the same feather.

Both return the original's own values (the same float objects, bit for bit) outside the mask:
whatever the patch holds there is never used.
"""

from __future__ import annotations

import cv2
import numpy as np

from upres.core.choices import CleanBlend
from upres.kernels.inpaint import inpaint_planes

# cv2.seamlessClone erodes its mask 3 times with a 3x3 square before using the source gradients
# (seamless_cloning_impl.cpp); 2 more pixels keep the gradients that cross the solve region's
# border clear of the masked (overlay) pixels.
_CLONE_ERODE = 3
_CLONE_MARGIN = 2
_CLONE_PAD = _CLONE_ERODE + _CLONE_MARGIN + 2
_MID = 128.0  # 8-bit offset that holds the signed correction
_MAX_GAIN = 255.0 * 256.0  # finest step of the correction: 1/256 of an 8-bit level


def alpha_blend(original: np.ndarray, patch: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """original + alpha * (patch - original), and exactly ``original`` where alpha is 0."""
    a = alpha[..., None]
    mixed = original + a * (patch - original)
    return np.where(a > 0, mixed, original).astype(np.float32)


def poisson_blend(original: np.ndarray, patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson (gradient-domain) blend: inside ``mask`` the result has the patch's gradients and
    meets the original at the mask's border, i.e. ``patch + h`` with ``h`` the harmonic (membrane)
    interpolation of ``original - patch`` from just outside the mask.

    OpenCV's solver (cv2.seamlessClone) takes 8-bit images only, so it is given the correction,
    not the images: a flat source (no gradients inside) and ``128 + gain * (original - patch)``,
    with the gain as large as the correction's range allows. The patch itself keeps its full
    precision (16-bit images stay 16-bit).
    """
    h, w = mask.shape
    if not mask.any():
        return original.copy()
    region = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=_CLONE_MARGIN) > 0
    diff = (original - patch).astype(np.float32)
    boundary = np.abs(diff[region & ~mask])
    peak = float(boundary.max()) if boundary.size else 0.0
    if peak <= 0.0:
        return np.where(mask[..., None], patch, original).astype(np.float32)
    gain = min(_MAX_GAIN, 120.0 / peak)
    # Inside the mask the difference is the overlay itself; continued smoothly from outside
    # instead, it is a sound boundary value where the mask runs off the image (there is no
    # outside there) and gives the solver no step to smear inwards.
    diff = inpaint_planes(diff, mask)
    target = _MID + gain * diff
    dst8: np.ndarray = np.clip(np.rint(target), 0, 255).astype(np.uint8)
    src8: np.ndarray = np.full_like(dst8, int(_MID))
    clone = cv2.dilate(region.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=_CLONE_ERODE)
    pad = _CLONE_PAD
    dst8 = cv2.copyMakeBorder(dst8, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src8 = cv2.copyMakeBorder(src8, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    clone = cv2.copyMakeBorder(clone * np.uint8(255), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, bw, bh = cv2.boundingRect(clone)
    # seamlessClone centres the mask's bounding box on this point: this keeps it in place.
    centre = (x + bw // 2, y + bh // 2)
    solved = cv2.seamlessClone(src8, dst8, clone, centre, cv2.NORMAL_CLONE)[pad : pad + h, pad : pad + w]
    # The solver truncates to 8 bits (floor): +0.5 recentres the step.
    correction = (solved.astype(np.float32) - np.float32(_MID) + np.float32(0.5)) / np.float32(gain)
    out = np.clip(patch + correction, 0.0, 1.0)
    return np.where(mask[..., None], out, original).astype(np.float32)


def blend(original: np.ndarray, patch: np.ndarray, mask: np.ndarray, alpha: np.ndarray,
          method: CleanBlend) -> np.ndarray:
    """Blend ``patch`` into ``original`` over ``mask`` (bool) with ``method``. ``alpha`` is the
    feathered mask; Poisson corrects the patch first and feathers too, so the two methods differ
    only by the correction."""
    if method is CleanBlend.POISSON:
        patch = poisson_blend(original, patch, mask)
    return alpha_blend(original, patch, alpha)
