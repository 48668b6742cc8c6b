"""Faces the automatic mask must not paint over: OpenCV's Haar cascades (frontal and profile).

A detector that mistakes an eye, a mouth's corner or a strand of hair for a blemish destroys the
part of a photo people look at first, and a fill over a face is never plausible. So ``--mask
auto`` keeps out of every face (the ellipse inside its box, grown by FACE_MARGIN) all but small
specks.

The cascade files are OpenCV's own (Intel License Agreement, BSD-style; the notice is inside each
XML), copied into upres/weights from the ``opencv-python-headless`` 4.12 wheel: the OpenCV 5 wheels
this project uses no longer ship ``cv2.data``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from upres.kernels.edges import LUMA_WEIGHTS
from upres.runtime.catalog import WEIGHTS_DIR

CASCADES = ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")
FACE_MARGIN = 0.15  # of the box's side, each way: cascades box the inner face, not the hairline
MIN_FACE = 20  # px: smaller "faces" are mostly texture, and too small to be spoilt by a speck
NEIGHBOURS = 4  # detections that must agree: OpenCV's default 3 finds faces in foliage
SPECK = 24  # px: a detection of at most this many pixels inside a face may still be filled


@functools.cache
def _cascades() -> tuple[cv2.CascadeClassifier, ...]:
    out = []
    for name in CASCADES:
        path = Path(WEIGHTS_DIR, name)
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise FileNotFoundError(f"{path}: missing or unreadable face cascade")
        out.append(cascade)
    return tuple(out)


def face_boxes(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of each face (frontal, and profile both ways) in an H x W x 3 RGB image
    in [0, 1], grown by FACE_MARGIN and clipped to the image."""
    luma = np.asarray(image, np.float32) @ np.array(LUMA_WEIGHTS, np.float32)
    grey: np.ndarray = np.clip(np.rint(luma * 255), 0, 255).astype(np.uint8)
    grey = cv2.equalizeHist(grey)
    h, w = grey.shape
    found: list[tuple[int, int, int, int]] = []
    frontal, profile = _cascades()
    for cascade, flipped in ((frontal, False), (profile, False), (profile, True)):
        src = grey[:, ::-1].copy() if flipped else grey
        for box in cascade.detectMultiScale(src, 1.1, NEIGHBOURS, minSize=(MIN_FACE, MIN_FACE)):
            x, y, bw, bh = (int(v) for v in box)  # numpy's int32: plain ints for the sidecar's JSON
            x = w - x - bw if flipped else x
            m = round(FACE_MARGIN * max(bw, bh))
            found.append((max(0, y - m), min(h, y + bh + m), max(0, x - m), min(w, x + bw + m)))
    return found


def face_area(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The faces of ``boxes`` as one H x W bool mask: the ellipse inscribed in each box. A face
    is an oval; its box's corners are hair, collar and background, where a caption or a date
    stamp often lies (on training photos the box corners held 0.6 points of the captions' and 1.5
    of the date stamps' recall: docs/CLEAN_DETECT.md)."""
    area = np.zeros(shape, bool)
    for y0, y1, x0, x1 in boxes:
        # pixel centres, relative to the box's centre and half sides
        ys = (np.arange(y0, y1) - (y0 + y1 - 1) / 2.0) / ((y1 - y0) / 2.0)
        xs = (np.arange(x0, x1) - (x0 + x1 - 1) / 2.0) / ((x1 - x0) / 2.0)
        area[y0:y1, x0:x1] |= ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
    return area
