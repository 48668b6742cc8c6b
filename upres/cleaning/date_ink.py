"""A film camera's date imprint, told by its ink: warm light, brighter than what it lies on.

The recogniser reads seven-segment digits poorly ("14 10 '09" comes back as "H" at 0.07), so a
date stamp's line is often refused as "not read as text". But a date back writes with light: an
orange, red or yellow LED exposed through the film, so its strokes are saturated, bright, warm and
brighter than the photo around them. Photos have warm lines too (fruit, sunlit brick, lamps,
signs), and those are mostly darker than their surroundings, duller or less saturated.

The text detector also misses many date stamps outright: seven-segment digits in groups far apart,
over a busy photo. So it is run a second time on the image's *ink*: warm, saturated, bright
pixels drawn dark on white and everything else left white (``ink_image``), where a date stamp is
the only line-like thing left on most photos. A line found there is taken when the network is
sure of it (MIN_LINE_SCORE), it holds MIN_GLYPHS separate glyphs or more that leave most of the
line empty (MAX_COVER), and its strokes (cut on the ink image, where the photo behind them is
gone) pass ``is_date_imprint`` on the photo.

Chosen on training photos only (docs/CLEAN_DETECT.md, benchmarks/text_read_threshold.py): on the
50 BSD200 photos of the text benchmark, six of the date-stamp lines refused for their reading pass
``is_date_imprint``; of the lines the detector finds in all 200 clean BSD200 photos and the 91 T91
photos, none does. The ink image's lines took the date stamps' recall there from 0.869 to 0.999
and found a line in one clean photo of those 291, which its yellow sign's text changes already.
"""

from __future__ import annotations

import cv2
import numpy as np

from upres.cleaning.text_detect import TextDetector, TextLine, strokes
from upres.imageio.samples import quantize
from upres.kernels.edges import LUMA_WEIGHTS

# OpenCV's 8-bit hue is degrees / 2. Warm: red (wrapping round 0) through orange to yellow.
HUE_MAX = 60.0  # degrees: yellow; yellow-green is foliage
HUE_WRAP = 345.0  # degrees: deep red from the other side; magenta and pink are left out
MIN_SATURATION = 0.7
MIN_VALUE = 0.8
MIN_LIFT = 0.0  # levels of 255: the strokes' median luma over the rest of the line's
LUMA = np.array(LUMA_WEIGHTS, np.float32)
# The ink image: a pixel's ink rises from 0 to 1 over these saturations and values (warm hues only).
INK_SATURATION = (0.45, 0.75)
INK_VALUE = (0.55, 0.85)
MIN_LINE_SCORE = 0.9  # the detector's mean probability over a line of the ink image
MIN_GLYPHS = 4  # separate stroke parts of 4 px or more: a date has digits, a glint has one
GLYPH_PIXELS = 4
# Of the line's region: glyphs are strokes with gaps between them (the training photos' date
# stamps cover 0.09-0.34 of their line); a warm object read as a line fills most of it.
MAX_COVER = 0.45


def is_date_imprint(line: TextLine, image: np.ndarray, glyphs: np.ndarray) -> bool:
    """Whether the strokes ``glyphs`` (bool, the line's box) of ``line`` in the H x W x 3 RGB
    image in [0, 1] have a date imprint's ink: their median colour warm (hue up to HUE_MAX or
    from HUE_WRAP), saturated and bright, and brighter than the line's other pixels."""
    if not glyphs.any():
        return False
    y0, y1, x0, x1 = line.box
    crop = quantize(image[y0:y1, x0:x1], 8)
    # The median colour, not the median hue: a red's hues lie on both sides of 0.
    ink = np.median(crop[glyphs], axis=0).astype(np.uint8)
    h, s, v = (float(c) for c in cv2.cvtColor(ink[None, None], cv2.COLOR_RGB2HSV)[0, 0])
    hue, saturation, value = 2.0 * h, s / 255.0, v / 255.0
    if not (hue <= HUE_MAX or hue >= HUE_WRAP) or saturation < MIN_SATURATION or value < MIN_VALUE:
        return False
    rest = line.region & ~glyphs
    if not rest.any():
        return False
    luma = crop.astype(np.float32) @ LUMA
    return float(np.median(luma[glyphs]) - np.median(luma[rest])) > MIN_LIFT


def _warm(hue_degrees: np.ndarray) -> np.ndarray:
    return (hue_degrees <= HUE_MAX) | (hue_degrees >= HUE_WRAP)


def ink_image(image: np.ndarray) -> np.ndarray:
    """The H x W x 3 RGB image in [0, 1] as its warm light alone: gray, dark where a pixel is
    warm, saturated and bright (a date imprint's ink), white elsewhere; float32 in [0, 1]."""
    hsv = cv2.cvtColor(quantize(image, 8), cv2.COLOR_RGB2HSV)

    def ramp(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        unit = values.astype(np.float32) / np.float32(255.0)
        return np.clip((unit - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0)

    ink = ramp(hsv[..., 1], INK_SATURATION) * ramp(hsv[..., 2], INK_VALUE)
    ink[~_warm(hsv[..., 0].astype(np.float32) * np.float32(2.0))] = 0.0
    # One plane seen three times: a scan's ink image costs one float plane, not three.
    return np.broadcast_to((1.0 - ink)[..., None], (*ink.shape, 3))


def imprint_lines(image: np.ndarray, detector: TextDetector) -> list[tuple[TextLine, np.ndarray]]:
    """Date imprints that ``detector`` finds on the ink image of the H x W x 3 RGB image in
    [0, 1]: (line, its glyph pixels) for each sure line of MIN_GLYPHS glyphs or more, covering
    at most MAX_COVER of it, whose strokes pass :func:`is_date_imprint` on the image."""
    ink = ink_image(image)
    if ink[..., 0].min() >= 1.0:  # no warm light at all: a blank page has no lines to find
        return []
    out = []
    for line in detector.lines(ink):
        if line.score < MIN_LINE_SCORE:
            continue
        glyphs = strokes(line, ink)
        if glyphs.sum() > MAX_COVER * line.region.sum():
            continue
        stats = cv2.connectedComponentsWithStats(glyphs.astype(np.uint8), connectivity=8)[2]
        if int((stats[1:, cv2.CC_STAT_AREA] >= GLYPH_PIXELS).sum()) < MIN_GLYPHS:
            continue
        if is_date_imprint(line, image, glyphs):
            out.append((line, glyphs))
    return out
