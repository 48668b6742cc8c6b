"""OpenCV inpainting of masked pixels at full float precision: the fill `upres clean` starts from
and the input the learned fill is trained on (models/fill_data.py), so both sides share one
definition."""

from __future__ import annotations

import cv2
import numpy as np

_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
# Neighbourhood (pixels) each filled pixel is estimated from. Measured on overlays over the test
# photos (docs/CLEAN.md): 8 beats 5 by 0.09 dB (85 of 119 images, same SSIM) and 3 by 0.26 dB;
# 12 adds 0.004 dB, loses 0.003 SSIM and takes about twice as long.
INPAINT_RADIUS = 8
# OpenCV's inpainting adds an error of about 1.5 units whatever the data's range (a constant 100
# comes back as 99..103 in 8-bit; on [0, 1] floats the estimate is garbage), so planes are
# inpainted at a 16-bit scale, where that error is 1/40 of an 8-bit level. float32 holds it exactly.
_INPAINT_RANGE = np.float32(65535.0)


def inpaint_planes(values: np.ndarray, mask: np.ndarray, method: str = "telea",
                   radius: int = INPAINT_RADIUS) -> np.ndarray:
    """(H, W, C) float32 of any range with the ``mask`` pixels inpainted, plane by plane (OpenCV
    inpaints float data single-channel only); the other pixels keep their exact values."""
    holes = mask.astype(np.uint8)
    out = np.empty_like(values)
    for c in range(values.shape[2]):
        plane = np.ascontiguousarray(values[..., c]) * _INPAINT_RANGE
        out[..., c] = cv2.inpaint(plane, holes, radius, _FLAGS[method]) / _INPAINT_RANGE
    # Scaling down does not round-trip every float exactly; known pixels stay the input's.
    out[~mask] = values[~mask]
    return out
