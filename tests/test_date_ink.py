"""A text line that does not read is still taken when its strokes are a date imprint's ink: warm,
saturated, bright light over what lies under it; other unread lines stay refused. The text
detector run over the image's warm ink finds date stamps, and nothing in a photo without one."""

from __future__ import annotations

import numpy as np
import pytest
from test_text_read import _f, _sample, _text, needs_text

from upres.cleaning import auto_mask, date_ink, text_detect, text_read


def _striped(ink: tuple[int, int, int], ground: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                                text_detect.TextLine]:
    """A 20 x 80 line of vertical strokes (every other 4 px) of ``ink`` on ``ground``."""
    image = np.empty((20, 80, 3), np.uint8)
    image[:] = ground
    glyphs = np.zeros((20, 80), bool)
    for x in range(4, 76, 8):
        glyphs[4:16, x : x + 4] = True
    image[glyphs] = ink
    line = text_detect.TextLine((0, 20, 0, 80), np.ones((20, 80), bool), 0.9, 12.0)
    return _f(image), glyphs, line


@pytest.mark.parametrize(("ink", "ground", "taken"), [
    ((255, 140, 20), (60, 60, 60), True),  # orange LED digits on a grey wall
    ((255, 200, 40), (40, 50, 90), True),  # yellow on a dusk sky
    ((230, 20, 10), (30, 30, 30), True),  # red: hues on both sides of 0
    ((120, 70, 10), (30, 30, 30), False),  # brown: not bright enough to be light
    ((255, 140, 20), (250, 250, 250), False),  # darker than what it lies on: paint, not light
    ((255, 40, 200), (40, 40, 40), False),  # magenta
    ((255, 255, 255), (40, 40, 40), False),  # white captions are not told by their ink
    ((160, 220, 40), (40, 40, 40), False),  # yellow-green: foliage
])
def test_date_imprint_ink(ink: tuple[int, int, int], ground: tuple[int, int, int], taken: bool) -> None:
    image, glyphs, line = _striped(ink, ground)
    assert date_ink.is_date_imprint(line, image, glyphs) is taken
    assert not date_ink.is_date_imprint(line, image, np.zeros_like(glyphs))


@needs_text
@pytest.mark.parametrize(("fill", "filled"), [((255, 150, 20), True), ((255, 255, 255), False)])
def test_unread_lines_in_date_ink_are_taken(monkeypatch: pytest.MonkeyPatch, fill: tuple[int, int, int],
                                            filled: bool) -> None:
    marked = _text(_sample(), "14 10 '09", (20, 20), 28, fill=fill)
    monkeypatch.setattr(text_read.TextReader, "read", lambda self, crop: text_read.Reading("", 0.0))
    auto = auto_mask.detect_auto(_f(marked))
    on_text = [d for d in auto.detections if d.detector == text_detect.NAME and d.box[0] < 60
               and d.box[2] < 200]
    assert on_text
    assert all(d.reason.startswith("not read as text") for d in on_text)
    if filled:
        assert all(d.status == "filled" and "date imprint" in d.reason for d in on_text)
        assert auto.mask[20:50, 20:150].sum() > 100
    else:
        assert all(d.status == "refused" for d in on_text) and not auto.mask.any()


@pytest.mark.parametrize(("rgb", "ink"), [
    ((255, 150, 20), True), ((255, 200, 40), True), ((230, 20, 10), True),
    ((255, 255, 255), False), ((120, 70, 10), False), ((255, 40, 200), False), ((40, 160, 40), False),
])
def test_the_ink_image_keeps_warm_light_only(rgb: tuple[int, int, int], ink: bool) -> None:
    image = np.zeros((4, 4, 3), np.float32)
    image[:] = np.asarray(rgb, np.float32) / 255.0
    drawn = date_ink.ink_image(image)
    assert drawn.shape == (4, 4, 3) and drawn.dtype == np.float32
    assert (drawn.max() < 0.1) if ink else (drawn.min() == 1.0)


@needs_text
def test_date_stamps_are_found_on_the_ink_image() -> None:
    det = text_detect.detector()
    stamped = _text(_sample(), "14 10 '09", (20, 20), 28, fill=(255, 150, 20))
    found = date_ink.imprint_lines(_f(stamped), det)
    assert found and all(line.score >= date_ink.MIN_LINE_SCORE for line, _ in found)
    mask = np.zeros(stamped.shape[:2], bool)
    for line, glyphs in found:
        y0, y1, x0, x1 = line.box
        mask[y0:y1, x0:x1] |= glyphs
    drawn = np.abs(stamped.astype(np.int16) - _sample().astype(np.int16)).max(axis=2) > 40
    assert (mask & drawn).sum() > 0.6 * drawn.sum() and (mask & ~drawn).sum() < drawn.sum()
    # In white the same digits leave the ink image blank; the photo alone has no date stamp.
    assert not date_ink.imprint_lines(_f(_text(_sample(), "14 10 '09", (20, 20), 28,
                                                fill=(255, 255, 255))), det)
    assert not date_ink.imprint_lines(_f(_sample()), det)


@needs_text
def test_the_auto_mask_takes_date_stamps_found_on_the_ink_image(monkeypatch: pytest.MonkeyPatch) -> None:
    stamped = _f(_text(_sample(), "14 10 '09", (20, 20), 28, fill=(255, 150, 20)))
    # Both passes see this stamp: it is taken once, by the text detection.
    auto = auto_mask.detect_auto(stamped)
    assert not [d for d in auto.detections if d.detector == auto_mask.DATE_INK]
    assert [d for d in auto.detections if d.detector == text_detect.NAME and d.status == "filled"]
    # Where the photo's text pass misses it (as it misses seven-segment digits far apart on a
    # busy photo), the ink pass takes it.
    monkeypatch.setattr(auto_mask, "_text", lambda image, threads: [])
    auto = auto_mask.detect_auto(stamped)
    ink = [d for d in auto.detections if d.detector == auto_mask.DATE_INK]
    assert ink and all(d.status == "filled" and d.kind == "text" for d in ink)
    assert auto_mask.DATE_INK in {r["detector"] for r in auto.record()["detections"]}
    drawn = np.abs(stamped - _f(_sample())).max(axis=2) > 40 / 255
    assert (auto.mask & drawn).sum() > 0.6 * drawn.sum()


class _OneLine:
    """Stands for the text network where the rules after it are tested: it 'finds' one line."""

    def __init__(self, line: text_detect.TextLine) -> None:
        self.line = line

    def lines(self, image: np.ndarray) -> list[text_detect.TextLine]:
        return [self.line]


@pytest.mark.parametrize(("strokes", "score", "taken"), [
    (9, 0.95, True),  # nine digits of a date, mostly gaps between them
    (0, 0.95, False),  # one warm bar filling its line: an object, not glyphs
    (3, 0.95, False),  # fewer glyphs than a date has
    (9, 0.8, False),  # a line the network is not sure of
])
def test_ink_lines_need_sure_separate_glyphs(strokes: int, score: float, taken: bool) -> None:
    image, _, line = _striped((255, 140, 20), (60, 60, 60))
    if strokes == 0:
        image[4:16, 4:76] = np.asarray((255, 140, 20), np.float32) / 255.0
    elif strokes < 9:
        image[4:16, 4 + 8 * strokes : 76] = 60 / 255.0
    line = text_detect.TextLine(line.box, line.region, score, line.height)
    found = date_ink.imprint_lines(image, _OneLine(line))  # type: ignore[arg-type]
    assert bool(found) is taken
